"""From simulated to measured spectra: what each lever buys, and the cross-theory test.

The levers of Chapter 6 (augmented pretraining, frequency calibration, realignment), alone and
together, ranked on the three measured libraries (`measured_libraries`) out of fold: no
molecule's own spectrum tunes anything that ranks it. One `EmbeddingCache` serves all of them,
so a frozen graph encoder (every realigned model keeps its pretrained one) embeds each library
once. The cross-theory table asks the same question without measured data: GFN2-xTB queries
against B3LYP frequencies (positions only) and against spectra computed with GFN1-xTB.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from vibraclip_core.config.profiles import Config
from vibraclip_core.config.query_modes import IR_RAMAN, QUERY_MODES
from vibraclip_core.data import augment as A
from vibraclip_core.data.datasets import PreparedData, StickSet
from vibraclip_core.experiments import realign as RA
from vibraclip_core.experiments.measured_libraries import LIB_DISTRACTORS, measured_ranks
from vibraclip_core.measured.calibration import out_of_fold_scales, scaled_inputs
from vibraclip_core.measured.experimental import MeasuredIR
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.embedding import EmbeddingCache
from vibraclip_core.retrieval.evaluate import evaluate, evaluate_ranks
from vibraclip_core.retrieval.library import CandidateLibrary
from vibraclip_core.training.train import load_model

SAME_THEORY = "same theory (GFN2)"
# B3LYP positions only: the intensities stay GFN2-xTB's, and the name says so
CROSS_THEORY = "B3LYP frequencies, GFN2-xTB intensities"
OTHER_THEORY = "other theory (GFN1-xTB spectra)"
THEORY_MODES = ("ir", "raman", IR_RAMAN)
# the measured levers' realignment settings: the paper's learning rate (Config.realign_lr)
# and a larger one; realign_grid puts the config's own rate first
REALIGN_GRID = (("last_layer", 1e-5), ("last_layer", 1e-3))


def realign_grid(config) -> tuple[tuple[str, float], ...]:
    """REALIGN_GRID with the paper's rate replaced by `config.realign_lr`."""
    return (("last_layer", config.realign_lr),) + REALIGN_GRID[1:]
Ranks = dict[tuple[str, str], torch.Tensor]  # (library, filter) -> (n,) ranks


def _embedded(model: VibraCLIP, libraries: dict[str, CandidateLibrary], build_dir: str,
              cache: EmbeddingCache | None) -> dict[str, CandidateLibrary]:
    return {name: lib.embed(model, build_dir, cache=cache) for name, lib in libraries.items()}


