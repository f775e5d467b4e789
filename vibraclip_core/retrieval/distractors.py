"""QM9 distractors: candidate structures beyond a prepared data set, and their embeddings.

A test query can be ranked against the test split's structures plus any number of QM9 molecules
outside the prepared data (`qm9_candidates.distractor_positions`, a fixed order, so the library
of size N is the test split followed by the first N - n_test distractors). Their conformers come
from the shared QM9 conformer cache; a model's embeddings of them are cached on disk per model,
data set and conformer seed, extended when a larger library asks for more.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.data.files import atomic_path
from vibraclip_core.data.mass import MassStats
from vibraclip_core.data.qm9_candidates import Structures, distractor_positions, load_positions
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.embedding import BATCH_SIZE, embed_structures, model_digest
from vibraclip_core.retrieval.library import CandidateLibrary

EMBED_CACHE_VERSION = 1


@dataclass
class Distractors:
    """The first n distractors of a prepared data set (structures in library order)."""

    structures: Structures

    def __len__(self) -> int:
        return len(self.structures)

    def route_counts(self) -> dict[str, int]:
        """Geometry route -> count over these distractors (ETKDG or QM9's B3LYP geometry)."""
        return dict(sorted(self.structures.routes().items()))


def load_distractors(data: PreparedData, n: int, build_dir: str | Path, conformer_seed: int,
                     workers: int = 1, progress: bool = True) -> Distractors:
    """The first `n` distractors of `data` with cached conformers (computed when missing)."""
    test_index = data.index[data.splits["test"]].numpy()
    order = distractor_positions(data.index.numpy(), test_index)
    if n > len(order):
        raise ValueError(f"{n} distractors asked for, but QM9 holds only {len(order)} molecules "
                         "outside this test split")
    s = load_positions(order[:n], Path(build_dir) / "cache" / "qm9-conformers", conformer_seed,
                       workers, progress)
    return Distractors(s)


def embed_distractors(model: VibraCLIP, data: PreparedData, distractors: Distractors,
                      build_dir: str | Path, conformer_seed: int, batch_size: int = BATCH_SIZE,
                      progress: bool = True) -> tuple[CandidateLibrary, int]:
    """(the distractors as a CandidateLibrary embedded by `model`, masses standardized with
    `data`'s statistics; how many of them this call embedded, the rest coming from the cache).

    The cache holds the longest prefix embedded so far and is extended when a larger library
    asks for more (distractor order does not depend on the library size).
    """
    key = hashlib.sha256(json.dumps([EMBED_CACHE_VERSION, model_digest(model), data.key,
                                     conformer_seed]).encode()).hexdigest()[:24]
    path = Path(build_dir) / "cache" / "distractor-embeddings" / f"{key}.safetensors"
    have = load_file(path)["emb"] if path.is_file() else torch.zeros(0, model.config.latent_dim)
    n, n_cached = len(distractors), len(have)
    stats = MassStats(data.mass_mean, data.mass_std) if model.use_mass else None
    if len(have) < n:
        rest = distractors.structures.take(np.arange(len(have), n))
        have = torch.cat([have, embed_structures(model, rest, stats, batch_size,
                                                 progress=progress)])
        with atomic_path(path) as tmp:
            save_file({"emb": have.contiguous()}, tmp)
    library = CandidateLibrary.from_structures(distractors.structures, stats)
    library.graph_emb = have[:n]
    return library, max(0, n - n_cached)
