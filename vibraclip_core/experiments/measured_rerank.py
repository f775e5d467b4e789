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
from vibraclip_core.experiments.measured_libraries import (LIB_DISTRACTORS, LIB_ISOMERS,
                                                           LIB_MEASURED, LIBRARY_FILTERS,
                                                           query_formulas)
from vibraclip_core.measured.experimental import MeasuredIR
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval import scores as R
from vibraclip_core.retrieval.candidate_spectra import candidate_spectra
from vibraclip_core.retrieval.embedding import embed_spectra
from vibraclip_core.retrieval.evaluate import evaluate_ranks
from vibraclip_core.retrieval.library import CandidateLibrary
from vibraclip_core.retrieval.metrics import cluster_topk_ci, paired_topk_difference
from vibraclip_core.retrieval.rerank import (ALL_CANDIDATES, Reranker,
                                             expected_calibration_error, fused_ranks,
                                             reranked_ranks)
from vibraclip_core.retrieval.spectral_match import candidate_matrix, coverage_mask, match_scores

MATCH_ALONE = "simulated-spectrum match alone"
# where ours is compared paired: each library without a filter, the isomers with theirs
PAIRED_KEYS = ((LIB_DISTRACTORS, "none"), (LIB_MEASURED, "none"), (LIB_ISOMERS, "formula"))
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
    confidence that rank 1 is right, and "lever|library|filter|present" / "...|absent": (q, 3)
    confidence features with the query's molecule in the library and removed from it}) for the
    match alone and each model's zero-shot candidates fused. `libraries`: {model name: the
    measured libraries embedded by that model}."""
    rows = torch.arange(len(measured))
    out: dict[str, Ranks] = {MATCH_ALONE: {}}
    confidence = {}
    for k, (model_name, model) in enumerate(models.items()):
        q = embed_spectra(model, measured, rows)["ir"]
        label = f"{model_name} + spectrum match ({fused_label(reranker)})"
        out[label] = {}
        for name, lib in libraries[model_name].items():
            scores = (R.normalize(q) @ R.normalize(lib.graph_emb).T).numpy()
            truth = truth_columns(measured, lib)
            for how in LIBRARY_FILTERS[name]:
                ok = admissible(measured, lib, how, mass_tol_da)
                fr = fused_ranks(scores, matches[name], truth, reranker.weight, reranker.depth,
                                 ok)
                out[label][(name, how)] = torch.from_numpy(fr.ranks - 1)
                key = f"{label}|{name}|{how}"
                confidence[f"{key}|present"] = fr.features()
                confidence[key] = reranker.probability(confidence[f"{key}|present"])
                gone = ok & (np.arange(len(lib))[None] != truth[:, None])
                confidence[f"{key}|absent"] = fused_ranks(
                    scores, matches[name], -np.ones_like(truth), reranker.weight,
                    reranker.depth, gone).features()
                if k == 0:
                    alone, _ = reranked_ranks(scores, matches[name], truth, float("inf"),
                                              len(lib), ok)
                    out[MATCH_ALONE][(name, how)] = torch.from_numpy(alone - 1)
    return out, confidence


def fused_label(reranker: Reranker) -> str:
    """Which candidates the fusion re-scores, as a table label."""
    return ("fused over all candidates" if reranker.depth <= ALL_CANDIDATES
            else f"re-ranked top {reranker.depth}")


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
                    seed: int = 0, groups: np.ndarray | None = None) -> pd.DataFrame:
    """Top-1 / top-10 % with 95 % bootstrap intervals of `levers` at every (library, filter),
    beside the chance level and the candidates per query; with `groups` (q,) (each query's
    molecule) the intervals resample molecules, not spectra."""
    rows = []
    for (lib, how), c in chance.iterrows():
        ev = evaluate_ranks({lever: ranks[lever][(lib, how)] for lever in levers},
                            seed=seed).table
        for lever in levers:
            row = {"library": lib, "filter": how, "method": lever}
            for k in (1, 10):
                row[f"top{k} %"] = round(float(ev.loc[lever, f"top{k}"]), 1)
                if groups is None:
                    row[f"top{k} 95 % CI"] = ev.loc[lever, f"top{k}_ci"]
                else:
                    lo, hi = cluster_topk_ci(ranks[lever][(lib, how)], groups, k, seed=seed)
                    row[f"top{k} 95 % CI"] = f"{100 * lo:.1f}–{100 * hi:.1f}"
            row.update({"chance top1 %": c["chance top1 %"],
                        "candidates per query": round(float(c["candidates per query"]), 1)})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["library", "filter", "method"])


def paired_differences(ranks: dict[str, Ranks], ours: str, others: Sequence[str],
                       keys: Sequence[tuple[str, str]], groups: np.ndarray, seed: int = 0
                       ) -> pd.DataFrame:
    """Top-1 / top-10 points of `ours` minus each of `others` on the same queries, at each
    (library, filter) of `keys`, with 95 % intervals from a bootstrap over molecules (`groups`)
    that keeps each query's pair together."""
    rows = []
    for lib, how in keys:
        for other in others:
            row = {"library": lib, "filter": how, "ours minus": other}
            for k in (1, 10):
                d, lo, hi = paired_topk_difference(ranks[ours][(lib, how)],
                                                   ranks[other][(lib, how)], groups, k,
                                                   seed=seed)
                row[f"top{k} points"] = round(100 * d, 1)
                row[f"top{k} 95 % CI"] = f"{100 * lo:+.1f} to {100 * hi:+.1f}"
            rows.append(row)
    return pd.DataFrame(rows).set_index(["library", "filter", "ours minus"])


def open_set_rates(reranker: Reranker, confidence: dict[str, np.ndarray], key: str,
                   correct: np.ndarray) -> pd.DataFrame:
    """With each query's molecule in the library and removed from it (`reranked_levers`'
    "key|present" / "key|absent" features): the share told "no candidate fits" (NaN when the
    re-ranking cannot say) and the confidence's expected calibration error; `correct` (q,):
    rank 1 was right with the molecule present."""
    rows = []
    for part, label in (("present", "in the library"), ("absent", "removed from it")):
        feats = confidence[f"{key}|{part}"]
        none = reranker.none_fits(feats)
        right = correct if part == "present" else np.zeros_like(correct)
        rows.append({"the query's molecule": label, "queries": len(feats),
                     "'no candidate fits' %": (np.nan if none is None
                                               else round(100 * float(none.mean()), 1)),
                     "confidence ECE": round(expected_calibration_error(
                         reranker.probability(feats), right), 3)})
    return pd.DataFrame(rows).set_index("the query's molecule")
