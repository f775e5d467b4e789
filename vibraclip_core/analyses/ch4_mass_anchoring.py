"""Chapter 4's runs and readings: mass anchoring against a plain mass filter, and a wrong mass.

The unanchored IR-only and all-pairs runs are Chapter 3's (loaded from the run cache), the
anchored ones are shared with Chapter 5; each is evaluated as trained and with the ±δ Da filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vibraclip_core.config.profiles import Config
from vibraclip_core.config.query_modes import IR_RAMAN_PAPER
from vibraclip_core.config.query_modes import primary_query_mode
from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.experiments.ablations import (LOSS_VARIANTS, MASS_VARIANTS, VariantRun,
                                                  library_table, reevaluate, run_variant, top1)
from vibraclip_core.experiments.ablations import with_published

# each model in its own query mode: IR-only models with IR, all-pairs ones with IR + Raman
MODES = {key: primary_query_mode(key) for key in ("graph_ir", "all_pairs")}
WRONG_MASS_MODEL = "all_pairs+mass"
WRONG_MASS_ROW = "all pairs + mass"


@dataclass
class AnchoringRuns:
    """Runs by variant key: unanchored (`plain`), anchored, and each with the mass filter."""

    plain: dict[str, VariantRun]
    anchored: dict[str, VariantRun]
    filtered: dict[str, VariantRun]
    both: dict[str, VariantRun]

    def all(self) -> list[VariantRun]:
        """The trained runs (unanchored, then anchored)."""
        return [*self.plain.values(), *self.anchored.values()]


def anchoring_runs(config: Config, data: PreparedData,
                   trainer_kwargs: dict[str, Any] | None = None) -> AnchoringRuns:
    """Train or load the unanchored and anchored IR-only and all-pairs models, then evaluate
    each again with candidates restricted to ±`config.mass_tol_da` of the query's mass."""
    tol = config.mass_tol_da
    plain = {v.key: run_variant(config, data, v, trainer_kwargs)
             for v in LOSS_VARIANTS if v.key in MODES}
    anchored = {v.key: run_variant(config, data, v, trainer_kwargs) for v in MASS_VARIANTS}
    filtered = {key: reevaluate(run, data, mass_tol_da=tol) for key, run in plain.items()}
    both = {key: reevaluate(run, data, mass_tol_da=tol) for key, run in anchored.items()}
    return AnchoringRuns(plain, anchored, filtered, both)


def filter_settings(mass_tol_da: float) -> tuple[str, str]:
    """The table's names of the settings "mass filter" and "anchoring + filter"."""
    return f"mass filter ±{mass_tol_da} Da", f"anchoring + filter ±{mass_tol_da} Da"


def anchoring_curves(settings: dict[str, dict[str, VariantRun]]) -> dict[str, np.ndarray]:
    """Test-split top-k curves of both models in their own mode, under the first three settings
    (no mass, mass filter, mass anchoring)."""
    return {f"{key}, {label}": settings[label][key].evaluation.curves[MODES[key]]
            for key in MODES for label in list(settings)[:3]}


def top1_lookup(table: pd.DataFrame, settings: Sequence[str]) -> dict[tuple[str, str, int], float]:
    """{(model key, setting, library 0 or 1): top-1 %} of Chapter 4's table."""
    return {(k, s, lib): top1(table, k, s, lib) for k in MODES for s in settings for lib in (0, 1)}


def filter_gain(t: dict[tuple[str, str, int], float], mass_tol_da: float,
                key: str = "all_pairs") -> list[float]:
    """[test split, larger library]: how many times the mass filter multiplies top-1 of the
    unanchored `key` model (`top1_lookup` values)."""
    f, _ = filter_settings(mass_tol_da)
    return [t[key, f, lib] / max(t[key, "no mass", lib], 1e-9) for lib in (0, 1)]


