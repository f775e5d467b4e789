"""Chapter 6's steps: Chapter 2's model moved to larger molecules and to measured IR spectra.

Each function is one step of the chapter on top of `realign` and `transfer`: realign on the
larger molecules and score before / after, turn measured records into queries, score the levers
out of fold on the three measured libraries, and set our numbers beside the paper's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown

from vibraclip_core.config.choices import PAPER_PUBCHEM_SIZE
from vibraclip_core.config.profiles import Config
from vibraclip_core.config.query_modes import IR_RAMAN
from vibraclip_core.data.datasets import PreparedData, prepare
from vibraclip_core.data.ood import OOD_DIR
from vibraclip_core.experiments import measured_libraries as ML
from vibraclip_core.experiments import measured_rerank as MR
from vibraclip_core.experiments import realign as RA
from vibraclip_core.experiments import transfer as T
from vibraclip_core.experiments.chapter import Pretrained
from vibraclip_core.measured.experimental import MeasuredIR
from vibraclip_core.measured.prepared import load_paired
from vibraclip_core.model.exported import exported_run
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.embedding import EmbeddingCache
from vibraclip_core.retrieval.evaluate import Evaluation, evaluate, evaluate_ranks
from vibraclip_core.retrieval.library import CandidateLibrary
from vibraclip_core.retrieval.rerank import (ALL_CANDIDATES, CONFIDENCE_FEATURES, Reranker,
                                             reliability)
from vibraclip_core.training.train import load_model

OOD_MODES = (IR_RAMAN, "ir")
REALIGNED_PARTS = ("last_layer", "heads")
ALL_LEVERS = "augmented + calibration + realignment"  # every lever of Chapter 6 at once


def larger_molecules(main: Pretrained, config: Config, ood_dir: str | None,
                     trainer_kwargs: dict[str, Any] | None = None
                     ) -> tuple[PreparedData, dict[str, Evaluation]]:
    """(the larger molecules, {setting: test-split evaluation}): Chapter 2's model as it is,
    then realigned (`config.realign_epochs`, `realign_lr`) on the set's training split
    (`ood_split_fractions`: a larger test share, the set is small) with the last layer and with
    the whole heads free. Masses are standardized with the pretraining statistics, as the model
    expects."""
    ood_cfg = config.replace(data_dir=str(ood_dir or OOD_DIR),
                             split_fractions=config.ood_split_fractions)
    ood = RA.with_mass_stats(prepare(ood_cfg), main.checkpoint)
    evaluations = {"before realignment": evaluate(main.model, ood, "test", config.build_dir,
                                                  seed=config.seed)}
    for trainable in REALIGNED_PARTS:
        run = RA.realign(main.config, main.checkpoint, ood, tag=f"realign-ood-{trainable}",
                         trainable=trainable, epochs=config.realign_epochs, lr=config.realign_lr,
                         trainer_kwargs=trainer_kwargs)
        evaluations[f"realigned: {trainable.replace('_', ' ')}"] = evaluate(
            load_model(run.best_checkpoint), ood, "test", config.build_dir, seed=config.seed)
    return ood, evaluations


def topk_frame(evaluations: dict[str, Evaluation], modes: Sequence[str] = OOD_MODES
               ) -> pd.DataFrame:
    """Top-1/5/10/25 % (rows: setting, query mode) of named evaluations, one decimal."""
    return pd.concat({name: ev.table.loc[list(modes), ["top1", "top5", "top10", "top25"]]
                      for name, ev in evaluations.items()}).round(1)


def measured_queries(records: Sequence[MeasuredIR], checkpoint: str | Path, conformer_seed: int
                     ) -> tuple[PreparedData, list[MeasuredIR], list[str]]:
    """(measured IR queries with the pretraining mass statistics, the records kept in the same
    order, files dropped because no conformer could be built)."""
    measured, dropped = RA.measured_data(records, seed=conformer_seed)
    kept = [r for r in records if r.file not in dropped]
    return RA.with_mass_stats(measured, checkpoint), kept, dropped


def overlay_example(records: Sequence[MeasuredIR], simulated: dict[str, np.ndarray],
                    name: str) -> int:
    """Position of the first record of molecule `name` that has a simulated spectrum."""
    found = [i for i, r in enumerate(records) if r.identity in simulated and r.name == name]
    if not found:
        raise ValueError(f"overlay_molecule={name!r}: no measured record of that name with a "
                         "simulated spectrum; choose one of "
                         + ", ".join(sorted({r.name for r in records if r.identity in simulated})))
    return found[0]


@dataclass
class MeasuredLevers:
    """Out-of-fold ranks of every lever ({lever: {(library, filter): ranks}}), the settings
    chosen per fold, the libraries (`measured_libraries.measured_libraries`) and their sizes."""

    ranks: dict[str, dict[tuple[str, str], torch.Tensor]]
    chosen: dict[str, list]
    libraries: dict[str, CandidateLibrary]
    sizes: dict[str, int]
    seed: int
    reranker: Reranker
    chance: pd.DataFrame  # per (library, filter): candidates per query, chance top-1/top-10 %
    seen: np.ndarray  # (q,) bool: the query's molecule is in the pretraining training split
    confidence: dict[str, np.ndarray]  # "lever|library|filter" -> (q,) P(rank 1 is right)
    groups: np.ndarray  # (q,) each query's molecule: intervals resample molecules

    @property
    def ours(self) -> str:
        """The row fixed before the run as ours: the augmented model fused with the match."""
        return [k for k in self.ranks if k.startswith("augmented + spectrum match")][0]

    def intervals(self) -> pd.DataFrame:
        """Zero-shot models, the match alone, the re-ranked rows and every lever at once, with
        95 % intervals at every library and filter, beside the chance level."""
        levers = ["pretrained: zero-shot", "augmented: zero-shot", MR.MATCH_ALONE,
                  *[k for k in self.ranks if "spectrum match (" in k], ALL_LEVERS]
        return MR.intervals_table(self.ranks, self.chance, levers, self.seed, self.groups)

    def paired(self) -> pd.DataFrame:
        """Ours minus the augmented model alone and minus the match alone, top-1 / top-10 points
        on the same queries with intervals over molecules, at each library (the isomer library
        with its formula filter)."""
        return MR.paired_differences(self.ranks, self.ours,
                                     ["augmented: zero-shot", MR.MATCH_ALONE], MR.PAIRED_KEYS,
                                     self.groups, self.seed)

    def open_set(self) -> pd.DataFrame:
        """On the measured queries (distractor library, no filter), with each query's molecule in
        the library and removed from it: the share told "no candidate fits", and the
        confidence's expected calibration error (reported, never fitted)."""
        correct = self.ranks[self.ours][(ML.LIB_DISTRACTORS, "none")].numpy() == 0
        return MR.open_set_rates(self.reranker, self.confidence,
                                 f"{self.ours}|{ML.LIB_DISTRACTORS}|none", correct)

    def zero_shot(self) -> pd.DataFrame:
        """The zero-shot and re-ranked rows over all queries and over the queries whose molecule
        was not in the pretraining data (distractor library, no filter)."""
        levers = ["pretrained: zero-shot", "augmented: zero-shot", MR.MATCH_ALONE, self.ours]
        return MR.zero_shot_split({k: self.ranks[k] for k in levers}, self.seen,
                                  ML.LIB_DISTRACTORS, seed=self.seed)

    def reliability(self, bins: int = 4) -> pd.DataFrame:
        """The confidence of `ours` against its outcome on the measured queries (distractor
        library, no filter): reported, never fitted."""
        p = self.confidence[f"{self.ours}|{ML.LIB_DISTRACTORS}|none"]
        return reliability(p, self.ranks[self.ours][(ML.LIB_DISTRACTORS, "none")].numpy() == 0, bins)

    def table(self) -> pd.DataFrame:
        """`transfer.lever_table` of the ranks."""
        return T.lever_table(self.ranks, seed=self.seed)

    def summary(self) -> pd.DataFrame:
        """Every lever on the distractor library without a filter (the book's summary rows)."""
        return T.lever_summary(self.ranks, ML.LIB_DISTRACTORS, seed=self.seed)

    def curves(self, library: str = ML.LIB_DISTRACTORS, how: str = "none"
               ) -> dict[str, np.ndarray]:
        """Top-k curve of each lever on one library and filter."""
        return {lever: evaluate_ranks({"x": r[(library, how)]}).curves["x"]
                for lever, r in self.ranks.items()}


