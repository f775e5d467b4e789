"""The chapters narrate, call the package and plot: short code cells without definitions, one
setup call, parameters that reach the config, and prose that jupytext keeps."""

from __future__ import annotations

import ast
import dataclasses
import re

import jupytext
import pytest

from vibraclip_core.app.bookrun import toc_chapters
from vibraclip_core.config.profiles import Config

MAX_CELL_LINES = 12
CHAPTERS = toc_chapters()
CONFIG_FIELDS = {f.name for f in dataclasses.fields(Config)}


def code_cells(src):
    """(tags, source) of each code cell of a chapter."""
    return [(c.metadata.get("tags", []), c.source) for c in jupytext.read(src).cells
            if c.cell_type == "code"]


def parameters(src) -> dict:
    tags, source = code_cells(src)[0]
    assert "parameters" in tags, f"{src.name}: the first code cell is not tagged 'parameters'"
    return {n.targets[0].id: n.value for n in ast.parse(source).body}


@pytest.mark.parametrize("src", CHAPTERS, ids=lambda p: p.stem)
def test_code_cells_are_short_and_define_nothing(src):
    for tags, source in code_cells(src):
        if "parameters" in tags or ("remove-cell" in tags and "import" in source):
            continue  # literals only; the imports and the setup call
        lines = [ln for ln in source.splitlines() if ln.strip()]
        assert len(lines) <= MAX_CELL_LINES, f"{src.name}: {len(lines)} lines in\n{source}"
        defined = [n for n in ast.walk(ast.parse(source))
                   if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
        assert not defined, f"{src.name} defines {type(defined[0]).__name__} in\n{source}"


# what a chapter's code cell may not hold: the branching and looping live in its analyses module
CONTROL_FLOW = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.With, ast.ListComp,
                ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.IfExp, ast.Match)


def control_flow(source: str) -> list[str]:
    """The control-flow constructs of a code cell, by name and line."""
    return [f"{type(n).__name__} (line {n.lineno})" for n in ast.walk(ast.parse(source))
            if isinstance(n, CONTROL_FLOW)]


def test_control_flow_finds_each_construct():
    cells = {"if x:\n    y = 1": "If", "for q in p:\n    f(q)": "For", "a = [x for x in y]": "ListComp",
             "a = {k: v for k, v in d}": "DictComp", "a = b if c else d": "IfExp",
             "f(', '.join(x for x in y))": "GeneratorExp", "while x:\n    x -= 1": "While",
             "with open(p) as f:\n    pass": "With"}
    for source, name in cells.items():
        assert control_flow(source) == [f"{name} (line 1)"]
    assert control_flow("fig = plots.plot(x, f'{a:.1f} %', min(k, 10))") == []


@pytest.mark.parametrize("src", CHAPTERS, ids=lambda p: p.stem)
def test_code_cells_hold_calls_not_control_flow(src):
    for tags, source in code_cells(src):
        assert control_flow(source) == [], f"{src.name}: {control_flow(source)} in\n{source}"


@pytest.mark.parametrize("src", CHAPTERS, ids=lambda p: p.stem)
def test_config_parameters_are_none_so_the_profile_decides(src):
    copies = {name: ast.literal_eval(value) for name, value in parameters(src).items()
              if name in CONFIG_FIELDS - {"profile", "build_dir"}
              and ast.literal_eval(value) is not None}
    assert copies == {}, f"{src.name}: config fields set in the parameters cell: {copies}"


@pytest.mark.parametrize("src", CHAPTERS, ids=lambda p: p.stem)
def test_the_parameters_cell_holds_plain_literals(src):
    for name, value in parameters(src).items():
        ast.literal_eval(value)  # raises on anything but a literal
        assert name.islower(), f"{src.name}: parameter {name}"


@pytest.mark.parametrize("src", CHAPTERS, ids=lambda p: p.stem)
def test_config_parameters_reach_the_config_through_one_setup_call(src):
    text = src.read_text()
    assert "logging.getLogger" not in text and "warnings.filterwarnings" not in text
    assert 'tag="main"' not in text  # Chapter 2's model comes from chapter.pretrained_model
    if "chapter.setup(" not in text:
        return  # the introduction and the summary build no config
    assert text.count("chapter.setup(") == 1
    for name in sorted(set(parameters(src)) & CONFIG_FIELDS - {"profile"}):
        assert re.search(rf"\b{name}={name}\b", text), f"{src.name}: {name} is not passed on"


@pytest.mark.parametrize("src", CHAPTERS, ids=lambda p: p.stem)
def test_no_prose_line_starts_with_a_percent_sign(src):
    # jupytext reads '# %...' at a line start as a cell marker or magic and drops the line
    bad = [ln for ln in src.read_text().splitlines()
           if ln.startswith("# %") and not ln.startswith("# %%")]
    assert bad == [], f"{src.name}: {bad}"


def test_every_chapter_that_uses_the_main_model_asks_chapter_2_for_it():
    users = [src.stem for src in CHAPTERS if "pretrained_model(" in src.read_text()]
    assert users == ["02_pretraining", "06_realignment", "07_gallery"]


@pytest.mark.parametrize("src", CHAPTERS, ids=lambda p: p.stem)
def test_a_chapter_imports_only_its_own_analyses_module(src):
    """`analyses/chN_*` belongs to chapter N alone (book_facts serves every chapter's prose)."""
    tree = ast.parse(src.read_text())
    used = {f"{node.module}.{a.name}" if node.module == "vibraclip_core.analyses" else node.module
            for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("vibraclip_core.analyses") for a in node.names}
    own = {f"vibraclip_core.analyses.ch{int(src.stem[:2])}_" if src.stem[:2].isdigit() else ""}
    others = {m for m in used if m != "vibraclip_core.analyses.book_facts"
              and not m.startswith(tuple(own)) and not m.endswith(".summary")}
    assert others == set(), f"{src.name} imports another chapter's analyses: {others}"
