"""The book's summary: headline results gathered from the tables the chapters saved.

Each chapter writes its table to `<build_dir>/results/<chapter>.csv`; this module reads them (it
never recomputes or retypes a number) and puts the paper's published QM9S figures beside them in
separate columns. Measured values stand in two pairs of columns: the test split, and the larger
library of the chapters' second library column (its size read from that column's label).
"""

from __future__ import annotations

import json
import time
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vibraclip_core.config.choices import PAPER_LIBRARY_SIZE
from vibraclip_core.config.query_modes import IR_RAMAN, IR_RAMAN_PAPER, QUERY_MODES
from vibraclip_core.experiments.ablations import LOSS_VARIANTS, PUBLISHED, PUBLISHED_LABEL
from vibraclip_core.experiments.results import read_results

TEST = "test split"
PUBLISHED_COLUMNS = [f"published top-1 % (QM9S, {PAPER_LIBRARY_SIZE:,})",
                     f"published top-25 % (QM9S, {PAPER_LIBRARY_SIZE:,})"]
# chapters' library tables (index (model, query), two header rows (library, metric))
LIBRARY_TABLES = ("02_pretraining_library", "03_loss_ablations", "04_mass_anchoring",
                  "05_missing_data")
NAN = float("nan")


def measured_columns(library: str) -> list[str]:
    """Column names of the measured top-1 / top-25 % against `library` ("test split" or a size)."""
    return [f"measured top-1 % ({library})", f"measured top-25 % ({library})"]


def library_size_text(label: str) -> str:
    """'12,741' from a library column label such as '12,741 candidates (the paper's size)'."""
    match = re.search(r"\d[\d,]*", label)
    return match.group(0) if match else label


@dataclass
class _Row:
    chapter: str
    result: str
    values: dict[str, tuple[float, float]]  # library ("test split" or a size) -> top-1, top-25 %
    published: tuple[float, float] = (NAN, NAN)


def _published(key: str | None) -> tuple[float, float]:
    pub = PUBLISHED.get(key or "", {})
    return pub.get("top1", NAN), pub.get("top25", NAN)


def _libraries(table: pd.DataFrame) -> list[str]:
    """The test split's label and the second library's, published columns left out."""
    return [c for c in table.columns.get_level_values(0).unique() if c != PUBLISHED_LABEL][:2]


def _values(table: pd.DataFrame, row: tuple) -> dict[str, tuple[float, float]]:
    """{"test split" | the second library's size: (top-1 %, top-25 %)} of one row."""
    labels = _libraries(table)
    names = [TEST] + [library_size_text(label) for label in labels[1:]]
    return {name: (float(table.loc[row, (label, "top1 %")]),
                   float(table.loc[row, (label, "top25 %")]))
            for name, label in zip(names, labels)}


def _pretraining(lib: pd.DataFrame | None, test: pd.DataFrame | None) -> list[_Row]:
    """The main model's three query modes: from the library table when saved, else the test
    split's table."""
    rows = []
    for mode in (IR_RAMAN, IR_RAMAN_PAPER, "ir"):
        pub = _published("all_pairs+mass" if mode == IR_RAMAN_PAPER else None)
        if lib is not None and (key := (lib.index.get_level_values(0)[0], mode)) in lib.index:
            values = _values(lib, key)
        elif lib is None and test is not None and mode in test.index:
            values = {TEST: (float(test.loc[mode, "top1"]), float(test.loc[mode, "top25"]))}
        else:
            continue
        rows.append(_Row("2", f"main model, {QUERY_MODES[mode].text}", values, pub))
    return rows


def _loss_ablations(t: pd.DataFrame) -> list[_Row]:
    """Each loss in the mode the paper scored it with (IR; eq. 6 for the tri-modal ones) and the
    tri-modal ones also with the library score; the baselines with the library score."""
    rows = []
    for v in LOSS_VARIANTS:
        modes = (IR_RAMAN_PAPER, IR_RAMAN) if IR_RAMAN_PAPER in v.query_modes \
            else ("ir",)
        rows += [_Row("3", f"{v.label}, {QUERY_MODES[m].text}", _values(t, (v.label, m)),
                      _published(v.key if m != IR_RAMAN else None))
                 for m in modes if (v.label, m) in t.index]
    labels = {v.label for v in LOSS_VARIANTS}
    return rows + [_Row("3", f"{model}, {QUERY_MODES[IR_RAMAN].text}",
                        _values(t, (model, IR_RAMAN)))
                   for model in t.index.get_level_values(0).unique()
                   if model not in labels and (model, IR_RAMAN) in t.index]


# Chapter 4's rows scored as the paper scored its Fig. 3B models (IR; eq. 6 for all pairs)
MASS_PAPER_ROWS = {"graph_ir": "mass anchoring", "all_pairs": "mass anchoring, paper score (eq. 6)"}


def _mass_anchoring(t: pd.DataFrame) -> list[_Row]:
    """Both models in every query setting saved; published beside the row scored as the
    paper scored that model (MASS_PAPER_ROWS)."""
    return [_Row("4", f"{key}: {query}", _values(t, (key, query)),
                 _published(f"{key}+mass" if query == MASS_PAPER_ROWS[key] else None))
            for key in ("graph_ir", "all_pairs") if key in t.index.get_level_values(0)
            for query in t.loc[key].index]


