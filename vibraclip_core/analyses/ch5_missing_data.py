"""Chapter 5's runs and readings: the mass-anchored models trained with a fraction of their
training IR (case a) or Raman (case b) spectra removed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from vibraclip_core.config.choices import PAPER_LIBRARY_SIZE
from vibraclip_core.config.profiles import Config
from vibraclip_core.config.query_modes import IR_RAMAN, IR_RAMAN_PAPER
from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.experiments.ablations import (MASS_VARIANTS, PUBLISHED_LABEL, Variant,
                                                  VariantRun, run_variant)
from vibraclip_core.experiments.ablations import library_table
from vibraclip_core.experiments.plots import plot_metric_lines

# (anchored variant, config field of the spectra it loses) of the paper's two cases
CASES = {"a": ("graph_ir+mass", "missing_ir"), "b": ("all_pairs+mass", "missing_raman")}


def with_missing(variant: Variant, field: str, fraction: float) -> Variant:
    """`variant` trained with `fraction` of its training spectra of one kind removed (`field`:
    "missing_ir" or "missing_raman"); at 0 the variant itself, so its run is shared."""
    if field not in ("missing_ir", "missing_raman"):
        raise ValueError(f"field {field!r}: choose 'missing_ir' or 'missing_raman'")
    if fraction == 0:
        return variant
    return Variant(f"{variant.key}+missing-{field}-{fraction:g}", variant.label,
                   {**variant.overrides, field: fraction})


def missing_runs(config: Config, data: PreparedData, fractions: Sequence[float],
                 trainer_kwargs: dict[str, Any] | None = None
                 ) -> tuple[dict[float, VariantRun], dict[float, VariantRun]]:
    """({fraction: run} of case (a), of case (b)): every fraction of case (a) is trained (or
    loaded) first, then those of case (b)."""
    base = {v.key: v for v in MASS_VARIANTS}
    out = []
    for key, field in CASES.values():
        out.append({f: run_variant(config, data, with_missing(base[key], field, f),
                                   trainer_kwargs) for f in fractions})
    return out[0], out[1]


def top1_shown(table: pd.DataFrame) -> pd.DataFrame:
    """The top-1 % columns of `missing_data_table`, one per library (and published)."""
    return table.xs("top1 %", axis=1, level="metric")


def published_zeros(shown: pd.DataFrame) -> list[str]:
    """The fractions ("50 %") at which a published top-1 is exactly 0."""
    return [f"{pct:g} %" for (_, pct), v in shown[PUBLISHED_LABEL].items() if v == 0]


def by_fraction(shown: pd.DataFrame, library: str) -> pd.DataFrame:
    """Top-1 % of one library: rows % of spectra removed, columns the series."""
    return shown[library].unstack(0)


def top1_change(top1: pd.DataFrame) -> tuple[float, float, pd.Series]:
    """(lowest %, highest %, change of top-1 between them per series in points, rounded to
    0.1 and never "-0.0")."""
    lo, hi = top1.index.min(), top1.index.max()
    change = (top1.loc[hi] - top1.loc[lo]).round(1)
    return lo, hi, change.mask(change == 0, 0.0)


def plot_missing(shown: pd.DataFrame, library: str) -> plt.Figure:
    """Top-1 against the fraction removed: ours at `library` (solid) and the published
    figures (dashed)."""
    ours = by_fraction(shown, library)
    published = (by_fraction(shown, PUBLISHED_LABEL).dropna(axis=1, how="all")
                 .add_prefix("published: "))
    fig = plot_metric_lines(pd.concat([ours, published], axis=1),
                            "spectra removed from training / %", "top-1 accuracy / %",
                            f"ours: {library}; published (dashed): QM9S, "
                            f"{PAPER_LIBRARY_SIZE:,} candidates")
    for line in fig.axes[0].lines[ours.shape[1]:]:
        line.set_linestyle("--")
    fig.axes[0].legend(fontsize=7)  # again, to show the dashes
    return fig


def published_zeros_text(shown: pd.DataFrame) -> str:
    """The note on the published 0.0 values of the table (empty when it shows none)."""
    zero = published_zeros(shown)
    if not zero:
        return ""
    return (f"A published 0.0 (at {', '.join(zero)} removed) stands for the released notebook's "
            "≈ 0, read from its figure.")


# the rows the IR-only comparison reads
IR_ONLY_MODEL = "(a) IR + mass, IR query"
IR_QUERY_OF_TRIMODAL = "(b) all pairs + mass, IR-only query"


def change_text(shown: pd.DataFrame, test_label: str) -> str:
    """The sentence on how much removing the largest fraction changes each row's top-1."""
    _, hi, change = top1_change(by_fraction(shown, test_label))
    return (f"Removing {hi:g} % of the spectra from training changes top-1 on the test split by "
            + "; ".join(f"{d:+.1f} points for {name}" for name, d in change.dropna().items())
            + ".")


