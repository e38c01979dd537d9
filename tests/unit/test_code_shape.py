"""The shape of the code, checked: imports run one way, no import cycles, small modules and
functions (docs/architecture.md)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("deployments", "actors", "pipeline", "storage", "config", "cli")
# What each package may import from the others: deployments → actors → pipeline / storage →
# config. The pipeline is plain functions: no Ray shells, no database, no settings. The
# command-line client (cli) talks to the service over HTTP only, and nothing imports it.
ALLOWED: dict[str, set[str]] = {
    "cli": set(),
    "deployments": {"actors", "pipeline", "storage", "config"},
    "actors": {"pipeline", "storage", "config"},
    "pipeline": set(),
    "storage": {"config"},
    "config": set(),
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
SKIPPED_DIRS = {"tests", "data", "tmp"}


def _sources() -> Iterator[Path]:
    """The project's Python files outside tests."""
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] in SKIPPED_DIRS or any(p.startswith(".") for p in parts):
            continue
        yield path


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _project_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in _sources() if p.parts[len(ROOT.parts)] in PACKAGES}
    return {
        name: {m for m in _imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_imports_run_one_way() -> None:
    wrong = []
    for module, imported in _project_graph().items():
        package = module.split(".")[0]
        for target in imported:
            other = target.split(".")[0]
            if other != package and other not in ALLOWED[package]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_the_cli_is_a_client_only() -> None:
    """cli imports nothing of the service (its packages, serve_app, main, bench...), and
    nothing outside tests imports cli."""
    service = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in _sources()} - {"cli"}
    wrong = []
    for path in _sources():
        inside = path.relative_to(ROOT).parts[0] == "cli"
        for name in _imports(path):
            top = name.split(".")[0]
            if (inside and top in service) or (not inside and top == "cli"):
                wrong.append(f"{_module_name(path)} imports {name}")
    assert "serve_app" in service and "bench" in service
    assert wrong == []


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles() -> None:
    graph = {
        m: {t for t in imported if not m.startswith(t + ".")}
        for m, imported in _project_graph().items()
    }
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("path", list(_sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_MODULE_LINES, "a module this long holds two concepts"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
