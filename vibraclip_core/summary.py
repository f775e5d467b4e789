"""The book's summary: headline results gathered from the tables the chapters saved.

Each chapter writes its table to `<build_dir>/results/<chapter>.csv`; this module reads them (it
never recomputes or retypes a number) and puts the paper's published QM9S figures beside them in
separate columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .ablations import PUBLISHED

COLUMNS = ["measured top-1 %", "measured top-25 %", "published top-1 % (QM9S)",
           "published top-25 % (QM9S)"]


def _read(build_dir: Path, name: str, index_cols: int, header: int | list[int] = 0
          ) -> pd.DataFrame | None:
    path = Path(build_dir) / "results" / f"{name}.csv"
    if not path.exists():
        return None
    return pd.read_csv(path, index_col=list(range(index_cols)), header=header)


def _row(chapter: str, result: str, top1: float, top25: float | None,
         published: str | None = None) -> dict:
    pub = PUBLISHED.get(published or "", {})
    return {"chapter": chapter, "result": result, COLUMNS[0]: top1, COLUMNS[1]: top25,
            COLUMNS[2]: pub.get("top1"), COLUMNS[3]: pub.get("top25")}


def headline_table(build_dir: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """(table, names of chapters whose results are missing)."""
    build_dir = Path(build_dir)
    rows, missing = [], []
    t = _read(build_dir, "02_pretraining", 1)
    if t is None:
        missing.append("02_pretraining")
    else:
        for mode, label in (("ir+raman library", "main model, IR + Raman, library score"),
                            ("ir+raman paper", "main model, IR + Raman, paper score"),
                            ("ir", "main model, IR only")):
            rows.append(_row("2", label, t.loc[mode, "top1"], t.loc[mode, "top25"],
                             "all_pairs+mass" if mode == "ir+raman paper" else None))
    t = _read(build_dir, "03_loss_ablations", 2)
    if t is None:
        missing.append("03_loss_ablations")
    else:
        for key, (model, query) in (("graph_ir", ("IR only (graph–IR)", "ir")),
                                    ("graph_centred", ("IR + Raman (graph-centred)",
                                                       "ir+raman paper")),
                                    ("all_pairs", ("IR + Raman, all pairs", "ir+raman paper"))):
            if (model, query) in t.index:
                rows.append(_row("3", f"{model}, {query.replace('ir+raman ', '')} score"
                                 if "raman" in query else model,
                                 t.loc[(model, query), "top1 %"], t.loc[(model, query), "top25 %"],
                                 key))
    t = _read(build_dir, "04_mass_anchoring", 2)
    if t is None:
        missing.append("04_mass_anchoring")
    else:
        for key in ("graph_ir", "all_pairs"):
            for query in t.loc[key].index:
                rows.append(_row("4", f"{key}: {query}", t.loc[(key, query), "top1 %"],
                                 t.loc[(key, query), "top25 %"],
                                 f"{key}+mass" if query == "mass anchoring" else None))
    t = _read(build_dir, "06_realignment_ood", 2)
    if t is None:
        missing.append("06_realignment (larger molecules)")
    else:
        for name in t.index.get_level_values(0).unique():
            rows.append(_row("6", f"larger molecules, {name}",
                             t.loc[(name, "ir+raman library"), "top1"],
                             t.loc[(name, "ir+raman library"), "top25"]))
    t = _read(build_dir, "06_realignment_measured", 2)
    if t is None:
        missing.append("06_realignment (measured IR)")
    else:
        lib = t.index.get_level_values(0)[0]
        for method in t.loc[lib].index:
            rows.append(_row("6", f"measured IR, {method}", t.loc[(lib, method), "top1"],
                             t.loc[(lib, method), "top25"]))
    return pd.DataFrame(rows, columns=["chapter", "result", *COLUMNS]), missing


def chapter_timings(build_dir: str | Path, profile: str) -> pd.Series:
    """Wall seconds of the latest execution of each chapter under `profile` (bookrun records)."""
    path = Path(build_dir) / "book-timings.json"
    table = json.loads(path.read_text()).get(profile, {}) if path.exists() else {}
    return pd.Series({k: v["seconds"] for k, v in table.items()}, name="wall time / s",
                     dtype=float)
