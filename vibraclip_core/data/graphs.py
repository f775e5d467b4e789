"""The torch side of a dataset: molecules as PyG `Data` with cached radius edges and triplets.

`geometry_cache` computes each molecule's radius graph and DimeNet++ triplets once per
(graphs, cutoff) and stores them under build/cache; `MoleculeDataset` serves rows of a
`PreparedData` to a DataLoader for training and for embedding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Data

from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.data.files import atomic_path
from vibraclip_core.data.molecules import radius_edges, triplets

# Optional precomputed geometry on a PyG Batch: the radius graph (2, E) and, per triplet
# k->j->i, the edge ids of k->j and j->i (T,). Edge ids must be offset by the number of radius
# edges of the preceding molecules when batching (a Data.__inc__ override), not by node counts.
RADIUS_EDGE_KEY = "rg_edge_index"
TRIPLET_EDGE_KEYS = ("rg_idx_kj", "rg_idx_ji")


class MoleculeData(Data):
    """A molecule with precomputed radius edges and triplet edge ids that batch correctly."""

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key in TRIPLET_EDGE_KEYS:  # edge ids shift by the radius edges of earlier molecules
            return self[RADIUS_EDGE_KEY].size(1)
        return super().__inc__(key, value, *args, **kwargs)


def geometry_cache_path(data: PreparedData, cutoff_ang: float, build_dir: str) -> Path:
    """Where `geometry_cache` keeps the geometry of `data` at `cutoff_ang`."""
    return Path(build_dir) / "cache" / f"geometry-{data.key}-{cutoff_ang:g}.pt"


def geometry_cache(data: PreparedData, cutoff_ang: float, build_dir: str) -> dict[str, torch.Tensor]:
    """Per-molecule radius edges and triplet edge ids, concatenated with offsets; cached on disk."""
    path = geometry_cache_path(data, cutoff_ang, build_dir)
    if path.exists():
        return torch.load(path, weights_only=True)
    g = data.graphs
    edges, kj, ji, e_off, t_off = [], [], [], [0], [0]
    for m in range(len(data)):
        a, b = int(g["node_offsets"][m]), int(g["node_offsets"][m + 1])
        ei = radius_edges(g["pos"][a:b], cutoff_ang)
        t = triplets(ei, b - a)
        edges.append(ei)
        kj.append(t[5])
        ji.append(t[6])
        e_off.append(e_off[-1] + ei.size(1))
        t_off.append(t_off[-1] + t[5].numel())
    out = {"edge_index": torch.cat(edges, 1), "idx_kj": torch.cat(kj), "idx_ji": torch.cat(ji),
           "edge_offsets": torch.tensor(e_off), "triplet_offsets": torch.tensor(t_off)}
    with atomic_path(path) as tmp:
        torch.save(out, tmp)
    return out


class MoleculeDataset(torch.utils.data.Dataset):
    """Rows of a PreparedData as MoleculeData; `has_ir`/`has_raman` mark missing spectra;
    `sticks` (padded, see `augment.padded_sticks`) come along for augmentation. Each item
    carries its data row (`row`) and its position in `rows` (`item_id`), so that embeddings
    gathered from several processes can be put back in dataset order."""

    def __init__(self, data: PreparedData, rows: torch.Tensor, geometry: dict[str, torch.Tensor],
                 has_ir: torch.Tensor | None = None, has_raman: torch.Tensor | None = None,
                 sticks: dict[str, torch.Tensor] | None = None) -> None:
        self.data, self.rows, self.geo = data, rows, geometry
        self.sticks = sticks
        self.mass = data.standardized_mass()
        n = len(data)
        self.has_ir = torch.ones(n, dtype=torch.bool) if has_ir is None else has_ir
        self.has_raman = torch.ones(n, dtype=torch.bool) if has_raman is None else has_raman

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, k: int) -> MoleculeData:
        m = int(self.rows[k])
        g, geo = self.data.graphs, self.geo
        a, b = g["node_offsets"][m], g["node_offsets"][m + 1]
        e0, e1 = geo["edge_offsets"][m], geo["edge_offsets"][m + 1]
        t0, t1 = geo["triplet_offsets"][m], geo["triplet_offsets"][m + 1]
        extra = {}
        if self.sticks is not None:  # (1, max_modes) each: batches stack them to (B, max_modes)
            extra.update({f"sticks_{name}": t[m:m + 1] for name, t in self.sticks.items()})
        return MoleculeData(**extra,
            z=g["z"][a:b], pos=g["pos"][a:b], num_nodes=int(b - a),
            rg_edge_index=geo["edge_index"][:, e0:e1],
            rg_idx_kj=geo["idx_kj"][t0:t1], rg_idx_ji=geo["idx_ji"][t0:t1],
            ir=self.data.ir[m:m + 1], raman=self.data.raman[m:m + 1], mass=self.mass[m:m + 1],
            has_ir=self.has_ir[m:m + 1], has_raman=self.has_raman[m:m + 1],
            row=torch.tensor([m]), item_id=torch.tensor([k]))