def realigned_out_of_fold(config, checkpoint: str | Path, measured: PreparedData,
                          folds: Sequence[dict[str, torch.Tensor]],
                          libraries: dict[str, CandidateLibrary], build_dir: str, epochs: int,
                          trainer_kwargs: dict | None = None,
                          grid: Sequence[tuple[str, float]] = REALIGN_GRID, tag: str = "exp",
                          records: Sequence[MeasuredIR] | None = None,
                          fold_factors: Sequence[tuple[float, float]] | None = None,
                          cache: EmbeddingCache | None = None) -> tuple[Ranks, list[str]]:
    """({(library, filter): (n,) out-of-fold ranks}, setting chosen per fold, as text). Per
    fold, each (trainable, lr) of `grid` realigns on the training folds (Raman masked); the one whose
    validation fold ranks best (mean rank, distractor library, no filter) ranks the test fold.
    With `fold_factors`, fold f's spectra (all of them: training, validation and test) are
    calibrated by its own factors, fitted without its test fold (`out_of_fold_scales`).
    `cache` keeps the frozen graph encoder's outputs across folds, settings and libraries."""
    out: Ranks = {}
    chosen = []
    no_raman = torch.zeros(len(measured), dtype=torch.bool)
    for f, split in enumerate(folds):
        fold = RA.with_splits(measured, split, f"fold{f}-of-{len(folds)}")
        if fold_factors is not None:
            below, above = fold_factors[f]
            fold = dataclasses.replace(fold, ir=scaled_inputs(records, fold_factors[f]),
                                       key=f"{fold.key}-scaled-{below:.4f}-{above:.4f}")
        best = None
        for trainable, lr in grid:
            run = RA.realign(config, checkpoint, fold, tag=f"realign-{tag}-{f}-{trainable}-{lr:g}",
                             epochs=epochs, lr=lr, trainable=trainable,
                             trainer_kwargs=trainer_kwargs, has_raman=no_raman, cache=cache)
            model = load_model(run.best_checkpoint)
            libs = _embedded(model, libraries, build_dir, cache)
            val = measured_ranks(model, fold, fold.ir, split["val"], libs, config.mass_tol_da)
            score = float(val[(LIB_DISTRACTORS, "none")].float().mean())
            if best is None or score < best[0]:
                best = (score, (trainable, lr), model, libs)
        _, setting, model, libs = best
        chosen.append(f"{setting[0].replace('_', ' ')}, lr {setting[1]:g}")
        for key, r in measured_ranks(model, fold, fold.ir, split["test"], libs,
                                    config.mass_tol_da).items():
            out.setdefault(key, torch.zeros(len(measured), dtype=torch.long))[split["test"]] = r
    return out, chosen


def measured_levers(models: dict[str, tuple[VibraCLIP, str | Path]], config, measured: PreparedData,
                    records: Sequence[MeasuredIR], folds: Sequence[dict[str, torch.Tensor]],
                    simulated: dict[str, np.ndarray], libraries: dict[str, CandidateLibrary],
                    build_dir: str, realign_epochs: int, trainer_kwargs: dict | None = None,
                    cache: EmbeddingCache | None = None
                    ) -> tuple[dict[str, Ranks], dict[str, list]]:
    """Out-of-fold ranks of every lever alone and together, for each model (name -> (model,
    checkpoint)): zero-shot, + calibration (region factors fitted per fold), + realignment
    (settings chosen per fold on its validation fold; for the first model on raw queries, i.e.
    realignment alone, for the others after calibration); and the settings and factors chosen.
    Without a `cache`, one is made for this call (graph-encoder outputs of each library)."""
    cache = EmbeddingCache(max_entries=32) if cache is None else cache
    rows = torch.arange(len(measured))
    calibrated, factors = out_of_fold_scales(records, folds, simulated)
    ranks, chosen = {}, {"calibration factors (below / above 2,500 cm⁻¹)":
                         [f"{a:.4f} / {b:.4f}" for a, b in factors]}
    for k, (name, (model, checkpoint)) in enumerate(models.items()):
        libs = _embedded(model, libraries, build_dir, cache)
        ranks[f"{name}: zero-shot"] = measured_ranks(model, measured, measured.ir, rows, libs,
                                                    config.mass_tol_da)
        ranks[f"{name} + calibration"] = measured_ranks(model, measured, calibrated, rows, libs,
                                                        config.mass_tol_da)
        cal = None if k == 0 else factors
        label = f"{name} + realignment" if k == 0 else f"{name} + calibration + realignment"
        ranks[label], chosen[label] = realigned_out_of_fold(
            config, checkpoint, measured, folds, libraries, build_dir, realign_epochs,
            trainer_kwargs, grid=realign_grid(config), tag=f"lever{k}", records=records,
            fold_factors=cal, cache=cache)
    return ranks, chosen


