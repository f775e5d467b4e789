"""A second level of theory for the embedded set's held-out molecules: GFN1-xTB spectra.

Choices that aim at spectra which did not come from GFN2-xTB (augmentation, the spectrum-match
score, fusion weights, the confidence) are judged on spectra of another theory, never on the
test split's GFN2 spectra and never on measured ones. `generate_heldout` simulates the embedded
set's validation molecules, then its test molecules, with the same pipeline as the GFN2 set
(QM9's B3LYP geometry relaxed, Hessian, finite fields) but `method="GFN1-xTB"`, into shards of
their own (`data/qm9_gfn1`), resumable and written atomically like every shard.

`generate_training` does the same for the training molecules (`data/qm9_gfn1_train`), in a seeded
random order so that any prefix of its shards is a random sample of them: spectra of a second
theory to mix into training, while the B3LYP-frequency queries stay a theory the model never saw.
Both sets follow the embedded set's split of the day: a user of either keeps only the molecules
that are in the split it wants (the split moves when the embedded set grows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vibraclip_core.config.profiles import REPO_ROOT
from vibraclip_core.data.datasets import grouped_split, load_sticks
from vibraclip_core.data.generate import generate
from vibraclip_core.data.molecules import canonical_identity
from vibraclip_core.data.simulate import METHODS, SimulatorSettings
from vibraclip_core.data.sources import load_qm9_source

GFN1_DIR = REPO_ROOT / "data" / "qm9_gfn1"
GFN1_TRAIN_DIR = REPO_ROOT / "data" / "qm9_gfn1_train"
GFN1 = METHODS[1]
HELDOUT_SHARD_SIZE = 100
HELDOUT_SPLITS = ("val", "test")  # simulated in this order: validation first


def split_indices(data_dir: str | Path, seed: int,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
                  ) -> dict[str, np.ndarray]:
    """{"train", "val", "test"}: QM9 indices (in shard order) of the embedded set's molecules in
    each split, the splits `datasets.prepare` draws from the same shards and seed."""
    sticks = load_sticks(Path(data_dir)).ok()
    identity = [canonical_identity(s) for s in sticks.smiles]
    splits = grouped_split(identity, seed, fractions)
    return {name: sticks.index[rows].astype(np.int64) for name, rows in splits.items()}


def heldout_indices(data_dir: str | Path, seed: int,
                    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
                    ) -> dict[str, np.ndarray]:
    """{"val", "test"} of `split_indices`."""
    split = split_indices(data_dir, seed, fractions)
    return {s: split[s] for s in HELDOUT_SPLITS}


def training_order(data_dir: str | Path, seed: int,
                   fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> np.ndarray:
    """QM9 indices of the embedded set's training molecules in a seeded random order."""
    train = split_indices(data_dir, seed, fractions)["train"]
    return np.random.default_rng(seed).permutation(train)


def heldout_order(data_dir: str | Path, seed: int,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> np.ndarray:
    """QM9 indices of the validation molecules, then the test molecules (`heldout_indices`)."""
    held = heldout_indices(data_dir, seed, fractions)
    return np.concatenate([held[s] for s in HELDOUT_SPLITS])


def generate_heldout(data_dir: str | Path, out_dir: str | Path = GFN1_DIR, seed: int = 0,
                     n_shards: int = 0, workers: int = 2, method: str = GFN1) -> list[Path]:
    """Simulate shards [0, n_shards) of `heldout_order` with `method` (0: all of them)."""
    return _generate(heldout_order(data_dir, seed), out_dir, n_shards, workers, method)


def generate_training(data_dir: str | Path, out_dir: str | Path = GFN1_TRAIN_DIR, seed: int = 0,
                      n_shards: int = 0, workers: int = 2, method: str = GFN1) -> list[Path]:
    """Simulate shards [0, n_shards) of `training_order` with `method` (0: all of them)."""
    return _generate(training_order(data_dir, seed), out_dir, n_shards, workers, method)


def _generate(order: np.ndarray, out_dir: str | Path, n_shards: int, workers: int,
              method: str) -> list[Path]:
    """Shards [0, n_shards) of QM9 indices `order` (0: all), HELDOUT_SHARD_SIZE per shard."""
    n_total = -(-len(order) // HELDOUT_SHARD_SIZE)
    return generate(Path(out_dir), order, load_qm9_source, n_shards or n_total, 0, workers,
                    HELDOUT_SHARD_SIZE, SimulatorSettings(method=method))
