"""One path from a model and molecules to embeddings, and the explicit cache it may use.

`embed_rows` embeds rows of a `PreparedData` (graphs through the DataLoader the training uses,
spectra in batches); `EmbeddingCache` keeps graph-encoder outputs keyed by the encoder's weights
and the molecules, so a frozen encoder (realignment's folds and variants) runs once per library.
The cache is an object the caller owns and passes on: nothing is kept between calls otherwise.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch_geometric.loader import DataLoader

from .datasets import PreparedData
from .graphs import MoleculeDataset, geometry_cache
from .model import VibraCLIP


def _digest(tensors: Sequence[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class EmbeddingCache:
    """Graph-encoder outputs (n_rows, out_channels) in memory, least recently used dropped first.

    Keyed by the encoder's weights, the molecules' graphs, the rows and the cutoff: a changed
    encoder or different molecules never hit a stale entry.
    """

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._features: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._features)

    @staticmethod
    def key(model: VibraCLIP, data: PreparedData, rows: torch.Tensor) -> tuple:
        g = data.graphs
        return (_digest(list(model.graph_encoder.state_dict().values())),
                _digest([g["z"], g["pos"], g["node_offsets"], rows]), model.config.cutoff_ang)

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
def embed_split(model: VibraCLIP, data: PreparedData, split: str, build_dir: str,
                batch_size: int = 256, query_mass_offset_da: float = 0.0,
                cache: EmbeddingCache | None = None) -> dict[str, torch.Tensor]:
    """{"graph", "ir", "raman"}: (n_split, latent_dim) embeddings in eval mode, split order.

    `query_mass_offset_da` shifts the mass given with the spectra (not the candidates' graphs)
    of a mass-anchored model: what a user who enters a wrong mass gets.
    """
    return embed_rows(model, data, data.splits[split], build_dir, batch_size,
                      query_mass_offset_da, cache)


@torch.no_grad()
def graph_features(model: VibraCLIP, data: PreparedData, rows: torch.Tensor, build_dir: str,
                   batch_size: int = 256, cache: EmbeddingCache | None = None) -> torch.Tensor:
    """(n_rows, out_channels) graph-encoder outputs in eval mode; with a `cache`, the same
    encoder on the same molecules runs once."""
    model.eval()
    key = cache.key(model, data, rows) if cache is not None else None
    if key is not None and (hit := cache.get(key)) is not None:
        return hit
    geo = geometry_cache(data, model.config.cutoff_ang, build_dir)
    # a private generator: iterating a loader draws a seed, and embedding (or a memo hit) must
    # not move the global RNG that training's shuffling and dropout use afterwards
    loader = DataLoader(MoleculeDataset(data, rows, geo), batch_size=batch_size,
                        generator=torch.Generator())
    parts = []
    for batch in loader:
        parts.append(model.graph_features(batch))
    feats = torch.cat(parts) if parts else torch.zeros(0, model.config.out_channels)
    if key is not None:
        cache.put(key, feats)
    return feats


@torch.no_grad()
def embed_rows(model: VibraCLIP, data: PreparedData, rows: torch.Tensor, build_dir: str,
               batch_size: int = 256, query_mass_offset_da: float = 0.0,
               cache: EmbeddingCache | None = None) -> dict[str, torch.Tensor]:
    """`embed_split` for any rows of `data` (in the order given)."""
    model.eval()
    feats = graph_features(model, data, rows, build_dir, batch_size, cache)
    mass = data.standardized_mass()[rows] if model.use_mass else None
    q_mass = None if mass is None else mass + query_mass_offset_da / data.mass_std
    out: dict[str, list[torch.Tensor]] = {"graph": [], "ir": [], "raman": []}
    for start in range(0, len(rows), batch_size):
        sl = slice(start, start + batch_size)
        r = rows[sl]
        m = None if mass is None else mass[sl]
        qm = None if q_mass is None else q_mass[sl]
        out["graph"].append(model.project_graph(feats[sl], m))
        out["ir"].append(model.encode_ir(data.ir[r], qm))
        out["raman"].append(model.encode_raman(data.raman[r], qm))
    latent = model.config.latent_dim
    return {k: torch.cat(v) if v else torch.zeros(0, latent) for k, v in out.items()}