def ir_only_text(shown: pd.DataFrame, labels: tuple[str, str]) -> str:
    """The sentences on IR-only queries: the tri-modal model against the graph + IR model, on
    complete data, at both library sizes, and whether Raman helped at both in this run."""
    top1, big = by_fraction(shown, labels[0]), by_fraction(shown, labels[1])
    lo, _, _ = top1_change(top1)
    ir_a, ir_b = IR_ONLY_MODEL, IR_QUERY_OF_TRIMODAL
    return (
        f"Queried with IR only, the tri-modal model trained on complete data reaches "
        f"{top1.loc[lo, ir_b]:.1f} % on the test split and {big.loc[lo, ir_b]:.1f} % among "
        f"{labels[1]}, against {top1.loc[lo, ir_a]:.1f} % and "
        f"{big.loc[lo, ir_a]:.1f} % for the model trained on graph and IR alone: "
        + ("training with Raman helped IR-only queries at both library sizes in this run."
           if top1.loc[lo, ir_b] > top1.loc[lo, ir_a] and big.loc[lo, ir_b] > big.loc[lo, ir_a]
           else "training with Raman did not help IR-only queries at both library sizes in this "
           "run."))


# The released missing-data notebook's top-1 % (QM9S) against the fraction of training spectra
# removed: IR removed from the IR + mass model, Raman removed from the all-pairs + mass model.
PUBLISHED_MISSING: dict[str, dict[float, float]] = {
    "graph_ir+mass": {0.0: 24.2, 0.05: 22.7, 0.10: 22.7, 0.15: 20.6, 0.20: 17.2, 0.50: 0.0},
    "all_pairs+mass": {0.0: 81.7, 0.05: 82.0, 0.10: 80.7, 0.15: 76.8, 0.20: 78.2, 0.50: 63.5},
}


def missing_data_table(runs_ir: dict[float, VariantRun], runs_raman: dict[float, VariantRun],
                       labels: tuple[str, str]) -> pd.DataFrame:
    """Chapter 5's table indexed by (series, % of spectra removed): (a) IR + mass with IR
    queries (IR removed), (b) all pairs + mass (Raman removed) with eq. 6, the library score and
    IR alone; published top-1 (PUBLISHED_MISSING) beside the rows the paper scored alike."""
    series = {"(a) IR + mass, IR query": (runs_ir, "ir", "graph_ir+mass"),
              "(b) all pairs + mass, IR + Raman, paper score": (runs_raman, IR_RAMAN_PAPER,
                                                                 "all_pairs+mass"),
              "(b) all pairs + mass, IR + Raman, library score": (runs_raman,
                                                                   IR_RAMAN, ""),
              "(b) all pairs + mass, IR-only query": (runs_raman, "ir", "")}
    table = library_table([(name, round(100 * f, 4), mode, (runs[f].evaluation, runs[f].library))
                           for name, (runs, mode, _) in series.items() for f in runs], labels)
    table[(PUBLISHED_LABEL, "top1 %")] = [PUBLISHED_MISSING.get(key, {}).get(f, float("nan"))
                                          for runs, _, key in series.values() for f in runs]
    return table.rename_axis(["series", "spectra removed from training / %"])
