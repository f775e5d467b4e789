"""One path from a model and molecules to embeddings, and the explicit cache it may use.

Molecules come either as rows of a `PreparedData` (batched by the DataLoader the training uses,
with the geometry cached on disk) or as packed `Structures` (candidates without spectra: batches
sliced from the packed arrays, radius edges and triplets computed per batch). Both give the same
batches to `VibraCLIP.graph_features`, then the graph head runs on the same row chunks
(`project_graphs`): the same molecules in the same batches give the same embeddings bit for bit
(tests/test_library.py). `EmbeddingCache` keeps graph-encoder outputs keyed by the encoder's
weights and the molecules, so a frozen encoder (realignment's folds and variants) runs once per
library. The cache is an object the caller owns and passes on: nothing is kept between calls.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from types import SimpleNamespace

import numpy as np
import torch
from torch_geometric.loader import DataLoader

from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.data.graphs import MoleculeDataset, geometry_cache
from vibraclip_core.data.jobs import Progress
from vibraclip_core.data.mass import MassStats
from vibraclip_core.data.qm9_candidates import Structures
from vibraclip_core.model.vibraclip import VibraCLIP

BATCH_SIZE = 256  # molecules per embedding batch unless a caller chooses otherwise


def model_digest(model: VibraCLIP) -> str:
    """What names a model in on-disk caches (libraries, distractor embeddings): sha256 hex of
    its config and every state-dict tensor (name, dtype, shape, bytes)."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _digest(tensors: Sequence[torch.Tensor | np.ndarray]) -> str:
    h = hashlib.sha256()
    for t in tensors:
        t = torch.as_tensor(t)
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class EmbeddingCache:
    """Graph-encoder outputs (n, out_channels) in memory, least recently used dropped first.

    Keyed by the encoder's weights, the molecules' atoms and positions (and rows) and the cutoff:
    a changed encoder or different molecules never hit a stale entry.
    """

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._features: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._features)

    @staticmethod
    def key(model: VibraCLIP, molecules: Sequence[torch.Tensor | np.ndarray]) -> tuple:
        """The entry of `model`'s graph encoder on the molecules these arrays describe."""
        return (_digest(list(model.graph_encoder.state_dict().values())), _digest(molecules),
                model.config.cutoff_ang)

    def get(self, key: tuple) -> torch.Tensor | None:
        if key not in self._features:
            return None
        self._features.move_to_end(key)
        return self._features[key]

    def put(self, key: tuple, features: torch.Tensor) -> None:
        self._features[key] = features
        while len(self._features) > self.max_entries:
            self._features.popitem(last=False)


@torch.no_grad()
def _encode(model: VibraCLIP, batches: Iterator, key: tuple | None,
            cache: EmbeddingCache | None) -> torch.Tensor:
    """(n, out_channels) `model.graph_features` of each batch, concatenated; cached by `key`."""
    model.eval()
    if key is not None and (hit := cache.get(key)) is not None:
        return hit
    parts = [model.graph_features(batch) for batch in batches]
    feats = torch.cat(parts) if parts else torch.zeros(0, model.config.out_channels)
    if key is not None:
        cache.put(key, feats)
    return feats


def graph_features(model: VibraCLIP, data: PreparedData, rows: torch.Tensor, build_dir: str,
                   batch_size: int = BATCH_SIZE, cache: EmbeddingCache | None = None
                   ) -> torch.Tensor:
    """(n_rows, out_channels) graph-encoder outputs of rows of `data` in eval mode; with a
    `cache`, the same encoder on the same molecules runs once."""
    g = data.graphs
    key = None if cache is None else cache.key(model, [g["z"], g["pos"], g["node_offsets"], rows])

    def batches() -> Iterator:
        geo = geometry_cache(data, model.config.cutoff_ang, build_dir)
        # a private generator: iterating a loader draws a seed, and embedding (or a cache hit)
        # must not move the global RNG that training's shuffling and dropout use afterwards
        yield from DataLoader(MoleculeDataset(data, rows, geo), batch_size=batch_size,
                              generator=torch.Generator())

    return _encode(model, batches(), key, cache)


def structure_batches(s: Structures, batch_size: int = BATCH_SIZE,
                      progress: bool = False) -> Iterator[SimpleNamespace]:
    """Batches of `batch_size` structures (z, pos in Å, batch, num_graphs) sliced from the packed
    arrays, for `VibraCLIP.graph_features` (which computes their radius edges and triplets)."""
    n, offsets = len(s), s.atom_offsets
    # Progress, not a bare tqdm: a piped build (no bar) still logs a line every 30 s
    with Progress(n, "embed", progress=progress) as bar:
        for a in range(0, n, batch_size):
            b = min(a + batch_size, n)
            lo, hi = offsets[a], offsets[b]
            n_atoms = torch.as_tensor(np.diff(offsets[a:b + 1]), dtype=torch.long)
            yield SimpleNamespace(
                z=torch.from_numpy(np.asarray(s.z[lo:hi])).long(),
                pos=torch.from_numpy(np.asarray(s.pos_ang[lo:hi])).float(),
                batch=torch.repeat_interleave(torch.arange(b - a), n_atoms), num_graphs=b - a)
            bar.update(b - a)