def measured_levers(main: Pretrained, augmented: Pretrained, config: Config,
                    measured: PreparedData, records: Sequence[MeasuredIR],
                    simulated: dict[str, np.ndarray], reranker: Reranker,
                    trainer_kwargs: dict[str, Any] | None = None) -> MeasuredLevers:
    """Score augmented pretraining, calibration and realignment, alone and together, on the
    three measured libraries (`config.measured_library_size` candidates with distractors),
    out of fold over `config.folds` grouped folds (`transfer.measured_levers`); then the
    spectrum match alone and each zero-shot model's shortlist re-ranked by `reranker`
    (`measured_rerank`; fixed before the run, nothing fitted on measured spectra)."""
    libraries = ML.measured_libraries(main.data, measured, config.measured_library_size,
                                     config.build_dir, config.conformer_seed, config.workers,
                                     seed=config.seed)
    splits = RA.kfold_splits(measured.identity, config.folds, seed=config.seed)
    models = {"pretrained": (main.model, main.checkpoint),
              "augmented": (augmented.model, augmented.checkpoint)}
    cache = EmbeddingCache(max_entries=32)
    ranks, chosen = T.measured_levers(models, main.config, measured, records, splits, simulated,
                                      libraries, config.build_dir, config.realign_epochs,
                                      trainer_kwargs, cache=cache)
    matches = MR.library_matches(records, measured, libraries, reranker,
                                 Path(config.build_dir) / "cache", config.workers)
    embedded = {name: {n: lib.embed(m, config.build_dir, cache=cache)
                       for n, lib in libraries.items()} for name, (m, _) in models.items()}
    extra, confidence = MR.reranked_levers({n: m for n, (m, _) in models.items()}, measured,
                                           embedded, matches, reranker, config.mass_tol_da)
    ranks = {**{k: v for k, v in ranks.items() if k != ALL_LEVERS}, **extra,
             ALL_LEVERS: ranks[ALL_LEVERS]}
    sizes = {name: len(library) for name, library in libraries.items()}
    return MeasuredLevers(ranks, chosen, libraries, sizes, config.seed, reranker,
                          MR.chance_levels(measured, libraries, config.mass_tol_da),
                          MR.seen_in_pretraining(measured, main.data), confidence,
                          np.asarray(measured.identity))


