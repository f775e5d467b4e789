"""One entry point from a trained model and a split to the retrieval metrics table and curves.

The candidate library is the split's molecules (as in the paper's test-set evaluation); queries are
the same molecules' spectra. Chapters call `evaluate`; none computes metrics by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch_geometric.loader import DataLoader

from . import retrieval as R
from .datasets import PreparedData
from .model import VibraCLIP
from .train import MoleculeDataset, geometry_cache


@torch.no_grad()
def embed_split(model: VibraCLIP, data: PreparedData, split: str, build_dir: str,
                batch_size: int = 256) -> dict[str, torch.Tensor]:
    """{"graph", "ir", "raman"}: (n_split, latent_dim) embeddings in eval mode, split order."""
    model.eval()
    geo = geometry_cache(data, model.config.cutoff_ang, build_dir)
    loader = DataLoader(MoleculeDataset(data, data.splits[split], geo), batch_size=batch_size)
    parts = [model(batch) for batch in loader]
    return {k: torch.cat([p[k] for p in parts]) for k in ("graph", "ir", "raman")}


@dataclass
class Evaluation:
    """Top-k table (one row per query mode) and top-1..top-kmax curves (fractions)."""

    table: pd.DataFrame
    curves: dict[str, np.ndarray]
    ranks: dict[str, torch.Tensor]


def evaluate(model: VibraCLIP, data: PreparedData, split: str = "test", build_dir: str = "build",
             kmax: int = 25, n_boot: int = 1000, seed: int = 0) -> Evaluation:
    """Retrieval of the split's molecules from their spectra, in every query mode.

    Modes: `ir` and `raman` (one spectrum), `ir+raman library` (default scoring, candidate
    structures only) and `ir+raman paper` (the paper's score, which also uses candidate spectra).
    """
    emb = embed_split(model, data, split, build_dir)
    ids = [data.identity[int(i)] for i in data.splits[split]]
    scorers = {
        "ir": R.cosine_scorer(emb["ir"], emb["graph"]),
        "raman": R.cosine_scorer(emb["raman"], emb["graph"]),
        "ir+raman library": R.library_scorer(emb["graph"], emb["ir"], emb["raman"]),
        "ir+raman paper": R.paper_scorer(emb["graph"], emb["ir"], emb["raman"], emb["ir"]),
    }
    rows, curves, ranks = [], {}, {}
    for mode, scorer in scorers.items():
        r = R.rank_of_truth_scored(scorer, ids, ids)
        ranks[mode], curves[mode] = r, R.topk_curve(r, kmax)
        row = {"query": mode, "n": int(len(r))}
        for k in (1, 5, 10, 25):
            acc = R.topk_accuracy(r, k)
            lo, hi = R.bootstrap_ci(r, lambda m, k=k: (m < k).mean(-1), n_boot=n_boot, seed=seed)
            row.update({f"top{k}": 100 * acc, f"top{k}_ci": f"{100 * lo:.1f}–{100 * hi:.1f}"})
        row["mrr"] = R.mean_reciprocal_rank(r)
        rows.append(row)
    return Evaluation(pd.DataFrame(rows).set_index("query"), curves, ranks)