def wrong_mass(anchored: VariantRun, data: PreparedData, offsets_da: Sequence[float],
               labels: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, top-1 % by offset) of the anchored model queried with its query masses offset
    by each of `offsets_da` and by 0 (the candidates keep their true masses; no filter)."""
    offsets = sorted({0.0, *offsets_da})
    runs = {dm: anchored if dm == 0 else reevaluate(anchored, data, query_mass_offset_da=dm)
            for dm in offsets}
    mode = MODES["all_pairs"]
    table = library_table([(WRONG_MASS_ROW, f"{dm:+g} Da", mode,
                            (runs[dm].evaluation, runs[dm].library)) for dm in offsets], labels)
    by_offset = pd.DataFrame({lib: [top1(table, WRONG_MASS_ROW, f"{dm:+g} Da", i)
                                    for dm in offsets] for i, lib in enumerate(labels)},
                             index=pd.Index(offsets, name="mass offset / Da"))
    return table, by_offset


def anchoring_text(t: dict, mass_tol_da: float) -> str:
    """The sentences on top-1 at the test split without mass, filtered, anchored and both (`t`:
    `top1_lookup`), with which of filter and anchoring recovered more in this run."""
    f, fb = filter_settings(mass_tol_da)
    return (
        f"For the all-pairs model, top-1 goes from {t['all_pairs', 'no mass', 0]:.1f} % without "
        f"mass to {t['all_pairs', f, 0]:.1f} % with the mass filter and "
        f"{t['all_pairs', 'mass anchoring', 0]:.1f} % with anchoring; for the IR-only model from "
        f"{t['graph_ir', 'no mass', 0]:.1f} % to {t['graph_ir', f, 0]:.1f} % (filter) and "
        f"{t['graph_ir', 'mass anchoring', 0]:.1f} % (anchoring). "
        + ("In this run the filter alone recovers more than anchoring does for the all-pairs "
           "model. " if t['all_pairs', f, 0] > t['all_pairs', 'mass anchoring', 0] else
           "In this run anchoring beats the plain filter for the all-pairs model. ")
        + f"Combining both gives {t['all_pairs', fb, 0]:.1f} %.")


def larger_library_text(t: dict, mass_tol_da: float, label: str) -> str:
    """The sentences on the larger library (`label`) and how many times the filter multiplies
    top-1 there against the test split."""
    f, fb = filter_settings(mass_tol_da)
    gain = filter_gain(t, mass_tol_da)
    return (
        f"Against {label}, the all-pairs model reaches {t['all_pairs', 'no mass', 1]:.1f} % "
        "without mass, "
        f"{t['all_pairs', f, 1]:.1f} % with the filter, {t['all_pairs', 'mass anchoring', 1]:.1f} "
        f"% with anchoring and {t['all_pairs', fb, 1]:.1f} % with both. The filter multiplies "
        f"top-1 by {gain[0]:.1f} at the test split and by {gain[1]:.1f} at the larger library"
        + (": the more candidates, the more the mass is worth." if gain[1] > gain[0] else "."))


def wrong_mass_text(top1_by_offset: pd.DataFrame, t: dict) -> str:
    """The sentences on the worst wrong mass against the right one and against no mass."""
    worst = top1_by_offset.iloc[:, 0].idxmin()
    right, bad, none = (top1_by_offset.iloc[:, 0][0.0], top1_by_offset.iloc[:, 0][worst],
                        t["all_pairs", "no mass", 0])
    return (
        f"With the correct mass the anchored model finds {right:.1f} % of the test molecules "
        f"first; the worst offset tried ({worst:+.0f} Da) leaves {bad:.1f} %, against "
        f"{none:.1f} % for the model trained without mass"
        + (": in this run a wrong mass costs more than supplying none."
           if bad < none else ": in this run even the worst offset did not fall below the "
           "unanchored model."))


def mass_anchoring_table(plain: dict[str, VariantRun], filtered: dict[str, VariantRun],
                         anchored: dict[str, VariantRun], both: dict[str, VariantRun],
                         mass_tol_da: float, labels: tuple[str, str]
                         ) -> tuple[pd.DataFrame, dict[str, dict[str, VariantRun]]]:
    """Chapter 4's table: IR-only and all-pairs models (keys "graph_ir", "all_pairs"), each in
    its own query mode, without mass, filtered, anchored, anchored + filtered; plus the anchored
    all-pairs model under eq. 6, where the paper's Fig. 3B figure sits. Also returns the runs by
    setting name (model key -> run)."""
    unanchor = lambda runs: {k.removesuffix("+mass"): r for k, r in runs.items()}  # noqa: E731
    settings = {"no mass": plain, f"mass filter ±{mass_tol_da} Da": filtered,
                "mass anchoring": unanchor(anchored),
                f"anchoring + filter ±{mass_tol_da} Da": unanchor(both)}
    eq6 = ("all_pairs", "mass anchoring, paper score (eq. 6)", IR_RAMAN_PAPER,
           (anchored["all_pairs+mass"].evaluation, anchored["all_pairs+mass"].library))
    table = library_table([(key, name, primary_query_mode(key),
                            (runs[key].evaluation, runs[key].library))
                           for key in ("graph_ir", "all_pairs") for name, runs in settings.items()]
                          + [eq6], labels)
    table = with_published(table, {("graph_ir", "mass anchoring"): "graph_ir+mass",
                                   eq6[:2]: "all_pairs+mass"})
    return table, settings
