"""Realignment: adapt a pretrained VibraCLIP to a new domain by training only its last layers.

The paper's protocol: load the pretrained weights, freeze everything except the last Linear of
each projection head, train 15 epochs at a small learning rate (1e-5 in the reference code).
Here it is a training run like any other (`train`), with `init_checkpoint` and `trainable` set in
its config, so it is cached, resumable and reported the same way. Measured spectra (IR only) are
turned into the same `PreparedData` as simulated ones, with the Raman term masked out, and
scored out of fold over grouped folds (`kfold_splits`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from vibraclip_core.config.profiles import Config
from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.data.mass import mass_stats_for
from vibraclip_core.data.spectra import spectrum_to_model_input
from vibraclip_core.measured.experimental import MeasuredIR
from vibraclip_core.measured.prepared import measured_prepared
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.embedding import EmbeddingCache
from vibraclip_core.training.train import TrainResult, train

def realign_config(pretrained: Config, checkpoint: str | Path, epochs: int | None = None,
                   lr: float | None = None, trainable: str = "last_layer") -> Config:
    """The pretrained config set up to continue from `checkpoint` with only `trainable` free,
    for `epochs` at rate `lr` (None: its `realign_epochs` / `realign_lr`, by default the
    paper's protocol), at the realignment weight decay (`realign_weight_decay`: the released
    fine-tuning config's 0.01); no stick augmentation: a new domain's spectra need not come with
    sticks."""
    epochs = pretrained.realign_epochs if epochs is None else epochs
    lr = pretrained.realign_lr if lr is None else lr
    return pretrained.replace(init_checkpoint=str(checkpoint), trainable=trainable,
                              max_epochs=epochs, patience=epochs, lr_graph=lr, lr_spectra=lr,
                              lr_heads=lr, missing_ir=0.0, missing_raman=0.0, augment=(),
                              plateau_patience=max(1, epochs // 3),
                              weight_decay=pretrained.realign_weight_decay)


def with_mass_stats(data: PreparedData, checkpoint: str | Path) -> PreparedData:
    """`data` standardizing masses with the pretrained run's training statistics, which is
    what the mass-anchored model's inputs mean (a new domain's own statistics would not)."""
    stats = mass_stats_for(checkpoint)
    return dataclasses.replace(data, mass_mean=stats.mean_da, mass_std=stats.std_da)


def realign(pretrained: Config, checkpoint: str | Path, data: PreparedData, tag: str,
            epochs: int | None = None, lr: float | None = None, trainable: str = "last_layer",
            trainer_kwargs: dict[str, Any] | None = None,
            has_raman: torch.Tensor | None = None,
            cache: EmbeddingCache | None = None) -> TrainResult:
    """Train `data`'s train split from `checkpoint` with only `trainable` parameters free; the
    frozen graph encoder's outputs come through `cache` when one is given."""
    cfg = realign_config(pretrained, checkpoint, epochs, lr, trainable)
    data = with_mass_stats(data, checkpoint) if cfg.mass else data
    has_ir = None if has_raman is None else torch.ones(len(data), dtype=torch.bool)
    return train(cfg, data, tag=tag, trainer_kwargs=trainer_kwargs, has_ir=has_ir,
                 has_raman=has_raman, cache=cache)


def measured_data(records: Sequence[MeasuredIR], seed: int = 0, workers: int = 1,
                  key: str = "measured") -> tuple[PreparedData, list[str]]:
    """(PreparedData of the measured IR spectra, names of records dropped by featurisation).

    Raman is all zeros (mask it with `has_raman=False` when training); splits are empty
    placeholders: set them per fold with `with_splits`.
    """
    ir = np.stack([spectrum_to_model_input(r.spectrum) for r in records]).astype(np.float32)
    data, dropped, _ = measured_prepared([r.smiles for r in records], ir, np.zeros_like(ir),
                                         seed, workers, key)
    return data, [records[i].file for i in dropped]


def kfold_splits(identities: Sequence[str], k: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """k grouped folds: spectra of one molecule stay together. Fold f tests on group f,
    validates on group f+1 (for checkpoint choice) and trains on the rest."""
    unique = sorted(set(identities))
    if k < 3 or k > len(unique):
        raise ValueError(f"k={k} folds need 3 <= k <= {len(unique)} distinct molecules")
    order = np.random.default_rng(seed).permutation(len(unique))
    group = {unique[j]: pos % k for pos, j in enumerate(order)}
    fold_of = np.array([group[i] for i in identities])
    out = []
    for f in range(k):
        val = (f + 1) % k
        out.append({"test": torch.from_numpy(np.flatnonzero(fold_of == f)),
                    "val": torch.from_numpy(np.flatnonzero(fold_of == val)),
                    "train": torch.from_numpy(np.flatnonzero((fold_of != f) & (fold_of != val)))})
    return out


def with_splits(data: PreparedData, splits: dict[str, torch.Tensor], key: str) -> PreparedData:
    """`data` with other splits (and a key naming them, so each fold gets its own run)."""
    return dataclasses.replace(data, splits=splits, key=f"{data.key}-{key}")


def realignment_counts(configs: dict[str, Config]) -> pd.DataFrame:
    """Parameters, trainable and frozen (rows: named configs) once everything but the last
    layer of each projection head is frozen, as realignment trains it."""
    counts = {}
    for name, cfg in configs.items():
        model = VibraCLIP(cfg)
        model.freeze_for_realignment()
        total, trainable = model.parameter_table()[-1][1:]
        counts[name] = {"parameters": total, "trainable": trainable, "frozen": total - trainable}
    return pd.DataFrame(counts).T
