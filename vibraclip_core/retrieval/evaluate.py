"""One entry point from a trained model and a split to the retrieval metrics table and curves.

The candidate library is the split's molecules (as in the paper's test-set evaluation, a
`CandidateLibrary` of the split's rows); queries are the same molecules' spectra. Chapters call
`evaluate`; none computes metrics by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from vibraclip_core.config.query_modes import IR_RAMAN, IR_RAMAN_PAPER
from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.data.molecules import morgan_fingerprints
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval import scores as R
from vibraclip_core.retrieval.baselines import CCABaseline, RandomProjectionBaseline, embed_baseline
from vibraclip_core.retrieval.embedding import EmbeddingCache, embed_spectra
from vibraclip_core.retrieval.library import CandidateLibrary
from vibraclip_core.retrieval.metrics import (bootstrap_ci, mean_reciprocal_rank, topk_accuracy,
                                              topk_curve)


@dataclass
class Evaluation:
    """Top-k table (one row per query mode) and top-1..top-kmax curves (fractions)."""

    table: pd.DataFrame
    curves: dict[str, np.ndarray]
    ranks: dict[str, torch.Tensor]


def evaluate(model: VibraCLIP, data: PreparedData, split: str = "test", build_dir: str = "build",
             kmax: int = 25, n_boot: int = 1000, seed: int = 0, mass_tol_da: float | None = None,
             query_mass_offset_da: float = 0.0, cache: EmbeddingCache | None = None
             ) -> Evaluation:
    """Retrieval of the split's molecules from their spectra, in every query mode.

    Modes: `ir` and `raman` (one spectrum), `ir+raman library` (default scoring, candidate
    structures only) and `ir+raman paper` (the paper's score, which also uses candidate spectra).
    `mass_tol_da` keeps only candidates within that many Da of the query's true mass (a filter,
    not anchoring); `query_mass_offset_da` see `embedding.embed_split`; `cache` serves the graph
    encoder's outputs when the same encoder already ran on the same molecules.
    """
    rows = data.splits[split]
    library = CandidateLibrary.from_rows(data, rows).embed(model, build_dir, cache=cache)
    emb = {"graph": library.graph_emb,
           **embed_spectra(model, data, rows, query_mass_offset_da=query_mass_offset_da)}
    mask = None
    if mass_tol_da is not None:
        mass = data.mass_da[data.splits[split]]
        mask = R.mass_filter(mass, mass, mass_tol_da)
    return evaluate_scorers(_learned_scorers(emb), data, split, kmax, n_boot, seed, mask)


def _learned_scorers(emb: dict[str, torch.Tensor]) -> dict[str, R.ScoreFn]:
    return {
        "ir": R.cosine_scorer(emb["ir"], emb["graph"]),
        "raman": R.cosine_scorer(emb["raman"], emb["graph"]),
        IR_RAMAN: R.library_scorer(emb["graph"], emb["ir"], emb["raman"]),
        IR_RAMAN_PAPER: R.paper_scorer(emb["graph"], emb["ir"], emb["raman"], emb["ir"]),
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
        curves[mode] = topk_curve(r, kmax)
        row = {"query": mode, "n": int(len(r))}
        for k in (1, 5, 10, 25):
            acc = topk_accuracy(r, k)
            lo, hi = bootstrap_ci(r, lambda m, k=k: (m < k).mean(-1), n_boot=n_boot, seed=seed)
            row.update({f"top{k}": 100 * acc, f"top{k}_ci": f"{100 * lo:.1f}–{100 * hi:.1f}"})
        row["mrr"] = mean_reciprocal_rank(r)
        rows.append(row)
    return Evaluation(pd.DataFrame(rows).set_index("query"), curves, ranks)


def _split_smiles(data: PreparedData, split: str) -> list[str]:
    return [data.smiles[int(i)] for i in data.splits[split]]


def cca_baselines(data: PreparedData, dim: int = 128, n_bits: int = 2048
                  ) -> dict[str, CCABaseline]:
    """The fitted CCA of each mode: "ir" and "raman" plain one-view CCAs, "ir+raman library"
    one fit of both views into a shared structure space; fitted on the train split."""
    tr = data.splits["train"]
    fp = morgan_fingerprints(_split_smiles(data, "train"), n_bits)
    spectra = {"ir": data.ir, "raman": data.raman}
    out = {view: CCABaseline.fit_features(fp, {view: spec[tr]}, dim)
           for view, spec in spectra.items()}
    out[IR_RAMAN] = CCABaseline.fit_features(
        fp, {v: spec[tr] for v, spec in spectra.items()}, dim)
    return out


def cca_evaluation(data: PreparedData, split: str = "test", dim: int = 128, n_bits: int = 2048,
                   kmax: int = 25, n_boot: int = 1000, seed: int = 0) -> Evaluation:
    """CCA, a learned linear baseline (fitted on the train split), scored like the model.

    Morgan fingerprints (radius 2, `n_bits`) vs spectra (`baselines.CCABaseline`): "CCA ir" and
    "CCA raman" each from a plain one-view CCA, "CCA ir+raman library" from one fit of both views
    into a shared structure space, scored with `scores.library_scorer` (`cca_baselines`).
    """
    te = data.splits[split]
    scorers = {}
    for mode, cca in cca_baselines(data, dim, n_bits).items():
        lib, queries = embed_baseline(cca, _split_smiles(data, split), data.ir[te],
                                      data.raman[te]) if mode.startswith("ir+raman") else (
            cca.embed_structures(_split_smiles(data, split)),
            {mode: cca.embed_spectra(mode, getattr(data, mode)[te])})
        scorers[f"CCA {mode}"] = R.mode_scorers(lib, queries)[mode]
    return evaluate_scorers(scorers, data, split, kmax, n_boot, seed)


def random_projection_evaluation(data: PreparedData, split: str = "test", dim: int = 861,
                                 seed: int = 0, n_bits: int = 2048, kmax: int = 25,
                                 n_boot: int = 1000) -> Evaluation:
    """The paper's non-learned baseline (SI S-2): fixed random projections seeded by `seed`
    (which also seeds the bootstrap); modes "random ir", "random raman", "random ir+raman library".
    """
    rows = data.splits[split]
    lib, queries = embed_baseline(RandomProjectionBaseline(dim=dim, seed=seed, n_bits=n_bits),
                                  _split_smiles(data, split), data.ir[rows], data.raman[rows])
    scorers = {f"random {mode}": fn for mode, fn in R.mode_scorers(lib, queries).items()}
    return evaluate_scorers(scorers, data, split, kmax, n_boot, seed)