def structure_features(model: VibraCLIP, s: Structures, batch_size: int = BATCH_SIZE,
                       cache: EmbeddingCache | None = None, progress: bool = False
                       ) -> torch.Tensor:
    """(n, out_channels) graph-encoder outputs of packed structures in eval mode (see
    `graph_features`, whose batches of the same molecules give the same rows)."""
    key = None if cache is None else cache.key(model, [s.z, s.pos_ang, s.atom_offsets])
    return _encode(model, structure_batches(s, batch_size, progress), key, cache)


@torch.no_grad()
def project_graphs(model: VibraCLIP, features: torch.Tensor, mass: torch.Tensor | None,
                   batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """(n, latent_dim) graph embeddings from encoder outputs (n, out_channels) and standardized
    masses (n,) (None without mass anchoring), through the graph head in row chunks."""
    model.eval()
    out = [model.project_graph(features[a:a + batch_size],
                               None if mass is None else mass[a:a + batch_size])
           for a in range(0, len(features), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, model.config.latent_dim)


def embed_graph_rows(model: VibraCLIP, data: PreparedData, rows: torch.Tensor, build_dir: str,
                     batch_size: int = BATCH_SIZE, cache: EmbeddingCache | None = None
                     ) -> torch.Tensor:
    """(n_rows, latent_dim) graph embeddings of rows of `data`, masses standardized with the
    data's own statistics."""
    feats = graph_features(model, data, rows, build_dir, batch_size, cache)
    mass = data.standardized_mass()[rows] if model.use_mass else None
    return project_graphs(model, feats, mass, batch_size)


def embed_structures(model: VibraCLIP, s: Structures, mass_stats: MassStats | None,
                     batch_size: int = BATCH_SIZE, cache: EmbeddingCache | None = None,
                     progress: bool = False) -> torch.Tensor:
    """(n, latent_dim) graph embeddings of packed structures, masses standardized with
    `mass_stats` (required by a mass-anchored model)."""
    if model.use_mass and mass_stats is None:
        raise ValueError("embed_structures: this model uses mass anchoring; pass the training "
                         "mass_stats (mass.mass_stats_for(checkpoint))")
    feats = structure_features(model, s, batch_size, cache, progress)
    mass = mass_stats.standardize(np.asarray(s.mass_da)) if model.use_mass else None
    return project_graphs(model, feats, mass, batch_size)


@torch.no_grad()
def embed_queries(model: VibraCLIP, spectra: dict[str, torch.Tensor],
                  mass: torch.Tensor | None, batch_size: int = BATCH_SIZE
                  ) -> dict[str, torch.Tensor]:
    """{kind: (n, latent_dim) float32} query embeddings of model-input spectra ({"ir" and/or
    "raman": (n, 1750)}), with their standardized masses (n,) for a mass-anchored model (None
    otherwise), in eval mode and batches: the one path from spectra to query embeddings that
    `identify`, the evaluations and the validation choices share."""
    model.eval()
    encoders = {"ir": model.encode_ir, "raman": model.encode_raman}
    out = {}
    for kind, x in spectra.items():
        parts = [encoders[kind](x[i:i + batch_size],
                                None if mass is None else mass[i:i + batch_size]).float()
                 for i in range(0, len(x), batch_size)]
        out[kind] = torch.cat(parts) if parts else torch.zeros(0, model.config.latent_dim)
    return out


def embed_spectra(model: VibraCLIP, data: PreparedData, rows: torch.Tensor,
                  batch_size: int = BATCH_SIZE, query_mass_offset_da: float = 0.0
                  ) -> dict[str, torch.Tensor]:
    """{"ir", "raman"}: (n_rows, latent_dim) spectrum embeddings of rows of `data` in eval mode
    (the queries; see `embed_split` for `query_mass_offset_da`)."""
    mass = data.standardized_mass()[rows] if model.use_mass else None
    q_mass = None if mass is None else mass + query_mass_offset_da / data.mass_std
    return embed_queries(model, {"ir": data.ir[rows], "raman": data.raman[rows]}, q_mass,
                         batch_size)


def embed_rows(model: VibraCLIP, data: PreparedData, rows: torch.Tensor, build_dir: str,
               batch_size: int = BATCH_SIZE, query_mass_offset_da: float = 0.0,
               cache: EmbeddingCache | None = None) -> dict[str, torch.Tensor]:
    """`embed_split` for any rows of `data` (in the order given)."""
    return {"graph": embed_graph_rows(model, data, rows, build_dir, batch_size, cache),
            **embed_spectra(model, data, rows, batch_size, query_mass_offset_da)}


def embed_split(model: VibraCLIP, data: PreparedData, split: str, build_dir: str,
                batch_size: int = BATCH_SIZE, query_mass_offset_da: float = 0.0,
                cache: EmbeddingCache | None = None) -> dict[str, torch.Tensor]:
    """{"graph", "ir", "raman"}: (n_split, latent_dim) embeddings in eval mode, split order.

    `query_mass_offset_da` shifts the mass given with the spectra (not the candidates' graphs)
    of a mass-anchored model: what a user who enters a wrong mass gets.
    """
    return embed_rows(model, data, data.splits[split], build_dir, batch_size,
                      query_mass_offset_da, cache)
