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
from .molecules import morgan_fingerprints
from .train import MoleculeDataset, geometry_cache


@torch.no_grad()
def embed_split(model: VibraCLIP, data: PreparedData, split: str, build_dir: str,
                batch_size: int = 256, query_mass_offset_da: float = 0.0
                ) -> dict[str, torch.Tensor]:
    """{"graph", "ir", "raman"}: (n_split, latent_dim) embeddings in eval mode, split order.

    `query_mass_offset_da` shifts the mass given with the spectra (not the candidates' graphs)
    of a mass-anchored model: what a user who enters a wrong mass gets.
    """
    return embed_rows(model, data, data.splits[split], build_dir, batch_size,
                      query_mass_offset_da)


@torch.no_grad()
def embed_rows(model: VibraCLIP, data: PreparedData, rows: torch.Tensor, build_dir: str,
               batch_size: int = 256, query_mass_offset_da: float = 0.0
               ) -> dict[str, torch.Tensor]:
    """`embed_split` for any rows of `data` (in the order given)."""
    model.eval()
    geo = geometry_cache(data, model.config.cutoff_ang, build_dir)
    loader = DataLoader(MoleculeDataset(data, rows, geo), batch_size=batch_size)
    parts = []
    for batch in loader:
        out = model(batch)
        if query_mass_offset_da and model.use_mass:
            n = int(batch.num_graphs)
            mass = batch.mass.reshape(n) + query_mass_offset_da / data.mass_std
            out["ir"] = model.encode_ir(batch.ir.reshape(n, -1), mass)
            out["raman"] = model.encode_raman(batch.raman.reshape(n, -1), mass)
        parts.append(out)
    return {k: torch.cat([p[k] for p in parts]) for k in ("graph", "ir", "raman")}


@dataclass
class Evaluation:
    """Top-k table (one row per query mode) and top-1..top-kmax curves (fractions)."""

    table: pd.DataFrame
    curves: dict[str, np.ndarray]
    ranks: dict[str, torch.Tensor]


def evaluate(model: VibraCLIP, data: PreparedData, split: str = "test", build_dir: str = "build",
             kmax: int = 25, n_boot: int = 1000, seed: int = 0, mass_tol_da: float | None = None,
             query_mass_offset_da: float = 0.0) -> Evaluation:
    """Retrieval of the split's molecules from their spectra, in every query mode.

    Modes: `ir` and `raman` (one spectrum), `ir+raman library` (default scoring, candidate
    structures only) and `ir+raman paper` (the paper's score, which also uses candidate spectra).
    `mass_tol_da` keeps only candidates within that many Da of the query's true mass (a filter,
    not anchoring); `query_mass_offset_da` see `embed_split`.
    """
    emb = embed_split(model, data, split, build_dir, query_mass_offset_da=query_mass_offset_da)
    mask = None
    if mass_tol_da is not None:
        mass = data.mass_da[data.splits[split]]
        mask = R.mass_filter(mass, mass, mass_tol_da)
    return evaluate_scorers(_learned_scorers(emb), data, split, kmax, n_boot, seed, mask)


def _learned_scorers(emb: dict[str, torch.Tensor]) -> dict[str, R.ScoreFn]:
    return {
        "ir": R.cosine_scorer(emb["ir"], emb["graph"]),
        "raman": R.cosine_scorer(emb["raman"], emb["graph"]),
        "ir+raman library": R.library_scorer(emb["graph"], emb["ir"], emb["raman"]),
        "ir+raman paper": R.paper_scorer(emb["graph"], emb["ir"], emb["raman"], emb["ir"]),
    }


def evaluate_scorers(scorers: dict[str, R.ScoreFn], data: PreparedData, split: str,
                     kmax: int = 25, n_boot: int = 1000, seed: int = 0,
                     mask: R.MaskFn | None = None) -> Evaluation:
    """Top-k table, curves and ranks of each named scorer (queries = library = the split)."""
    ids = [data.identity[int(i)] for i in data.splits[split]]
    ranks = {mode: R.rank_of_truth_scored(scorer, ids, ids, mask=mask)
             for mode, scorer in scorers.items()}
    return evaluate_ranks(ranks, kmax, n_boot, seed)


def evaluate_ranks(ranks: dict[str, torch.Tensor], kmax: int = 25, n_boot: int = 1000,
                   seed: int = 0) -> Evaluation:
    """Top-1/5/10/25 (%) with 95 % bootstrap intervals, MRR and top-1..kmax curves per name."""
    rows, curves = [], {}
    for mode, r in ranks.items():
        curves[mode] = R.topk_curve(r, kmax)
        row = {"query": mode, "n": int(len(r))}
        for k in (1, 5, 10, 25):
            acc = R.topk_accuracy(r, k)
            lo, hi = R.bootstrap_ci(r, lambda m, k=k: (m < k).mean(-1), n_boot=n_boot, seed=seed)
            row.update({f"top{k}": 100 * acc, f"top{k}_ci": f"{100 * lo:.1f}–{100 * hi:.1f}"})
        row["mrr"] = R.mean_reciprocal_rank(r)
        rows.append(row)
    return Evaluation(pd.DataFrame(rows).set_index("query"), curves, ranks)


def cca_evaluation(data: PreparedData, split: str = "test", dim: int = 128, n_bits: int = 2048,
                   kmax: int = 25, n_boot: int = 1000, seed: int = 0) -> Evaluation:
    """The non-learned baseline (paper SI S-2) on the same split as the model.

    Linear CCA between Morgan fingerprints (radius 2, `n_bits`) and spectra, fitted on the train
    split; queries: IR, Raman, and the two concatenated (IR+Raman), each its own CCA.
    """
    tr, te = data.splits["train"], data.splits[split]
    fp = morgan_fingerprints(data.smiles, n_bits)
    views = {"ir": data.ir, "raman": data.raman,
             "ir+raman": torch.cat([data.ir, data.raman], dim=1)}
    scorers = {}
    for mode, spec in views.items():
        lib, query = R.cca_baseline(fp[tr], spec[tr].numpy(), fp[te], spec[te].numpy(), dim=dim)
        scorers[f"CCA {mode}"] = R.cosine_scorer(query, lib)
    return evaluate_scorers(scorers, data, split, kmax, n_boot, seed)