def lever_table(ranks: dict[str, Ranks], seed: int = 0, ks: tuple[int, ...] = (1, 10)
                ) -> pd.DataFrame:
    """Top-k % per lever (rows) and (library, filter, top-k) (columns) from out-of-fold ranks."""
    flat = {f"{lever}|{lib}|{how}": r for lever, d in ranks.items() for (lib, how), r in d.items()}
    table = evaluate_ranks(flat, seed=seed).table
    cols = {}
    for key in flat:
        lever, lib, how = key.split("|")
        for k in ks:
            cols.setdefault((lib, how, f"top{k}"), {})[lever] = float(table.loc[key, f"top{k}"])
    out = pd.DataFrame(cols).reindex(index=list(ranks))
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["library", "filter", "top-k %"])
    return out.round(1)


def lever_row(ranks: dict[str, Ranks], lever: str, library: str, how: str, seed: int = 0
              ) -> pd.Series:
    """The evaluation row (top1 ... top25 %) of one lever on one library and filter."""
    return evaluate_ranks({"x": ranks[lever][(library, how)]}, seed=seed).table.loc["x"]


def lever_summary(ranks: dict[str, Ranks], library: str, how: str = "none", seed: int = 0
                  ) -> pd.DataFrame:
    """Every lever's evaluation row (top1 ... top25 %, intervals) on one library and filter,
    indexed (library, lever): the table the book's summary reads."""
    t = evaluate_ranks({lever: r[(library, how)] for lever, r in ranks.items()}, seed=seed).table
    t.index = pd.MultiIndex.from_tuples([(library, lever) for lever in t.index],
                                        names=["library", "method"])
    return t


def cross_theory_queries(data: PreparedData, sticks: StickSet, fwhm_cm1: float,
                         other: StickSet | None = None) -> dict[str, PreparedData]:
    """The query sets of the cross-theory test: GFN2 spectra (same theory); B3LYP frequencies
    with GFN2 intensities, raw and calibrated onto the GFN2 scale by region factors fitted on
    the training split (`augment.fit_reference_scales`); and, when `other` (GFN1-xTB sticks,
    `second_theory`) is given, spectra computed entirely with that theory."""
    train_rows = A.stick_rows(sticks, data.index[data.splits["train"]])
    scales = A.fit_reference_scales(sticks.select(train_rows))
    queries = {SAME_THEORY: data, CROSS_THEORY: A.cross_theory_data(data, sticks, fwhm_cm1),
               f"{CROSS_THEORY}, calibrated ({scales[0]:.3f} / {scales[1]:.3f})":
                   A.cross_theory_data(data, sticks, fwhm_cm1, scales)}
    if other is not None:
        queries[OTHER_THEORY] = A.other_theory_data(data, other, fwhm_cm1)
    return queries


def cross_theory_table(models: dict[str, VibraCLIP], data: PreparedData, sticks: StickSet,
                       fwhm_cm1: float, build_dir: str, split: str = "test", seed: int = 0,
                       other: StickSet | None = None) -> pd.DataFrame:
    """One row per (model, queries) of `cross_theory_queries`; per query mode (IR, Raman,
    IR + Raman) the candidates, top-1 % with its 95 % bootstrap interval and top-10 % on
    `split` (GFN1 queries: the split's molecules GFN1-xTB could simulate)."""
    queries = cross_theory_queries(data, sticks, fwhm_cm1, other)
    rows, cache = {}, EmbeddingCache()  # the query sets share the split's structures
    for model_name, model in models.items():
        for q_name, q in queries.items():
            t = evaluate(model, q, split, build_dir, seed=seed, cache=cache).table
            rows[(model_name, q_name)] = {
                (mode, col): t.loc[mode, col] for mode in THEORY_MODES
                for col in ("n", "top1", "top1_ci", "top10")}
    out = pd.DataFrame(rows).T
    out.index.names = ["model", "queries"]
    out.columns.names = ["query", ""]
    for mode in THEORY_MODES:
        out[(mode, "n")] = out[(mode, "n")].astype(int)
        out[(mode, "top1")] = out[(mode, "top1")].astype(float).round(1)
        out[(mode, "top10")] = out[(mode, "top10")].astype(float).round(1)
    return out