def beside_paper(ood: PreparedData, ood_table: pd.DataFrame, levers: MeasuredLevers
                 ) -> pd.DataFrame:
    """Our counterparts of the paper's Fig. 3C (larger molecules, last layer realigned, IR +
    Raman) and Fig. 3D (measured IR with every lever at once, at the measured-molecules and the
    distractor library) beside the published figures."""
    together = ALL_LEVERS  # every lever at once, fixed in advance
    ours = {"Fig. 3C: larger molecules": (
                "pubchem", "simulated IR + Raman, last layer realigned", len(ood.splits["test"]),
                ood_table.loc[("realigned: last layer", IR_RAMAN)]),
            **{f"Fig. 3D: measured spectra, {lib}": (
                "experimental", f"measured IR only, {together}", levers.sizes[lib],
                T.lever_row(levers.ranks, together, lib, "none", levers.seed))
               for lib in (ML.LIB_MEASURED, ML.LIB_DISTRACTORS)}}
    return beside_realignment(ours).round(1)


def paired_table(model: VibraCLIP, paired_dir: str, checkpoint: str | Path,
                 library: CandidateLibrary, config: Config) -> pd.DataFrame:
    """Top-k of a folder of the user's paired measured IR + Raman spectra against `library`,
    Raman intensities divided back to activities (`config.laser_nm`, `temperature_k`;
    `prepared.load_paired`, `measured_libraries.paired_identification`)."""
    paired = RA.with_mass_stats(load_paired(paired_dir, laser_nm=config.laser_nm,
                                            temperature_k=config.temperature_k), checkpoint)
    return ML.paired_identification(model, paired, library, config.build_dir).round(1)


