"""The package's shape: the layers are import-linter contracts in pyproject.toml (run by `make
test`); these tests check that the contracts bite, and what import-linter does not check: no
import cycle inside a layer, no package import hidden in a function."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "vibraclip_core"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# entry points import each subcommand's modules when it runs, so `vibraclip --help` starts fast
LAZY_ENTRY_POINTS = {"app.cli", "app.bookrun"}


def module_name(path: Path) -> str:
    """'data.spectra' for vibraclip_core/data/spectra.py."""
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def _internal_imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(module, at top level) for every `from vibraclip_core.x.y import ...` in a module."""
    top = {id(node) for node in getattr(tree, "body", [])}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vibraclip_core."):
            base = node.module.removeprefix("vibraclip_core.")
            names = [base] if base.count(".") else [f"{base}.{a.name}" for a in node.names]
            out += [(n, id(node) in top) for n in names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError("relative import: the package imports by absolute name")
    return out


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """module -> imported package modules; and 'module: imports x inside a function' lines."""
    paths = [p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__init__.py"]
    modules = {module_name(p) for p in paths}
    graph, hidden = {}, []
    for path in paths:
        name = module_name(path)
        deps = _internal_imports(ast.parse(path.read_text()))
        graph[name] = {d for d, _ in deps if d in modules and d != name}
        hidden += [f"{name}: imports {d} inside a function" for d, top in deps
                   if not top and d in modules and name not in LAZY_ENTRY_POINTS]
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
    assert len(graph) > 50  # every module was read
    assert find_cycle(graph) is None


def test_no_package_import_is_hidden_in_a_function():
    assert import_graph()[1] == []


def test_every_module_sits_in_a_layer_of_the_contract():
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in contracts["contracts"] if c["type"] == "layers")["layers"]
    named = {part.strip() for layer in layers for part in layer.split("|")}
    on_disk = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert on_disk == named
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"]


def _lint(tmp_path: Path, edit: tuple[str, str] | None) -> subprocess.CompletedProcess:
    """lint-imports on a copy of the package, after appending `edit[1]` to module `edit[0]`."""
    shutil.copytree(PACKAGE, tmp_path / "vibraclip_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    if edit:
        target = tmp_path / "vibraclip_core" / (edit[0].replace(".", "/") + ".py")
        target.write_text(target.read_text() + f"\n{edit[1]}\n")
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})


def test_the_contracts_hold_and_catch_an_import_against_the_data_flow(tmp_path):
    assert _lint(tmp_path / "clean", None).returncode == 0
    upward = _lint(tmp_path / "upward", ("data.spectra", "import vibraclip_core.retrieval.metrics"))
    assert upward.returncode != 0
    assert "vibraclip_core.data is not allowed to import vibraclip_core.retrieval" in upward.stdout


def test_the_contracts_keep_lightning_out_of_identify(tmp_path):
    # an indirect route: identify -> retrieval.library -> (new) training
    result = _lint(tmp_path, ("retrieval.library", "import lightning"))
    assert result.returncode != 0
    assert "vibraclip_core.app.identify is not allowed to import lightning" in result.stdout
