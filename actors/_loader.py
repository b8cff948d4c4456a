"""Finding the ActorSystem in a user's file, with errors that point at the culprit."""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from pathlib import Path

from ._errors import SystemFileError
from ._system import ActorSystem

__all__ = ["load_system"]


def load_system(target: str) -> ActorSystem:
    """Import ``FILE[:ATTR]`` and return its :class:`ActorSystem`.

    Without ``ATTR`` the file must define exactly one system at module level.

    Raises:
        SystemFileError: the file is missing or fails to import (with the file and
            line of the error), defines no system, several, or ``ATTR`` is not one.
    """
    file, _, attr = target.partition(":")
    path = Path(file)
    if not path.is_file():
        raise SystemFileError(f"{file}: no such file")
    module_name = path.stem.replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise SystemFileError(f"{file}: cannot be imported as a Python module", filename=file)
    module = importlib.util.module_from_spec(spec)
    # The file's folder comes first on the path, as for `python FILE`, so that its
    # sibling modules import.
    sys.path.insert(0, str(path.resolve().parent))
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise SystemFileError(
            f"{exc.filename}:{exc.lineno}: syntax error: {exc.msg}",
            filename=exc.filename,
            lineno=exc.lineno,
        ) from exc
    except Exception as exc:
        frame = _innermost_frame_in(exc, path)
        where = f"{frame.filename}:{frame.lineno}" if frame else file
        raise SystemFileError(
            f"{where}: {type(exc).__name__}: {exc}",
            filename=frame.filename if frame else file,
            lineno=frame.lineno if frame else None,
        ) from exc
    if attr:
        found = getattr(module, attr, None)
        if not isinstance(found, ActorSystem):
            raise SystemFileError(f"{file}: {attr!r} is not an ActorSystem", filename=file)
        return found
    systems = {k: v for k, v in vars(module).items() if isinstance(v, ActorSystem)}
    if not systems:
        raise SystemFileError(
            f"{file}: defines no ActorSystem (add `system = ActorSystem(...)` at module level)",
            filename=file,
        )
    if len(systems) > 1:
        names = ", ".join(sorted(systems))
        raise SystemFileError(
            f"{file}: defines several ActorSystems ({names}); pick one with {file}:NAME",
            filename=file,
        )
    return next(iter(systems.values()))


def _innermost_frame_in(exc: BaseException, path: Path) -> traceback.FrameSummary | None:
    """The deepest traceback frame inside ``path`` (where the user's code failed)."""
    wanted = os.path.realpath(path)
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if os.path.realpath(f.filename) == wanted
    ]
    return frames[-1] if frames else None
