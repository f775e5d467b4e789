"""Identify a measured IR (and Raman) spectrum: rank the structures of a candidate library.

The library (`library.CandidateLibrary`, built and cached by `library_cache.build_library`) is
embedded with the same checkpoint as the query; the query spectrum is embedded and scored against
every admissible candidate, optionally filtered by mass or formula (`retrieval`'s filters). With
a `rerank.Reranker`, the candidates taking part in the fusion (every admissible one for depth 0,
else the model's top `depth`) are compared with the query spectrum (`spectral_match`) through
their simulated spectra and re-ordered by the fused score. A simulated spectrum already on disk
(embedded shards, cache) is free; of the candidates without one, only the model's top
`SIMULATE_TOP` are simulated (`candidate_spectra`), the rest count a neutral match. The
probability that rank 1 is right, and whether no candidate fits, are attached.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import torch

from vibraclip_core.config.loss_modes import LOSS_MODES, uses_raman
from vibraclip_core.data.formulas import ELEMENTS, formula_mass_da, hill_formula, unknown_elements
from vibraclip_core.data.spectra import Spectrum, spectrum_to_model_input
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval import scores as R
from vibraclip_core.retrieval.candidate_spectra import COMPUTED, NOT_SIMULATED, candidate_spectra
from vibraclip_core.retrieval.candidates import IdentifyError
from vibraclip_core.retrieval.embedding import embed_queries, model_digest
from vibraclip_core.retrieval.library import CandidateLibrary
from vibraclip_core.retrieval.rerank import (ALL_CANDIDATES, SIMULATE_TOP, Reranker,
                                             confidence_features)
from vibraclip_core.retrieval.spectral_match import candidate_matrix, coverage_mask, match_scores

log = logging.getLogger(__name__)

RESULT_COLUMNS = ("rank", "score", "smiles", "formula", "mass_da")
RERANK_COLUMNS = ("rank", "fused", "score", "match", "smiles", "formula", "mass_da")


def check_query(model: VibraCLIP, ir: Spectrum | None, raman: Spectrum | None,
                mass_da: float | None = None, formula: str | None = None,
                top: int | None = None) -> None:
    """Raise IdentifyError when the spectra/mass/formula given cannot be used with this model."""
    cfg = model.config
    if ir is None and raman is None:
        raise IdentifyError("no query spectrum: give an IR spectrum (--ir) and/or a Raman "
                            "spectrum (--raman)")
    if raman is not None and not uses_raman(cfg.loss):
        raman_modes = " or ".join(repr(n) for n, m in LOSS_MODES.items() if m.uses_raman)
        raise IdentifyError(f"{raman.source}: this checkpoint's config has loss={cfg.loss!r}, so "
                            "its Raman encoder was never trained; drop --raman or use a "
                            f"checkpoint trained with loss {raman_modes}")
    if formula is not None:
        outside = unknown_elements(formula)  # parses it: a bad formula raises FormulaError
        if outside:
            raise IdentifyError(f"formula {formula!r}: {', '.join(outside)} "
                                f"{'is' if len(outside) == 1 else 'are'} outside the elements "
                                f"the model knows ({', '.join(ELEMENTS)}), so no candidate can "
                                "have this formula; this molecule cannot be identified here")
    if cfg.mass and mass_da is None and formula is None:
        raise IdentifyError("this checkpoint was trained with mass anchoring (config.mass=True), "
                            "so the query needs its molecular mass: give --mass in Da, or "
                            "--formula from which the mass is computed")
    if top is not None and top < 1:
        raise IdentifyError(f"top={top}: must be at least 1")
    if mass_da is not None and not (math.isfinite(mass_da) and mass_da > 0):
        raise IdentifyError(f"mass {mass_da!r}: must be a positive number in Da")


def _check_library(model: VibraCLIP, library: CandidateLibrary) -> None:
    if library.graph_emb is None:
        raise IdentifyError("the candidate library is not embedded; use build_library(model, "
                            "...) or library.embed(model, ...)")
    if library.model_digest and library.model_digest != model_digest(model):
        raise IdentifyError("the candidate library was embedded with another checkpoint; rebuild "
                            "it with build_library(model, ...) for this model")
    if len(library) == 0:
        raise IdentifyError(f"the candidate library is empty (skipped: {dict(library.skipped)})")
    if model.config.mass and library.mass_stats is None:
        raise IdentifyError("the library has no mass statistics but the checkpoint uses mass "
                            "anchoring; rebuild it with mass_stats_for(checkpoint)")


def identify(model: VibraCLIP, library: CandidateLibrary, ir: Spectrum | None,
             raman: Spectrum | None, mass_da: float | None = None, mass_tol_da: float = 0.5,
             formula: str | None = None, top: int = 25, reranker: Reranker | None = None,
             cache_dir: str = "build/cache", workers: int = 2, progress: bool = True
             ) -> pd.DataFrame:
    """Top candidates (rank, score, smiles, formula, mass_da) for one measured spectrum query.

    Score: IR + Raman -> library_scorer in [0, 1]; one spectrum -> cosine in [-1, 1]. mass_da
    keeps candidates within ±mass_tol_da, formula those of the same Hill formula; the counts are
    in df.attrs ("n_library", "n_candidates"). With a `reranker` of depth > 0, its top `depth`
    are re-ranked (`rerank_shortlist`; columns RERANK_COLUMNS, confidence in df.attrs).
    """
    check_query(model, ir, raman, mass_da, formula, top)
    _check_library(model, library)
    hill = hill_formula(formula) if formula is not None else None
    query_mass = mass_da if mass_da is not None else (formula_mass_da(hill) if hill else None)
    mass = library.mass_stats.standardize(query_mass) if model.config.mass else None
    inputs = {kind: spectrum_to_model_input(sp) for kind, sp in (("ir", ir), ("raman", raman))
              if sp is not None}
    emb = embed_queries(model, {k: torch.from_numpy(x).reshape(1, -1) for k, x in inputs.items()},
                        mass)
    ir_q, ra_q = emb.get("ir"), emb.get("raman")
    if ir_q is not None and ra_q is not None:
        score_fn = R.library_scorer(library.graph_emb, ir_q, ra_q)
    else:
        score_fn = R.cosine_scorer(ir_q if ir_q is not None else ra_q, library.graph_emb)
    keep = torch.ones(1, len(library), dtype=torch.bool)
    filters = []
    if mass_da is not None:
        keep &= R.mass_filter_mask(torch.tensor([mass_da]), torch.from_numpy(library.mass_da),
                                   mass_tol_da)
        filters.append(f"mass {mass_da:g} ± {mass_tol_da:g} Da")
    if hill is not None:
        keep &= R.formula_filter_mask([hill], library.formula)
        filters.append(f"formula {hill}")
    n_ok = int(keep.sum())
    if n_ok == 0:
        near = library.mass_da[np.argsort(np.abs(library.mass_da - query_mass))[:3]]
        widen = "check --formula" if hill else "widen --mass-tol, check --mass"  # exact match
        raise IdentifyError(f"no candidate of {len(library)} passes the filter "
                            f"({' and '.join(filters)}); the nearest candidate masses are "
                            f"{', '.join(f'{m:.3f}' for m in near)} Da: {widen}, or use a "
                            "larger --candidates library")
    if filters:
        log.info("%s: %d of %d candidates pass", " and ".join(filters), n_ok, len(library))
    depth = 0
    if reranker is not None:
        depth = n_ok if reranker.depth <= ALL_CANDIDATES else min(reranker.depth, n_ok)
    scores, idx = R.topk_scored(score_fn, 1, min(max(top, depth), n_ok), mask=keep)
    rows = idx[0].tolist()
    df = pd.DataFrame({"rank": np.arange(1, len(rows) + 1), "score": scores[0].numpy(),
                       "smiles": [library.smiles[i] for i in rows],
                       "formula": [library.formula[i] for i in rows],
                       "mass_da": library.mass_da[rows]}, columns=list(RESULT_COLUMNS))
    df.attrs.update(n_library=len(library), n_candidates=n_ok, filters=filters)
    if depth > 0:
        spectra = {kind: (inputs[kind], coverage_mask(sp)) for kind, sp in
                   (("ir", ir), ("raman", raman)) if sp is not None}
        df = rerank_shortlist(df, spectra, reranker, depth, cache_dir, workers, progress,
                              model.config.conformer_seed)
    return df.head(top)


def rerank_shortlist(df: pd.DataFrame, spectra: dict[str, tuple[np.ndarray, np.ndarray]],
                     reranker: Reranker, depth: int, cache_dir: str, workers: int = 2,
                     progress: bool = True, conformer_seed: int = 0) -> pd.DataFrame:
    """`df` (model order) with its first `depth` rows re-ordered by the fused score.

    spectra: {"ir" | "raman": ((1750,) model-grid query, (1750,) coverage mask)}; each kind's
    match is the best cosine with the candidate's simulated sticks of that kind, and the match
    is their mean. Sticks on disk are used for every row; of the rows without, all are
    simulated for a shortlist (depth > 0), the first SIMULATE_TOP when every candidate is
    fused. Adds columns match and fused (NaN below the shortlist) and df.attrs confidence
    (probability that rank 1 is right), none_fits (True: no candidate fits; None: this
    re-ranking cannot say), n_reranked, n_simulated, not_simulated,
    simulation_failures, and the candidates' simulated sticks for drawing (attrs["spectra"]).
    """
    short = df.iloc[:depth]
    # a shortlist asked for is simulated whole; fusing every candidate simulates the model's top
    # SIMULATE_TOP of those without sticks on disk
    sims = candidate_spectra(list(short["smiles"]), cache_dir, workers, progress,
                             conformer_seed, simulate=(SIMULATE_TOP if reranker.depth
                                                       <= ALL_CANDIDATES else None))
    sticks = {"ir": sims.ir_km_mol, "raman": sims.raman_a4_amu}
    # only candidates with sticks get a row (a library of 100 k without a filter would need
    # gigabytes of zero rows); the others have no sticks, so the ragged arrays stay as they are
    have = np.flatnonzero(np.diff(sims.offsets) > 0)
    offsets = np.concatenate([[0], np.cumsum(np.diff(sims.offsets)[have])]).astype(np.int64)
    match = np.full(len(short), np.nan)
    if have.size:
        match[have] = np.mean([match_scores(q[None], m[None], candidate_matrix(
            offsets, sims.freqs_cm1, sticks[kind], reranker.settings), reranker.settings)[0]
            for kind, (q, m) in spectra.items()], axis=0)
    fused = reranker.fuse(short["score"].to_numpy()[None], match[None])[0]
    order = np.argsort(-fused, kind="stable")
    features = confidence_features(fused[None], match[order[:1]],
                                   np.array([df.attrs.get("n_candidates", len(df))]))
    none_fits = reranker.none_fits(features)
    top = short.iloc[order].assign(match=match[order], fused=fused[order])
    out = pd.concat([top, df.iloc[depth:].assign(match=np.nan, fused=np.nan)],
                    ignore_index=True)
    out["rank"] = np.arange(1, len(out) + 1)
    out = out[list(RERANK_COLUMNS)]
    out.attrs.update(df.attrs, n_reranked=depth, confidence=float(
        reranker.probability(features)[0]), simulation_failures=dict(sims.failures()),
        none_fits=None if none_fits is None else bool(none_fits[0]),
        # fitted on IR-only queries: an IR + Raman match is another feature scale
        confidence_calibrated=set(spectra) == {"ir"},
        n_simulated=int(sum(o == COMPUTED for o in sims.origin)),
        not_simulated=int(sum(o == NOT_SIMULATED for o in sims.origin)), spectra=(sims, order))
    return out
