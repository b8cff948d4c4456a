"""Finding the ActorSystem in a user's file or module, with errors that point at the
culprit."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from ._errors import SystemFileError
from ._system import ActorSystem

__all__ = ["load_system"]

T = TypeVar("T")


def load_system(target: str) -> ActorSystem:
    """Import ``FILE[:ATTR]`` or ``MODULE[:ATTR]`` and return its :class:`ActorSystem`.

    ``FILE`` is a path (``app/system.py``); a file inside a package (its folder has an
    ``__init__.py``) is imported as a module of that package, so its relative imports
    work. ``MODULE`` is a dotted name (``myapp.system``) imported with the current
    directory first on the path, as ``python -m`` does. Without ``ATTR`` the module
    must define exactly one system at module level.

    Raises:
        SystemFileError: no such file or module, it fails to import (with the file and
            line of the error), defines no system, several, or ``ATTR`` is not one.
    """
    where, _, attr = target.partition(":")
    path = Path(where)
    if path.is_file():
        module = _import_file(path)
    elif _MODULE.fullmatch(where) and not where.endswith(".py"):
        module = _import_module(where)
    else:
        raise SystemFileError(f"{where}: no such file")
    return _find_system(module, where, attr)


# A dotted module name: what `python -m` takes.
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _import_file(path: Path) -> ModuleType:
    """Import the file at ``path``: as ``package.module`` when its folder is a package
    (the top package's parent first on the path), else as a top-level module (its own
    folder first on the path, as for ``python FILE``, so that sibling modules import)."""
    folder = path.resolve().parent
    parts = [path.stem]
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    if len(parts) > 1:
        sys.path.insert(0, str(folder))
        return _guarded(".".join(parts), path, lambda: importlib.import_module(".".join(parts)))
    module_name = path.stem.replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise SystemFileError(f"{path}: cannot be imported as a Python module", filename=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))
    sys.modules[module_name] = module
    loader = spec.loader
    _guarded(module_name, path, lambda: loader.exec_module(module))
    return module


def _import_module(name: str) -> ModuleType:
    """Import the module ``name`` with the current directory first on the path."""
    sys.path.insert(0, os.getcwd())
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a parent package missing, or failing itself
        spec = None
    if spec is None:
        raise SystemFileError(f"{name}: no such file or module")
    path = Path(spec.origin) if spec.origin else Path(name)
    return _guarded(name, path, lambda: importlib.import_module(name))


def _guarded(name: str, path: Path, load: Callable[[], T]) -> T:
    """Run ``load`` (an import of ``path``), turning what it raises into a
    :class:`SystemFileError` that names the file and line where it failed."""
    try:
        return load()
    except SyntaxError as exc:
        raise SystemFileError(
            f"{exc.filename}:{exc.lineno}: syntax error: {exc.msg}",
            filename=exc.filename,
            lineno=exc.lineno,
        ) from exc
    except Exception as exc:
        frame = _innermost_frame_in(exc, path)
        where = f"{frame.filename}:{frame.lineno}" if frame else str(path)
        raise SystemFileError(
            f"{where}: {type(exc).__name__}: {exc}",
            filename=frame.filename if frame else str(path),
            lineno=frame.lineno if frame else None,
        ) from exc


def _find_system(module: ModuleType, where: str, attr: str) -> ActorSystem:
    if attr:
        found = getattr(module, attr, None)
        if not isinstance(found, ActorSystem):
            raise SystemFileError(f"{where}: {attr!r} is not an ActorSystem", filename=where)
        return found
    systems = {k: v for k, v in vars(module).items() if isinstance(v, ActorSystem)}
    if not systems:
        raise SystemFileError(
            f"{where}: defines no ActorSystem (add `system = ActorSystem(...)` at module level)",
            filename=where,
        )
    if len(systems) > 1:
        names = ", ".join(sorted(systems))
        raise SystemFileError(
            f"{where}: defines several ActorSystems ({names}); pick one with {where}:NAME",
            filename=where,
        )
    return next(iter(systems.values()))


def _innermost_frame_in(exc: BaseException, path: Path) -> traceback.FrameSummary | None:
    """The deepest traceback frame inside ``path`` (where the user's code failed)."""
    wanted = os.path.realpath(path)
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if os.path.realpath(f.filename) == wanted
    ]
    return frames[-1] if frames else None
