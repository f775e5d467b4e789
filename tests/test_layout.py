"""The package's shape: imports follow the data flow (no cycles, none hidden in functions) and
modules stay small enough to read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vibraclip_core"
MAX_LINES = 320  # "~300": a module past this holds two ideas
# entry points import each subcommand's modules when it runs, so `vibraclip --help` starts fast
LAZY_ENTRY_POINTS = {"cli", "bookrun"}


def _internal_imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(module, at top level) for every `from . import x` / `from .x import y` in a module."""
    out = []
    top = {id(node) for node in getattr(tree, "body", [])}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or 0) >= 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            out += [(n.split(".")[0], id(node) in top) for n in names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vibraclip_core"):
            out.append(((node.module or "").split(".")[1] if "." in node.module else "",
                        id(node) in top))
    return out


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """module -> imported package modules; and 'module: imports x inside a function' lines."""
    graph, hidden = {}, []
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    for path in sorted(PACKAGE.glob("*.py")):
        deps = _internal_imports(ast.parse(path.read_text()))
        graph[path.stem] = {d for d, _ in deps if d in modules and d != path.stem}
        hidden += [f"{path.stem}: imports .{d} inside a function" for d, top in deps
                   if not top and d in modules and path.stem not in LAZY_ENTRY_POINTS]
    return graph, hidden


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path a -> b -> ... -> a, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (cycle := visit(d)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_find_cycle_detects_a_cycle_and_accepts_a_dag():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_package_imports_have_no_cycle():
    graph, _ = import_graph()
    assert find_cycle(graph) is None


def test_no_package_import_is_hidden_in_a_function():
    assert import_graph()[1] == []


def test_modules_stay_small():
    long = {p.name: n for p in PACKAGE.glob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
