"""Chapter 6's re-ranking rows: measured IR against the candidates' simulated spectra, and fused.

Each measured IR query is compared with the GFN2-xTB spectrum of every candidate of each measured
library (`candidate_spectra`, `spectral_match`), with the shipped re-ranking (`rerank.Reranker`,
chosen on validation queries of other theories before this run: nothing here is fitted on
measured spectra, so every rank is out of fold by construction). Two rows join the lever table:
the spectrum match alone (every admissible candidate ranked by it), and the fused re-ranking of a
model's zero-shot shortlist. Also here: the chance level of each library and filter, the queries
whose molecule the pretraining data holds (for the honest zero-shot split), and the confidence's
reliability on measured queries (reported, never fitted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.experiments.measured_libraries import LIBRARY_FILTERS, query_formulas
from vibraclip_core.measured.experimental import MeasuredIR
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval import scores as R
from vibraclip_core.retrieval.candidate_spectra import candidate_spectra
from vibraclip_core.retrieval.embedding import embed_spectra
from vibraclip_core.retrieval.evaluate import evaluate_ranks
from vibraclip_core.retrieval.library import CandidateLibrary
from vibraclip_core.retrieval.rerank import Reranker, reranked_ranks
from vibraclip_core.retrieval.spectral_match import candidate_matrix, coverage_mask, match_scores

MATCH_ALONE = "simulated-spectrum match alone"
Ranks = dict[tuple[str, str], torch.Tensor]


def admissible(measured: PreparedData, library: CandidateLibrary, how: str,
               mass_tol_da: float) -> np.ndarray:
    """(q, n) bool: candidates each query may be ranked against under filter `how`."""
    if how == "mass":
        diff = np.abs(measured.mass_da.numpy()[:, None] - np.asarray(library.mass_da)[None])
        return diff <= mass_tol_da
    if how == "formula":
        return np.asarray(query_formulas(measured))[:, None] == np.asarray(library.formula)[None]
    return np.ones((len(measured), len(library)), dtype=bool)


def truth_columns(measured: PreparedData, library: CandidateLibrary) -> np.ndarray:
    """(q,) the library column of each query's molecule (every measured library holds it)."""
    col = {ident: k for k, ident in enumerate(library.identity)}
    return np.array([col[i] for i in measured.identity], dtype=np.int64)


def chance_levels(measured: PreparedData, libraries: dict[str, CandidateLibrary],
                  mass_tol_da: float) -> pd.DataFrame:
    """Per (library, filter): candidates per query (mean) and the top-1 / top-10 % a random
    ordering of each query's admissible candidates would reach (mean of 1/n and min(10, n)/n)."""
    rows = []
    for name, lib in libraries.items():
        for how in LIBRARY_FILTERS[name]:
            n = admissible(measured, lib, how, mass_tol_da).sum(1).astype(np.float64)
            rows.append({"library": name, "filter": how, "candidates per query": n.mean(),
                         "chance top1 %": 100 * (1 / n).mean(),
                         "chance top10 %": 100 * (np.minimum(10, n) / n).mean()})
    return pd.DataFrame(rows).set_index(["library", "filter"]).round(2)


def library_matches(records: Sequence[MeasuredIR], measured: PreparedData,
                    libraries: dict[str, CandidateLibrary], reranker: Reranker,
                    cache_dir: str | Path, workers: int = 1) -> dict[str, np.ndarray]:
    """{library: (q, n) match scores of each measured IR query with each candidate's simulated
    IR}; candidates whose spectrum could not be simulated score NaN."""
    masks = np.stack([coverage_mask(r.spectrum) for r in records])
    out = {}
    for name, lib in libraries.items():
        sims = candidate_spectra(lib.smiles, cache_dir, workers, progress=False)
        cands = candidate_matrix(sims.offsets, sims.freqs_cm1, sims.ir_km_mol, reranker.settings)
        out[name] = match_scores(measured.ir.numpy(), masks, cands, reranker.settings)
    return out


