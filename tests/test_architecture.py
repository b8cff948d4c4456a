"""The layering ARCHITECTURE.md promises, checked on the source: who may import whom,
no import cycle, no module over 500 lines. Imports under ``TYPE_CHECKING`` count."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("actors", "transports")
MOST_LINES = 500
CLIENT = "transports.redis.client"
CLIENT_MAY_IMPORT = {"transports._exceptions", "transports._urls", "transports._backoff"}


def _modules() -> dict[str, Path]:
    """Every module of our packages by dotted name (a package by its own name)."""
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imports(name: str) -> Iterator[tuple[str, str]]:
    """``(module, imported name)`` for each of our modules ``name`` imports from."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    yield alias.name, ""
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                full = f"{source}.{alias.name}"
                yield (full, "") if full in MODULES else (source, alias.name)


def _graph() -> dict[str, set[str]]:
    return {name: {module for module, _ in _imports(name) if module in MODULES} for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_our_modules_and_their_imports() -> None:
    """The checks below look at something: the runtime imports transports."""
    assert {"actors", "transports", CLIENT, "actors._system"} <= set(MODULES)
    assert any(target.startswith("transports") for target in _graph()["actors._runner"])
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_500_lines(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MOST_LINES, f"{MODULES[name].relative_to(ROOT)}: {lines} lines"


def test_transports_never_import_the_runtime() -> None:
    wrong = [
        (name, module)
        for name in MODULES
        if name.startswith("transports")
        for module, _ in _imports(name)
        if module.startswith("actors")
    ]
    assert wrong == []


def test_the_client_knows_no_mailbox() -> None:
    """The client imports itself, the store errors, Backoff and the URL redactor (leaf modules
    that know no mailbox), nothing else of ours."""
    wrong = [
        (name, module)
        for name in MODULES
        if name.startswith(CLIENT)
        for module, _ in _imports(name)
        if not module.startswith(CLIENT) and module not in CLIENT_MAY_IMPORT
    ]
    assert wrong == []


def test_mailboxes_use_only_the_client_s_public_names() -> None:
    public = set(__import__(CLIENT, fromlist=["__all__"]).__all__)
    wrong = [
        (name, module, imported)
        for name in MODULES
        if name.startswith("transports") and not name.startswith(CLIENT)
        for module, imported in _imports(name)
        if module.startswith(CLIENT) and (module != CLIENT or imported not in public)
    ]
    assert wrong == []


def test_the_runtime_uses_only_the_transports_public_names() -> None:
    """actors imports from transports, transports.memory and transports.redis, and
    only names they export (nothing private, no module below them)."""
    packages = {"transports", "transports.memory", "transports.redis"}
    wrong = [
        (name, module, imported)
        for name in MODULES
        if name.startswith("actors")
        for module, imported in _imports(name)
        if module.startswith("transports") and (module not in packages or imported.startswith("_"))
    ]
    assert wrong == []
