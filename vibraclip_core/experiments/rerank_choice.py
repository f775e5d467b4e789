"""Choosing the re-ranking on validation queries of other theories, never on measured spectra.

The embedded set's validation molecules are queried with spectra that did not come from GFN2-xTB:
their GFN1-xTB spectra (`second_theory`, other intensities and per-mode shifts) and their B3LYP
frequencies with GFN2 intensities (`augment.cross_theory_sticks`, other positions). The library is
the validation molecules themselves, with their GFN2 sticks as the candidates' simulated spectra
and the model's graph embeddings. On these queries, IR only (what the measured sets hold):

1. the spectrum-match settings are chosen by the match's own top-1 (a grid, `MATCH_GRID`);
2. the fusion weight by the re-ranked top-1 at the shipped depth (`WEIGHTS`);
3. the confidence's logistic is fitted on the fused margins of both query sets pooled.

The criterion is the mean top-1 over the two query sets, so that a choice must carry to both
kinds of difference. Each query molecule's sticks are broadened with a band width drawn (seeded)
from QUERY_FWHM_CM1, since measured band widths vary.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vibraclip_core.config.profiles import EMBEDDED_DATA_DIR
from vibraclip_core.data.augment import cross_theory_sticks, stick_rows
from vibraclip_core.data.datasets import StickSet, load_sticks
from vibraclip_core.data.mass import MassStats
from vibraclip_core.data.molecules import canonical_identity
from vibraclip_core.data.second_theory import GFN1_DIR, heldout_indices
from vibraclip_core.data.spectra import MODEL_POINTS, sticks_to_model_input
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval import scores as R
from vibraclip_core.retrieval.embedding import embed_queries
from vibraclip_core.retrieval.library_cache import build_library
from vibraclip_core.retrieval.rerank import (DEFAULT_DEPTH, Reranker, fit_logistic, logistic,
                                             reliability, reranked_ranks)
from vibraclip_core.retrieval.spectral_match import MatchSettings, candidate_matrix, match_scores

log = logging.getLogger(__name__)

GFN1_QUERIES = "GFN1-xTB spectra"
B3LYP_QUERIES = "B3LYP frequencies, GFN2 intensities"
MATCH_GRID = {"fwhm_cm1": (15.0, 30.0, 45.0), "compression": ("none", "sqrt", "log"),
              "derivative": (False, True), "alignment": ("none", "global", "regions")}
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, float("inf"))  # inf: the match alone
# band widths of the validation queries, one drawn per molecule: condensed-phase bands are ~10 cm-1
# wide, gas-phase rotational contours 20-40 cm-1; a single width would favour the match's own
QUERY_FWHM_CM1 = (10.0, 15.0, 20.0, 30.0, 40.0)


@dataclass
class ValidationSet:
    """Validation molecules (library order), their GFN2 sticks (the candidates' simulated
    spectra), the model's graph embeddings and masses, and IR queries of each other theory:
    {name: (n, 1750) model inputs}, row k being molecule k."""

    smiles: list[str]
    sticks: StickSet
    graph_emb: torch.Tensor
    mass_da: np.ndarray
    queries: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.smiles)


def broadened_queries(sticks: StickSet, kind: str, widths: np.ndarray) -> np.ndarray:
    """(n, 1750) model inputs of `sticks` ("ir" or "raman"), molecule m broadened with
    widths[m] cm-1 FWHM."""
    out = np.zeros((len(sticks), MODEL_POINTS), dtype=np.float32)
    for w in np.unique(widths):
        rows = np.flatnonzero(widths == w)
        sel = sticks.select(rows)
        values = sel.ir_km_mol if kind == "ir" else sel.raman_a4_amu
        out[rows] = sticks_to_model_input(sel.freqs_cm1, values, sel.offsets, float(w))
    return out


def validation_set(model: VibraCLIP, mass_stats: MassStats | None, cache_dir: str | Path,
                   seed: int = 0, fwhm_cm1: tuple[float, ...] = QUERY_FWHM_CM1,
                   n_max: int | None = None,
                   gfn2_dir: Path = EMBEDDED_DATA_DIR, gfn1_dir: Path = GFN1_DIR,
                   workers: int = 2) -> ValidationSet:
    """The validation molecules that have GFN1 and GFN2 spectra (at most n_max, in shard order),
    embedded by `model` (a cached candidate library); queries broadened with a width per
    molecule drawn (seeded) from `fwhm_cm1`."""
    val = heldout_indices(gfn2_dir, seed)["val"]
    gfn1 = load_sticks(Path(gfn1_dir)).ok()
    have = set(int(i) for i in gfn1.index)
    index = np.array([i for i in val if int(i) in have], dtype=np.int64)[:n_max]
    gfn2 = load_sticks(Path(gfn2_dir)).ok()
    gfn2 = gfn2.select(stick_rows(gfn2, index))
    library = build_library(model, list(gfn2.smiles), mass_stats, cache_dir, workers=workers,
                            progress=False)
    col = {ident: k for k, ident in enumerate(library.identity)}
    keep = np.array([k for k, s in enumerate(gfn2.smiles) if canonical_identity(s) in col])
    order = np.array([col[canonical_identity(gfn2.smiles[k])] for k in keep])
    gfn2, index = gfn2.select(keep), index[keep]
    gfn1 = gfn1.select(stick_rows(gfn1, index))
    b3 = cross_theory_sticks(gfn2)
    widths = np.random.default_rng(seed).choice(np.asarray(fwhm_cm1), len(gfn2))
    queries = {name: broadened_queries(s, "ir", widths)
               for name, s in ((GFN1_QUERIES, gfn1), (B3LYP_QUERIES, b3))}
    return ValidationSet(list(gfn2.smiles), gfn2, library.graph_emb[torch.from_numpy(order)],
                         np.asarray(library.mass_da)[order], queries)


@torch.no_grad()
def model_scores(model: VibraCLIP, vs: ValidationSet, mass_stats: MassStats | None
                 ) -> dict[str, np.ndarray]:
    """{query set: (n, n) cosine of each IR query (given its molecule's mass) with every
    candidate's graph embedding}."""
    mass = mass_stats.standardize(vs.mass_da) if model.config.mass else None
    out = {}
    for name, x in vs.queries.items():
        # one batch, as these scores were first computed: batching can move the last bits
        q = embed_queries(model, {"ir": torch.from_numpy(x)}, mass, batch_size=max(1, len(x)))
        out[name] = (R.normalize(q["ir"]) @ R.normalize(vs.graph_emb).T).numpy()
    return out


def _top1(scores: np.ndarray) -> float:
    return float((np.nanargmax(np.nan_to_num(scores, nan=-np.inf), axis=1)
                  == np.arange(len(scores))).mean() * 100)


def match_grid(vs: ValidationSet, grid: dict = MATCH_GRID) -> pd.DataFrame:
    """Top-1 % of the match alone for every combination of `grid` (rows), per query set."""
    rows = []
    ones = np.ones((len(vs), MODEL_POINTS), dtype=bool)
    for values in itertools.product(*grid.values()):
        settings = MatchSettings(**dict(zip(grid, values)))
        cands = candidate_matrix(vs.sticks.offsets, vs.sticks.freqs_cm1, vs.sticks.ir_km_mol,
                                 settings)
        row = dict(zip(grid, values))
        for name, x in vs.queries.items():
            row[name] = _top1(match_scores(x, ones, cands, settings))
        rows.append(row)
        log.info("match grid %s", row)
    out = pd.DataFrame(rows)
    out["mean"] = out[list(vs.queries)].mean(axis=1)
    return out.round(2)


def match_matrices(vs: ValidationSet, settings: MatchSettings) -> dict[str, np.ndarray]:
    """{query set: (n, n) match scores} with one setting."""
    cands = candidate_matrix(vs.sticks.offsets, vs.sticks.freqs_cm1, vs.sticks.ir_km_mol,
                             settings)
    ones = np.ones((len(vs), MODEL_POINTS), dtype=bool)
    return {name: match_scores(x, ones, cands, settings) for name, x in vs.queries.items()}


def weight_grid(model: dict[str, np.ndarray], match: dict[str, np.ndarray],
                depth: int = DEFAULT_DEPTH, weights=WEIGHTS) -> pd.DataFrame:
    """Re-ranked top-1 / top-10 % per fusion weight (rows) and query set, at `depth`."""
    rows = []
    for w in weights:
        row = {"weight": w}
        for name in model:
            ranks, _ = reranked_ranks(model[name], match[name], np.arange(len(model[name])), w,
                                      depth)
            row[f"{name} top1"] = float((ranks == 1).mean() * 100)
            row[f"{name} top10"] = float((ranks <= 10).mean() * 100)
        rows.append(row)
    out = pd.DataFrame(rows)
    out["mean top1"] = out[[f"{n} top1" for n in model]].mean(axis=1)
    return out.round(2)


def choose_reranker(model: VibraCLIP, mass_stats: MassStats | None, cache_dir: str | Path,
                    seed: int = 0, fwhm_cm1: tuple[float, ...] = QUERY_FWHM_CM1,
                    depth: int = DEFAULT_DEPTH,
                    n_max: int | None = None, grid: dict = MATCH_GRID
                    ) -> tuple[Reranker, dict[str, pd.DataFrame]]:
    """(the chosen Reranker, {"match grid", "weights", "reliability"} tables); see the module
    docstring."""
    vs = validation_set(model, mass_stats, cache_dir, seed, fwhm_cm1, n_max)
    scores = model_scores(model, vs, mass_stats)
    mgrid = match_grid(vs, grid)
    best = mgrid.loc[mgrid["mean"].idxmax()]
    settings = MatchSettings(**{k: type(getattr(MatchSettings(), k))(best[k]) for k in grid})
    match = match_matrices(vs, settings)
    wgrid = weight_grid(scores, match, depth)
    finite = wgrid[np.isfinite(wgrid["weight"])]
    weight = float(wgrid.loc[wgrid["mean top1"].idxmax(), "weight"])
    margins, correct = [], []
    for name in scores:
        ranks, m = reranked_ranks(scores[name], match[name], np.arange(len(vs)), weight, depth)
        margins.append(m), correct.append(ranks == 1)
    coef = fit_logistic(np.concatenate(margins), np.concatenate(correct))
    chosen = Reranker(settings, weight, depth, coef, {
        "chosen on": f"{len(vs)} validation molecules of the embedded set (seed {seed}), IR "
                     f"queries: {', '.join(scores)}; library: the same molecules",
        "criterion": "mean top-1 over the query sets (match alone for the settings, re-ranked "
                     f"at depth {depth} for the weight)",
        "match top-1 % (chosen settings)": {n: float(best[n]) for n in scores},
        "model top-1 %": {n: _top1(s) for n, s in scores.items()},
        "re-ranked top-1 % (chosen weight)": {
            n: float(wgrid.loc[wgrid["weight"] == weight, f"{n} top1"].iloc[0]) for n in scores},
        "weights tried": [float(w) for w in finite["weight"]] + ["match alone"]})
    rel = reliability(logistic(np.concatenate(margins), coef),
                      np.concatenate(correct))
    return chosen, {"match grid": mgrid, "weights": wgrid, "reliability": rel,
                    "margins": pd.DataFrame({"margin": np.concatenate(margins),
                                             "correct": np.concatenate(correct)})}



def validation_reliability(model: VibraCLIP, mass_stats: MassStats | None, reranker: Reranker,
                           cache_dir: str | Path, seed: int = 0,
                           fwhm_cm1: tuple[float, ...] = QUERY_FWHM_CM1, n_max: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(top-1 % per query set: model alone, match alone, re-ranked; the confidence's
    reliability on both query sets pooled) of `reranker` on validation queries of other
    theories: what the shipped choice does on the queries it was chosen on."""
    vs = validation_set(model, mass_stats, cache_dir, seed, fwhm_cm1, n_max)
    scores = model_scores(model, vs, mass_stats)
    match = match_matrices(vs, reranker.settings)
    truth = np.arange(len(vs))
    rows, margins, correct = [], [], []
    for name in scores:
        ranks, m = reranked_ranks(scores[name], match[name], truth, reranker.weight,
                                  reranker.depth)
        margins.append(m), correct.append(ranks == 1)
        rows.append({"queries": name, "molecules": len(vs), "model alone": _top1(scores[name]),
                     "match alone": _top1(match[name]),
                     "re-ranked": float((ranks == 1).mean() * 100)})
    rel = reliability(logistic(np.concatenate(margins), reranker.confidence_coef),
                      np.concatenate(correct))
    return pd.DataFrame(rows).set_index("queries").round(1), rel
