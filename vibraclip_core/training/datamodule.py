"""The Lightning data module: train/val/test loaders over a config's processed data.

Files are written in `prepare_data` (the geometry cache, once per machine) and read in `setup`
(every process), as Lightning expects; the constructor only checks the config.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch_geometric.loader import DataLoader

from vibraclip_core.config.profiles import Config
from vibraclip_core.data.augment import (DEFAULT_RANGES, padded_sticks, second_theory_sticks,
                                         stick_rows, stick_source)
from vibraclip_core.data.augment_ranges import AugmentRanges, ranges_from_training
from vibraclip_core.data.datasets import (PreparedData, StickSet, is_qm9s_folder, load_sticks,
                                          prepare)
from vibraclip_core.data.graphs import MoleculeDataset, geometry_cache, geometry_cache_path


def missing_masks(config: Config, data: PreparedData) -> tuple[torch.Tensor, torch.Tensor]:
    """(has_ir, has_raman): (n,) bool over all rows; `config.missing_ir` / `missing_raman` of
    the training rows are marked missing, seeded by `config.seed`, independently per modality.
    Validation and test rows always keep both spectra."""
    masks = []
    for offset, fraction in ((1, config.missing_ir), (2, config.missing_raman)):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"missing fraction {fraction} must lie in [0, 1)")
        keep = torch.ones(len(data), dtype=torch.bool)
        train_rows = data.splits["train"]
        gen = torch.Generator().manual_seed(config.seed * 1000 + offset)
        n_drop = int(round(fraction * len(train_rows)))
        keep[train_rows[torch.randperm(len(train_rows), generator=gen)[:n_drop]]] = False
        masks.append(keep)
    return masks[0], masks[1]


def second_theory_set(config: Config) -> StickSet:
    """The first `config.second_theory_molecules` molecules (all when None) of the
    `config.second_theory` stick shards, in shard order."""
    sticks = load_sticks(config.second_theory_path)
    n = config.second_theory_molecules
    if n is None:
        return sticks
    if n > len(sticks):
        raise ValueError(f"second_theory_molecules={n}, but {config.second_theory} holds "
                         f"{len(sticks)} molecules")
    return sticks.select(np.arange(n))


class VibraDataModule(L.LightningDataModule):
    """Train/val/test loaders over the processed data of a config (`prepare(config)` unless
    `data` is given); `has_ir` / `has_raman` (n,) bool mark withheld spectra."""

    def __init__(self, config: Config, data: PreparedData | None = None,
                 has_ir: torch.Tensor | None = None, has_raman: torch.Tensor | None = None) -> None:
        super().__init__()
        if not 0.0 <= config.second_theory_fraction <= 1.0:
            raise ValueError(f"second_theory_fraction {config.second_theory_fraction} must lie "
                             "in [0, 1]")
        if config.second_theory_fraction > 0 and not config.second_theory:
            raise ValueError(f"second_theory_fraction {config.second_theory_fraction} needs a "
                             "second_theory folder of stick shards")
        if config.augment and is_qm9s_folder(config.data_path):
            raise ValueError(f"{config.data_path}: augment={config.augment} perturbs stick "
                             "spectra, and a QM9S folder holds broadened spectra only; train "
                             "it with augment=() (`--augment none`)")
        self.config, self.data = config, data
        self.has_ir, self.has_raman = has_ir, has_raman
        self.geometry: dict[str, torch.Tensor] | None = None
        self.sticks: dict[str, torch.Tensor] | None = None  # padded sticks when augmenting
        self.augment_ranges: AugmentRanges = DEFAULT_RANGES  # measured in setup when augmenting

    def prepare_data(self) -> None:
        c = self.config
        data = self.data if self.data is not None else prepare(c)
        if not geometry_cache_path(data, c.cutoff_ang, c.build_dir).exists():
            geometry_cache(data, c.cutoff_ang, c.build_dir)

    def setup(self, stage: str | None = None) -> None:
        if self.geometry is not None:
            return
        c = self.config
        if self.data is None:
            self.data = prepare(c)
        self.geometry = geometry_cache(self.data, c.cutoff_ang, c.build_dir)
        if c.augment or c.second_theory_fraction > 0:
            source = stick_source(c.data_path)
            self.sticks = padded_sticks(self.data, source)
            train_rows = stick_rows(source, self.data.index[self.data.splits["train"]])
            self.augment_ranges = ranges_from_training(source.select(train_rows))
        if c.second_theory_fraction > 0:
            self.sticks.update(second_theory_sticks(
                self.data, second_theory_set(c), self.data.splits["train"],
                self.sticks["freqs_cm1"].shape[1]))

    def dataset(self, split: str) -> MoleculeDataset:
        # masks cover every row: missing-data runs mark training rows only, measured data
        # without Raman marks all of them (so the validation loss ignores the absent spectra)
        return MoleculeDataset(self.data, self.data.splits[split], self.geometry,
                               self.has_ir, self.has_raman,
                               sticks=self.sticks if split == "train" else None)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        gen = torch.Generator().manual_seed(self.config.seed)
        return DataLoader(self.dataset(split), batch_size=self.config.batch_size, shuffle=shuffle,
                          generator=gen, drop_last=shuffle and len(self.data.splits[split]) >
                          self.config.batch_size)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)