def reranked_levers(models: dict[str, VibraCLIP], measured: PreparedData,
                    libraries: dict[str, dict[str, CandidateLibrary]],
                    matches: dict[str, np.ndarray], reranker: Reranker, mass_tol_da: float
                    ) -> tuple[dict[str, Ranks], dict[str, np.ndarray]]:
    """({lever: {(library, filter): (q,) 0-based ranks}}, {"lever|library|filter": (q,)
    confidence that rank 1 is right}) for the match alone and each model's zero-shot shortlist
    re-ranked. `libraries`: {model name: the measured libraries embedded by that model}."""
    rows = torch.arange(len(measured))
    out: dict[str, Ranks] = {MATCH_ALONE: {}}
    confidence = {}
    for k, (model_name, model) in enumerate(models.items()):
        q = embed_spectra(model, measured, rows)["ir"]
        label = f"{model_name} + spectrum match (re-ranked top {reranker.depth})"
        out[label] = {}
        for name, lib in libraries[model_name].items():
            scores = (R.normalize(q) @ R.normalize(lib.graph_emb).T).numpy()
            truth = truth_columns(measured, lib)
            for how in LIBRARY_FILTERS[name]:
                ok = admissible(measured, lib, how, mass_tol_da)
                ranks, margins = reranked_ranks(scores, matches[name], truth, reranker.weight,
                                                reranker.depth, ok)
                out[label][(name, how)] = torch.from_numpy(ranks - 1)
                confidence.setdefault(f"{label}|{name}|{how}", reranker.probability(
                    np.stack([margins, np.zeros_like(margins)], axis=1)))
                if k == 0:
                    alone, _ = reranked_ranks(scores, matches[name], truth, float("inf"),
                                              len(lib), ok)
                    out[MATCH_ALONE][(name, how)] = torch.from_numpy(alone - 1)
    return out, confidence


def seen_in_pretraining(measured: PreparedData, qm9: PreparedData) -> np.ndarray:
    """(q,) bool: the query's molecule is in the pretraining data's training split."""
    train = {qm9.identity[int(r)] for r in qm9.splits["train"]}
    return np.array([i in train for i in measured.identity], dtype=bool)


def zero_shot_split(ranks: dict[str, Ranks], seen: np.ndarray, library: str, how: str = "none",
                    seed: int = 0) -> pd.DataFrame:
    """Top-1 / top-10 % (95 % intervals) per lever, over all queries and over the queries whose
    molecule the pretraining never saw."""
    cols = {}
    for part, keep in (("all queries", np.ones_like(seen)), ("unseen in pretraining", ~seen)):
        ev = evaluate_ranks({lever: r[(library, how)][torch.from_numpy(keep)]
                             for lever, r in ranks.items()}, seed=seed).table
        for k in ("top1", "top10"):
            cols[(f"{part} ({int(keep.sum())})", f"{k} %")] = ev[k].round(1)
            cols[(f"{part} ({int(keep.sum())})", f"{k} 95 % CI")] = ev[f"{k}_ci"]
    out = pd.DataFrame(cols)
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def intervals_table(ranks: dict[str, Ranks], chance: pd.DataFrame, levers: Sequence[str],
                    seed: int = 0) -> pd.DataFrame:
    """Top-1 / top-10 % with 95 % bootstrap intervals of `levers` at every (library, filter),
    beside the chance level and the candidates per query."""
    rows = []
    for (lib, how), c in chance.iterrows():
        ev = evaluate_ranks({lever: ranks[lever][(lib, how)] for lever in levers},
                            seed=seed).table
        for lever in levers:
            rows.append({"library": lib, "filter": how, "method": lever,
                         "top1 %": round(float(ev.loc[lever, "top1"]), 1),
                         "top1 95 % CI": ev.loc[lever, "top1_ci"],
                         "top10 %": round(float(ev.loc[lever, "top10"]), 1),
                         "top10 95 % CI": ev.loc[lever, "top10_ci"],
                         "chance top1 %": c["chance top1 %"],
                         "candidates per query": round(float(c["candidates per query"]), 1)})
    return pd.DataFrame(rows).set_index(["library", "filter", "method"])

