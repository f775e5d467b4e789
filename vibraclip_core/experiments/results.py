"""The result tables the chapters save and the summary reads: their names, layouts, writing and
reading, in one place.

Each chapter writes its headline tables as `<build_dir>/results/<name>.csv`, with the run's
metadata beside it as `<name>.json`; Chapter 8 and the tests read them back by name. A table's
layout (how many leading columns form its index, how many header rows name its columns) is
registered here, so a writer and a reader cannot disagree about it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vibraclip_core.data.files import atomic_path

RESULTS_DIR = "results"


@dataclass(frozen=True)
class Layout:
    """How a saved table reads back: index columns and header rows."""

    index_cols: int
    header_rows: int = 1


# name -> layout of every table a chapter saves
RESULT_TABLES: dict[str, Layout] = {
    "02_pretraining": Layout(1),  # query -> n, top-k, intervals, MRR
    "02_pretraining_library": Layout(2, 2),  # (model, query) x (library, metric)
    "02_learning_curve": Layout(1),  # training molecules -> top-1 at two library sizes
    "03_loss_ablations": Layout(2, 2),
    "04_mass_anchoring": Layout(2, 2),
    "05_missing_data": Layout(2, 2),
    "06_cross_theory": Layout(2, 2),  # (model, queries) x (query mode, metric)
    "06_measured_levers": Layout(1, 3),  # lever x (library, filter, metric)
    "06_realignment_measured": Layout(2),  # (library, method) -> metrics
    "06_realignment_ood": Layout(2),  # (setting, query) -> top-k
}


def results_path(build_dir: str | Path, name: str, suffix: str = ".csv") -> Path:
    """<build_dir>/results/<name><suffix>."""
    return Path(build_dir) / RESULTS_DIR / f"{name}{suffix}"


def _layout(name: str) -> Layout:
    if name not in RESULT_TABLES:
        raise ValueError(f"result table {name!r} is not registered; known tables: "
                         f"{sorted(RESULT_TABLES)} (add it to results.RESULT_TABLES)")
    return RESULT_TABLES[name]


def save_results(table: pd.DataFrame, build_dir: str | Path, name: str,
                 meta: dict[str, Any] | None = None) -> Path:
    """Write a registered table as <build_dir>/results/<name>.csv (+ .json metadata), each
    atomically; returns the CSV's path. A table whose shape is not its registered layout is
    refused, naming both."""
    layout = _layout(name)
    shape = (table.index.nlevels, table.columns.nlevels)
    if shape != (layout.index_cols, layout.header_rows):
        raise ValueError(f"result table {name!r}: {shape[0]} index level(s) and {shape[1]} "
                         f"header row(s), but its registered layout is {layout}")
    out = results_path(build_dir, name)
    with atomic_path(out) as tmp:
        table.to_csv(tmp)
    with atomic_path(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta or {}, indent=2, default=str))
    return out


def read_results(build_dir: str | Path, name: str) -> pd.DataFrame | None:
    """A registered table as saved, with its index and column levels; None when the chapter
    has not saved it in this build folder."""
    layout = _layout(name)
    path = results_path(build_dir, name)
    if not path.exists():
        return None
    return pd.read_csv(path, index_col=list(range(layout.index_cols)),
                       header=list(range(layout.header_rows)) if layout.header_rows > 1 else 0)


def read_meta(build_dir: str | Path, name: str) -> dict[str, Any]:
    """The metadata saved beside a registered table ({} when none)."""
    _layout(name)
    path = results_path(build_dir, name, ".json")
    return json.loads(path.read_text()) if path.exists() else {}