def rerank_text(reranker: Reranker) -> str:
    """The shipped re-ranking's settings and how they were chosen, as a sentence."""
    st, prov = reranker.settings, reranker.provenance
    how = {"none": "no axis alignment", "global": "one scale factor",
           "regions": "one scale factor below and one above 2,500 cm⁻¹"}[st.alignment]
    base = ("an arPLS baseline subtracted" if st.baseline == "arpls"
            else f"the {st.baseline_quantile:g} quantile subtracted as baseline")
    who = ("every admissible candidate" if reranker.depth <= ALL_CANDIDATES
           else f"the model's top {reranker.depth}")
    if len(reranker.confidence_coef) == 2:
        conf = "a logistic function of the fused margin"
    else:
        conf = ("a logistic function of " + ", ".join(CONFIDENCE_FEATURES) + "; 'no candidate "
                f"fits' below a probability of {reranker.present_threshold:.2f} that the "
                "molecule is among the candidates")
    return (f"Shipped re-ranking: query with {base}; sticks broadened to {st.fwhm_cm1:g} cm⁻¹ "
            f"FWHM, {st.compression} intensities{', first derivative' if st.derivative else ''}, "
            f"{how} in {st.scale_min:g}–{st.scale_max:g}; {who} ordered by z(model) + "
            f"{reranker.weight:g} z(match); confidence: {conf}. Chosen on "
            f"{prov.get('chosen on', 'validation queries')}.")


def rerank_grid(reranker: Reranker, top: int = 12) -> pd.DataFrame:
    """The match-setting grid that chose the shipped re-ranking (match-alone top-1 % per
    pseudo-measured query set), best first, `top` rows, from its `rerank.json`."""
    grid = pd.DataFrame(reranker.provenance.get("match grid", []))
    if grid.empty:
        return grid
    return grid.sort_values("mean", ascending=False, kind="stable").head(top).reset_index(
        drop=True)


def rerank_readings(levers: MeasuredLevers) -> str:
    """What the re-ranking rows say, with the numbers of this run: ours against the augmented
    model alone and the match alone, at each library without a filter (the isomer library with
    its formula filter), beside the chance level."""
    t = levers.intervals().sort_index()
    parts = []
    for lib, how in ((ML.LIB_DISTRACTORS, "none"), (ML.LIB_MEASURED, "none"),
                     (ML.LIB_ISOMERS, "formula")):
        rows = t.loc[(lib, how)]
        ours, alone = rows.loc[levers.ours], rows.loc["augmented: zero-shot"]
        match = rows.loc[MR.MATCH_ALONE]
        parts.append(
            f"{lib} ({rows['candidates per query'].iloc[0]:g} candidates per query, chance "
            f"{rows['chance top1 %'].iloc[0]:.1f} %): top-1 {ours['top1 %']:.1f} % "
            f"({ours['top1 95 % CI']}), top-10 {ours['top10 %']:.1f} %, against "
            f"{alone['top1 %']:.1f} / {alone['top10 %']:.1f} % for the model alone and "
            f"{match['top1 %']:.1f} / {match['top10 %']:.1f} % for the match alone")
    return (f"Fused with the match (ours, {levers.ours}): " + "; ".join(parts) + ". "
            f"{int(levers.seen.sum())} of {len(levers.seen)} measured spectra are of molecules "
            "in the pretraining data's training split; the table below separates them.")


def ood_curves(ood_eval: dict[str, Evaluation]) -> dict[str, np.ndarray]:
    """{setting: IR + Raman top-k curve} of the larger molecules' test split."""
    return {name: ev.curves[IR_RAMAN] for name, ev in ood_eval.items()}


def measured_text(records: Sequence, measured: PreparedData, dropped: Sequence,
                  skipped: dict[str, int]) -> str:
    """The sentence on how many measured spectra and molecules are used, dropped and skipped."""
    return (f"{len(records)} measured spectra of {len(set(measured.identity))} distinct molecules "
            f"are used ({len(dropped)} dropped because no conformer could be built); "
            f"{sum(skipped.values())} files are not used, for the reasons above.")


def library_sizes_text(sizes: dict[str, int], chosen: dict[str, Sequence[str]]) -> str:
    """The sentence on the measured libraries' sizes and the variants chosen per fold."""
    return ("Library sizes: " + "; ".join(f"{n}: {k} candidates" for n, k in sizes.items())
            + " (the isomer library is the union over all query formulas; the filter leaves each "
            "query its own isomers). Chosen per fold: "
            + "; ".join(f"{k}: {' | '.join(v)}" for k, v in chosen.items()) + ".")