def _missing_data(t: pd.DataFrame) -> list[_Row]:
    """Each series of Chapter 5 at its largest fraction of training spectra removed, with the
    published top-1 the chapter saved beside it (the released notebook's, where it has one)."""
    rows = []
    for series in t.index.get_level_values(0).unique():
        key = (series, max(t.loc[series].index))
        pub = (float(t.loc[key, (PUBLISHED_LABEL, "top1 %")])
               if (PUBLISHED_LABEL, "top1 %") in t.columns else NAN)
        rows.append(_Row("5", f"{series}, {key[1]:g} % of training spectra removed",
                         _values(t, key), (pub, NAN)))
    return rows


def _realignment(ood: pd.DataFrame | None, measured: pd.DataFrame | None) -> list[_Row]:
    """Chapter 6's rows: in the test-split columns, against the library the row names."""
    rows = []
    if ood is not None:
        rows += [_Row("6", f"larger molecules (their own test split), {name}",
                      {TEST: (float(ood.loc[(name, IR_RAMAN), "top1"]),
                              float(ood.loc[(name, IR_RAMAN), "top25"]))})
                 for name in ood.index.get_level_values(0).unique()]
    if measured is not None:
        lib = measured.index.get_level_values(0)[0]
        rows += [_Row("6", f"measured IR against library {lib}, {method}",
                      {TEST: (float(measured.loc[(lib, method), "top1"]),
                              float(measured.loc[(lib, method), "top25"]))})
                 for method in measured.loc[lib].index]
    return rows


def headline_table(build_dir: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """(table, names of the results that are missing). Columns: chapter, result, measured top-1
    / top-25 % on the test split, the same against each larger library (named by its size),
    published top-1 / top-25 %. attrs["libraries"] maps each larger library's size to the full
    column label it was read from."""
    build_dir = Path(build_dir)
    libs = {name: read_results(build_dir, name) for name in LIBRARY_TABLES}
    test02 = read_results(build_dir, "02_pretraining")
    ood = read_results(build_dir, "06_realignment_ood")
    measured = read_results(build_dir, "06_realignment_measured")
    missing = [name for name, t in (("02_pretraining", test02), *libs.items(),
                                    ("06_realignment (larger molecules)", ood),
                                    ("06_realignment (measured IR)", measured)) if t is None]
    rows = _pretraining(libs["02_pretraining_library"], test02)
    for name, read in (("03_loss_ablations", _loss_ablations),
                       ("04_mass_anchoring", _mass_anchoring), ("05_missing_data", _missing_data)):
        rows += read(libs[name]) if libs[name] is not None else []
    rows += _realignment(ood, measured)
    sizes = [s for s in dict.fromkeys(s for r in rows for s in r.values) if s != TEST]
    columns = ["chapter", "result", *(c for s in (TEST, *sizes) for c in measured_columns(s)),
               *PUBLISHED_COLUMNS]
    records = [[r.chapter, r.result,
                *(v for s in (TEST, *sizes) for v in r.values.get(s, (NAN, NAN))), *r.published]
               for r in rows]
    table = pd.DataFrame(records, columns=columns)
    table.attrs["libraries"] = {library_size_text(labels[1]): labels[1] for t in libs.values()
                                if t is not None and len(labels := _libraries(t)) > 1}
    return table, missing


def chapter_timings(build_dir: str | Path, profile: str) -> pd.Series:
    """Wall seconds of the latest execution of each chapter under `profile` (bookrun records)."""
    path = Path(build_dir) / "book-timings.json"
    table = json.loads(path.read_text()).get(profile, {}) if path.exists() else {}
    return pd.Series({k: v["seconds"] for k, v in table.items() if not k.startswith("_")},
                     name="wall time / s", dtype=float)


def book_run(build_dir: str | Path, profile: str) -> tuple[float, int] | None:
    """(wall seconds since the latest `bookrun` under `profile` started, its parallel jobs), or
    None when no run was recorded."""
    path = Path(build_dir) / "book-timings.json"
    run = json.loads(path.read_text()).get(profile, {}).get("_run") if path.exists() else None
    if not run or "started" not in run:
        return None
    return time.time() - float(run["started"]), int(run.get("jobs", 1))


def missing_text(missing: Sequence[str]) -> str:
    """The note naming the chapters not run yet in this build folder (empty when none)."""
    return "Not run yet in this build folder: " + ", ".join(missing) + "." if missing else ""


def libraries_text(table: pd.DataFrame) -> str:
    """The sentences on the larger libraries of this run and what the published columns are."""
    libraries = table.attrs["libraries"]
    return (
        "Larger library in this run: "
        + ("; ".join(f"**{size}** candidates (column label: \"{label}\")"
                     for size, label in libraries.items()) or "none saved")
        + f". The published columns are the paper's QM9S figures at {PAPER_LIBRARY_SIZE:,} "
        "candidates (its test split, DFT spectra, full training), not figures at our library. "
        "Chapter 6's rows sit in the test-split columns; each names the library it was ranked "
        "against. A dash marks a value not measured (the paper score needs every candidate's "
        "spectra, so it exists only at the test split) or not published.")


def timings_frame(timings: pd.Series) -> pd.DataFrame:
    """Seconds per chapter with a minutes column."""
    return timings.to_frame().assign(**{"minutes": (timings / 60).round(1)})


def cost_text(timings: pd.Series, run: tuple[float, int] | None) -> str:
    """The sentences on the summed chapter times and the latest run's wall time (empty when no
    chapter has a timing)."""
    if not len(timings):
        return ""
    return (f"Sum over {len(timings)} chapters: {timings.sum() / 60:.1f} min. "
            + (f"The latest run executed up to {run[1]} chapters side by side (`bookrun --jobs "
               f"{run[1]}`), so chapters overlap; from its start to this page it took "
               f"**{run[0] / 60:.1f} min** of wall time." if run else ""))