MODE_LABELS = {mode: QUERY_MODES[mode].label for mode in THEORY_MODES}


def theory_display(cross: pd.DataFrame) -> pd.DataFrame:
    """`cross_theory_table` for reading: per query mode "top-1 %" with its 95 % interval in
    brackets and top-10 %, and the candidates of each row."""
    out = pd.DataFrame(index=cross.index)
    out["candidates"] = cross[("ir", "n")]
    for mode, label in MODE_LABELS.items():
        out[f"{label} top-1 %"] = [f"{t:.1f} ({ci})" for t, ci in zip(
            cross[(mode, "top1")], cross[(mode, "top1_ci")])]
        out[f"{label} top-10 %"] = cross[(mode, "top10")]
    return out


def cross_theory_readings(cross: pd.DataFrame, pretrained: str = "pretrained",
                          augmented: str = "augmented pretraining") -> str:
    """The paragraph under Chapter 6's cross-theory table: IR + Raman top-1 of both models on
    each kind of query, and what the augmented model gives up on GFN2 queries."""
    lib = (IR_RAMAN, "top1")
    t = cross[lib]
    n = int(cross.loc[(pretrained, SAME_THEORY), ("ir", "n")])
    drop = t[(pretrained, SAME_THEORY)] - t[(augmented, SAME_THEORY)]
    parts = [f"IR + Raman top-1 among the {n} test molecules, pretrained → augmented: "
             f"B3LYP frequencies {t[(pretrained, CROSS_THEORY)]:.1f} → "
             f"{t[(augmented, CROSS_THEORY)]:.1f} %"]
    if (pretrained, OTHER_THEORY) in t.index:
        ir = cross[("ir", "top1")]
        parts.append(f"GFN1-xTB spectra {t[(pretrained, OTHER_THEORY)]:.1f} → "
                     f"{t[(augmented, OTHER_THEORY)]:.1f} % (IR alone "
                     f"{ir[(pretrained, OTHER_THEORY)]:.1f} → {ir[(augmented, OTHER_THEORY)]:.1f} %)")
    parts.append(f"same theory {t[(pretrained, SAME_THEORY)]:.1f} → "
                 f"{t[(augmented, SAME_THEORY)]:.1f} %")
    verdict = ("Since the augmented model gives up more than one point on GFN2 queries, the book "
               "keeps both models: Chapters 2–5 and 7 use the pretrained one, and the model "
               "shipped for `vibraclip identify` (below) is the augmented one, meant for spectra "
               "that did not come from GFN2-xTB." if drop > 1 else
               "The augmented model is within a point of the pretrained one on GFN2 queries.")
    return "; ".join(parts) + f". {verdict}"


def training_spectra_text(config: Config) -> str:
    """Which theories' spectra a model trained on, for its card: GFN2-xTB, and the training
    molecules shown a second theory's spectrum instead (`second_theory*`)."""
    if config.second_theory_fraction <= 0:
        return "GFN2-xTB only"
    n = config.second_theory_molecules
    which = f"the first {n:,} training molecules" if n else "the training molecules"
    return (f"GFN2-xTB, and for {which} of `{config.second_theory}` that set's spectrum instead, "
            f"with probability {config.second_theory_fraction:g}")


def unseen_theories_text(config: Config) -> str:
    """Which of Chapter 6's query theories a model trained on (`second_theory*`) and which it
    never saw: the honest test of transfer is the latter."""
    if config.second_theory_fraction <= 0:
        return ("It trained on GFN2-xTB spectra only: the GFN1-xTB and the B3LYP-frequency "
                "queries are both theories it never saw.")
    return (f"It trained on {training_spectra_text(config)}: the GFN1-xTB queries are of a "
            "theory it trained on (other molecules: the test split's), and the B3LYP-frequency "
            "queries (GFN2-xTB intensities kept) are the positions it never saw. The measured "
            "spectra are the unseen domain: it never trained on a measurement.")