def levers_text(lever_table: pd.DataFrame, sizes: dict[str, int], ood_table: pd.DataFrame,
                n_ood_test: int, ours: str, chance: pd.DataFrame) -> str:
    """The sentences on `ours` (the row fixed before the run) against zero-shot, with the mass
    filter and among the measured molecules, beside the chance level; and on the larger
    molecules' IR + Raman top-1 / top-10."""
    row, zero = lever_table.loc[ours], lever_table.iloc[0]  # zero: zero-shot pretrained
    d, m = ML.LIB_DISTRACTORS, ML.LIB_MEASURED
    ood_rows = ood_table.xs(IR_RAMAN, level=1)  # the settings in their order
    return (
        f"Against the {sizes[d]}-candidate library without a filter, ours (**{ours}**, fixed "
        f"before the run) reaches top-1 {row[d, 'none', 'top1']:.1f} %, top-10 "
        f"{row[d, 'none', 'top10']:.1f} % (chance {chance.loc[(d, 'none'), 'chance top1 %']:.2f}"
        f" %; zero-shot pretrained: {zero[d, 'none', 'top1']:.1f} / "
        f"{zero[d, 'none', 'top10']:.1f} %). With the mass filter it reaches "
        f"{row[d, 'mass', 'top1']:.1f} %; among the measured molecules alone "
        f"{row[m, 'none', 'top1']:.1f} % / {row[m, 'none', 'top10']:.1f} % (chance "
        f"{chance.loc[(m, 'none'), 'chance top1 %']:.1f} %). On the "
        f"{n_ood_test} larger test molecules (domain 1), IR + Raman top-1 / top-10 is "
        + "; ".join(f"{name} {r['top1']:.1f} / {r['top10']:.1f} %"
                    for name, r in ood_rows.iterrows())
        + ".")


def paired_section(model: VibraCLIP, paired_dir: str | None, checkpoint: Path,
                   library: CandidateLibrary, config: Config) -> object:
    """The paired IR/Raman table of `paired_dir`, or a note that none was given."""
    if not paired_dir:
        return Markdown("`paired_dir` is not set: no paired IR/Raman folder was evaluated.")
    return paired_table(model, paired_dir, checkpoint, library, config)


# The paper's realignment results (Fig. 3C/3D), all pairs + mass, IR + Raman queries:
# (top-1 %, top-25 %, what the library held)
PUBLISHED_REALIGNMENT: dict[str, tuple[float, float, str]] = {
    "pubchem": (67.6, 98.2, "PubChem molecules (5,500 in the set), realigned, simulated spectra; "
                "library: the held-out 20 % (test_ratio 0.2 in the released "
                f"configs/config_ft.yaml), {PAPER_PUBCHEM_SIZE:,} candidates"),
    "experimental": (34.4, 100.0, "320 experimental IR + Raman spectra, realigned; library: the "
                     "held-out 20 % (test_ratio 0.2), about 64 candidates"),
}


def beside_realignment(ours: dict[str, tuple[str, str, int, pd.Series]]) -> pd.DataFrame:
    """Chapter 6's comparison: per row name, (PUBLISHED_REALIGNMENT key, our query, our number
    of candidates, our evaluation row with top1 / top25) beside the published figures."""
    return pd.DataFrame(
        [{"our query": query, "our candidates": n, "measured top-1 %": row["top1"],
          "measured top-25 %": row["top25"],
          "published top-1 %": PUBLISHED_REALIGNMENT[key][0],
          "published top-25 %": PUBLISHED_REALIGNMENT[key][1],
          "published: set and library": PUBLISHED_REALIGNMENT[key][2]}
         for key, query, n, row in ours.values()], index=list(ours))


def augmented_source(augmented: Pretrained) -> Markdown:
    """Where the augmented model's weights come from (the shipped export of this very run, or a
    training run of this chapter) and which query theories it trained on."""
    seen = T.unseen_theories_text(augmented.config)
    if augmented.exported:
        return Markdown(
            f"The augmented model is the shipped one (`{augmented.checkpoint.name}` in "
            f"`{augmented.checkpoint.parent.name}/`, float16), exported from run "
            f"`{exported_run(augmented.checkpoint.parent)}`: the run this profile asks for, "
            "so it was not trained again here. Its numbers below are the weights as shipped. "
            + seen)
    return Markdown(f"The augmented model was trained here: run `{augmented.result.run_dir.name}`"
                    f", {len(augmented.result.history)} epochs. {seen}")
