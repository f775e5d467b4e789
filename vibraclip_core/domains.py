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

from . import measured_libraries as ML
from . import realign as RA
from . import transfer as T
from .ablations import beside_realignment
from .chapter import Pretrained
from .config import Config
from .datasets import PreparedData, prepare
from .evaluate import Evaluation, evaluate, evaluate_ranks
from .experimental import MeasuredIR
from .library import CandidateLibrary
from .measured import load_paired
from .model import VibraCLIP
from .ood import OOD_DIR
from .train import load_model

OOD_MODES = ("ir+raman library", "ir")
REALIGNED_PARTS = ("last_layer", "heads")


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
                    simulated: dict[str, np.ndarray],
                    trainer_kwargs: dict[str, Any] | None = None) -> MeasuredLevers:
    """Score augmented pretraining, calibration and realignment, alone and together, on the
    three measured libraries (`config.measured_library_size` candidates with distractors),
    out of fold over `config.folds` grouped folds (`transfer.measured_levers`)."""
    libraries = ML.measured_libraries(main.data, measured, config.measured_library_size,
                                     config.build_dir, config.conformer_seed, config.workers)
    splits = RA.kfold_splits(measured.identity, config.folds, seed=config.seed)
    ranks, chosen = T.measured_levers(
        {"pretrained": (main.model, main.checkpoint),
         "augmented": (augmented.model, augmented.checkpoint)},
        main.config, measured, records, splits, simulated, libraries, config.build_dir,
        config.realign_epochs, trainer_kwargs)
    sizes = {name: len(library) for name, library in libraries.items()}
    return MeasuredLevers(ranks, chosen, libraries, sizes, config.seed)


def beside_paper(ood: PreparedData, ood_table: pd.DataFrame, levers: MeasuredLevers
                 ) -> pd.DataFrame:
    """Our counterparts of the paper's Fig. 3C (larger molecules, last layer realigned, IR +
    Raman) and Fig. 3D (measured IR with every lever at once, at the measured-molecules and the
    distractor library) beside the published figures."""
    together = list(levers.ranks)[-1]  # every lever at once, fixed in advance
    ours = {"Fig. 3C: larger molecules": (
                "pubchem", "simulated IR + Raman, last layer realigned", len(ood.splits["test"]),
                ood_table.loc[("realigned: last layer", "ir+raman library")]),
            **{f"Fig. 3D: measured spectra, {lib}": (
                "experimental", f"measured IR only, {together}", levers.sizes[lib],
                T.lever_row(levers.ranks, together, lib, "none", levers.seed))
               for lib in (ML.LIB_MEASURED, ML.LIB_DISTRACTORS)}}
    return beside_realignment(ours).round(1)


def paired_table(model: VibraCLIP, paired_dir: str, checkpoint: str | Path,
                 library: CandidateLibrary, config: Config) -> pd.DataFrame:
    """Top-k of a folder of the user's paired measured IR + Raman spectra against `library`,
    Raman intensities divided back to activities (`config.laser_nm`, `temperature_k`;
    `measured.load_paired`, `measured_libraries.paired_identification`)."""
    paired = RA.with_mass_stats(load_paired(paired_dir, laser_nm=config.laser_nm,
                                            temperature_k=config.temperature_k), checkpoint)
    return ML.paired_identification(model, paired, library, config.build_dir).round(1)
