"""Cosine retrieval: chunked top-k, identity-aware rank of the truth, scores, filters.

A score function `score_fn(start, stop)` returns the (stop - start, n_library) scores of query rows
[start, stop) against the whole library, so every scoring mode runs through the same chunked
top-k / rank code and never materialises the full (n_query, n_library) matrix. What the ranks
add up to (top-k, MRR, bootstrap intervals) is in `metrics`.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from vibraclip_core.config.query_modes import IR_RAMAN


logger = logging.getLogger(__name__)

ScoreFn = Callable[[int, int], Tensor]
MaskFn = Callable[[int, int], Tensor]
ArrayLike = Tensor | np.ndarray
# query rows per block: (256, n) scores stay cache-friendly for the counting pass on a CPU (measured
# in benchmarks/retrieval.py); pass a larger chunk on a GPU
CHUNK = 256


def normalize(x: ArrayLike) -> Tensor:
    """(m, d) rows scaled to unit L2 norm (zero rows stay zero); numpy input becomes a tensor."""
    x = torch.as_tensor(x)
    return torch.nn.functional.normalize(x if x.is_floating_point() else x.float(), dim=-1)


def _unit_rows(names: str, *xs: ArrayLike, paired: tuple[tuple[int, int], ...] = ()
               ) -> list[Tensor]:
    """Normalised 2-D embeddings of one width; `paired` lists (i, j) that must have equal rows."""
    ts = [normalize(x) for x in xs]
    if (len({t.shape[-1] for t in ts}) != 1 or any(t.ndim != 2 for t in ts)
            or any(len(ts[i]) != len(ts[j]) for i, j in paired)):
        raise ValueError(f"embeddings {names} must be 2-D with one width (and rows paired as "
                         f"{paired}); got shapes {[tuple(t.shape) for t in ts]}")
    return ts


def cosine_scorer(query: ArrayLike, library: ArrayLike) -> ScoreFn:
    """Chunked cosine similarity of query rows (q, d) with library rows (n, d)."""
    q, lib = _unit_rows("(query, library)", query, library)
    return lambda a, b: q[a:b] @ lib.T


def _shifted_geomean(*cosines: Tensor) -> Tensor:
    """Geometric mean of (1 + c) / 2 in [0, 1]: NaN-free and non-decreasing in every cosine."""
    out = cosines[0].add(1.0).mul_(0.5).clamp_(0.0, 1.0)
    for c in cosines[1:]:
        out.mul_(c.add(1.0).mul_(0.5).clamp_(0.0, 1.0))
    return out.pow_(1.0 / len(cosines))


def _signed_cbrt(p: Tensor) -> Tensor:
    """Real cube root sign(p) * |p|^(1/3), in place: NaN-free for finite p (numpy's np.cbrt)."""
    return p.abs().pow_(1.0 / 3.0).mul_(torch.sign(p))


def _paper_terms(g_lib: ArrayLike, ir_q: ArrayLike, raman_q: ArrayLike, ir_lib: ArrayLike
                 ) -> Callable[[int, int], tuple[Tensor, Tensor, Tensor]]:
    """(a, b) -> the three (b - a, n) cosines of eq. 6: (G_cand, IR_q), (G_cand, Raman_q),
    (IR_cand, Raman_q)."""
    g, ir, ra, irl = _unit_rows("(g_lib, ir_q, raman_q, ir_lib)", g_lib, ir_q, raman_q, ir_lib,
                                paired=((0, 3), (1, 2)))
    return lambda a, b: (ir[a:b] @ g.T, ra[a:b] @ g.T, ra[a:b] @ irl.T)


def paper_scorer(g_lib: ArrayLike, ir_q: ArrayLike, raman_q: ArrayLike, ir_lib: ArrayLike
                 ) -> ScoreFn:
    """Chunked paper score (q, n) in [-1, 1]: eq. 6, as published and as the released code does.

    score = cbrt(cos(G_cand, IR_q) * cos(G_cand, Raman_q) * cos(IR_cand, Raman_q)), the real
    (signed) cube root. The third term reads each CANDIDATE's IR embedding (`ir_lib`, rows paired
    with `g_lib`) against the query's Raman embedding, so it needs spectra of the candidates,
    which a structure library does not have. Known quirk, kept as published: two negative
    cosines give a positive product, which can outrank uniformly positive candidates.
    """
    terms = _paper_terms(g_lib, ir_q, raman_q, ir_lib)

    def score(a: int, b: int) -> Tensor:
        c_g_ir, c_g_ra, c_ir_ra = terms(a, b)
        return _signed_cbrt(c_g_ir.mul_(c_g_ra).mul_(c_ir_ra))
    return score


def paper_terms_geomean_scorer(g_lib: ArrayLike, ir_q: ArrayLike, raman_q: ArrayLike,
                               ir_lib: ArrayLike) -> ScoreFn:
    """Chunked (q, n) in [0, 1]: OUR variant of eq. 6, the geometric mean of (1 + c) / 2 of its
    three cosines; not the published score.

    Same terms as `paper_scorer`, but non-decreasing in every cosine, so two negative cosines
    can no longer outrank positive ones.
    """
    terms = _paper_terms(g_lib, ir_q, raman_q, ir_lib)
    return lambda a, b: _shifted_geomean(*terms(a, b))


def library_scorer(g_lib: ArrayLike, ir_q: ArrayLike, raman_q: ArrayLike) -> ScoreFn:
    """Chunked default (q, n) = sqrt(s(G_cand, IR_q) * s(G_cand, Raman_q)), s = (1 + cosine) / 2.

    Needs only the candidates' structure embeddings; the query's own IR-Raman agreement is a
    per-query constant that cannot change the ranking, so it is left out.
    """
    g, ir, ra = _unit_rows("(g_lib, ir_q, raman_q)", g_lib, ir_q, raman_q, paired=((1, 2),))
    return lambda a, b: _shifted_geomean(ir[a:b] @ g.T, ra[a:b] @ g.T)


def mode_scorers(g_lib: ArrayLike, queries: dict[str, ArrayLike]) -> dict[str, ScoreFn]:
    """Scorers "ir", "raman" (cosine) and "ir+raman library" (`library_scorer`) of query
    embeddings {"ir": (q, d), "raman": (q, d)} (either may be absent) against a structure
    library (n, d): the one scoring path of the model and the baselines."""
    unknown = set(queries) - {"ir", "raman"}
    if unknown or not queries:
        raise ValueError(f"queries has keys {sorted(queries)}; give 'ir' and/or 'raman' only")
    out = {view: cosine_scorer(q, g_lib) for view, q in queries.items()}
    if len(queries) == 2:
        out[IR_RAMAN] = library_scorer(g_lib, queries["ir"], queries["raman"])
    return out


def score_paper(g_lib: ArrayLike, ir_q: ArrayLike, raman_q: ArrayLike, ir_lib: ArrayLike
                ) -> Tensor:
    """(q, n) paper score (eq. 6) in [-1, 1], full matrix; see `paper_scorer`."""
    return paper_scorer(g_lib, ir_q, raman_q, ir_lib)(0, len(ir_q))


def score_paper_terms_geomean(g_lib: ArrayLike, ir_q: ArrayLike, raman_q: ArrayLike,
                              ir_lib: ArrayLike) -> Tensor:
    """(q, n) in [0, 1], full matrix of OUR NaN-free variant; see `paper_terms_geomean_scorer`."""
    return paper_terms_geomean_scorer(g_lib, ir_q, raman_q, ir_lib)(0, len(ir_q))


def score_library(g_lib: ArrayLike, ir_q: ArrayLike, raman_q: ArrayLike) -> Tensor:
    """(q, n) default IR+Raman score in [0, 1], full matrix (see `library_scorer`)."""
    return library_scorer(g_lib, ir_q, raman_q)(0, len(ir_q))


def _masked(scores: Tensor, mask: Tensor | MaskFn | None, a: int, b: int) -> Tensor:
    if mask is None:
        return scores
    m = torch.as_tensor(mask(a, b) if callable(mask) else mask[a:b], device=scores.device)
    if m.shape != scores.shape or m.dtype != torch.bool:
        raise ValueError(f"mask for query rows {a}:{b} is {m.dtype} {tuple(m.shape)}, "
                         f"expected torch.bool {tuple(scores.shape)}")
    return scores.masked_fill(~m, float("-inf"))


def _lowest_index_first(s: Tensor, v: Tensor, i: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Order ties by ascending library index; v, i hold the top k + 1 (or all n) of scores s."""
    if v.shape[1] > k:
        # the (k+1)-th score equals the k-th: a tie straddles the cut, so stable-sort that row
        tie = ((v[:, k] == v[:, k - 1]) & (v[:, k - 1] > float("-inf"))).nonzero().flatten()
        v, i = v[:, :k], i[:, :k]
        if tie.numel():
            sv, si = torch.sort(s[tie], dim=1, descending=True, stable=True)
            v[tie], i[tie] = sv[:, :k], si[:, :k]
    i_sorted, perm = i.sort(dim=1)
    v, perm2 = v.gather(1, perm).sort(dim=1, descending=True, stable=True)
    return v, i_sorted.gather(1, perm2)


def topk_scored(score_fn: ScoreFn, n_queries: int, k: int, chunk: int = CHUNK,
                mask: Tensor | MaskFn | None = None) -> tuple[Tensor, Tensor]:
    """(scores (q, k), library indices (q, k) long) of the k best candidates per query, best first.

    `mask` is a (q, n) bool tensor or a callable (start, stop) -> (stop - start, n) bool; False
    candidates get -inf. Ties: equal scores are ordered by ascending library index, also at
    the k-th place. Slots without an admissible candidate get score -inf and index -1.
    Scores must be NaN-free.
    """
    vals, idxs = [], []
    for a in range(0, n_queries, chunk):
        b = min(a + chunk, n_queries)
        s = _masked(score_fn(a, b), mask, a, b)
        if not 0 < k <= s.shape[1]:
            raise ValueError(f"k={k} must lie in 1..{s.shape[1]} (the library size)")
        v, i = _lowest_index_first(s, *torch.topk(s, min(k + 1, s.shape[1]), dim=1), k)
        vals.append(v)
        idxs.append(i.masked_fill_(v == float("-inf"), -1))
    if not vals:
        raise ValueError("topk_scored: no queries (n_queries=0)")
    return torch.cat(vals), torch.cat(idxs)


def topk_chunked(query: ArrayLike, library: ArrayLike, k: int, chunk: int = CHUNK,
                 mask: Tensor | MaskFn | None = None) -> tuple[Tensor, Tensor]:
    """(cosines (q, k), indices (q, k)) of query (q, d) vs library (n, d); see `topk_scored`."""
    return topk_scored(cosine_scorer(query, library), len(query), k, chunk, mask)


def _truth_pairs(query_ids: Sequence[str], library_ids: Sequence[str]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query row, library row) of every same-identity pair, sorted by query; and (q,) has-truth."""
    n = len(library_ids)
    _, codes = np.unique(np.asarray([*library_ids, *query_ids], dtype=str), return_inverse=True)
    lib_code, q_code = codes[:n], codes[n:]
    order = np.argsort(lib_code, kind="stable")
    counts = np.bincount(lib_code, minlength=codes.max(initial=-1) + 1)
    starts, per_query = np.cumsum(counts) - counts, counts[q_code]
    pair_q = np.repeat(np.arange(len(q_code)), per_query)
    offset = np.arange(len(pair_q)) - np.repeat(np.cumsum(per_query) - per_query, per_query)
    return pair_q, order[np.repeat(starts[q_code], per_query) + offset], per_query > 0


def rank_of_truth_scored(score_fn: ScoreFn, query_ids: Sequence[str],
                         library_ids: Sequence[str], chunk: int = CHUNK,
                         mask: Tensor | MaskFn | None = None, missing: str = "raise") -> Tensor:
    """(q,) long 0-based rank of the truth = number of library ENTRIES scoring strictly higher.

    The truth is the best-scoring library entry whose identity equals the query's; duplicates of
    the true molecule are kept in the library but the truth counts once, and other-identity
    entries are counted as entries (a duplicated wrong molecule above the truth counts twice).
    Equivalently: the position in the ranked list after collapsing the true molecule's duplicates
    only. Ties with the truth are not counted (optimistic). If a filter masks out every true
    entry, the rank is n_library (a miss at every k). Queries whose identity is absent from the
    library raise ValueError, or with missing="ignore" get rank -1 (excluded by the metrics).
    """
    if missing not in ("raise", "ignore"):
        raise ValueError(f"missing={missing!r}: use 'raise' or 'ignore'")
    n_q, n_lib = len(query_ids), len(library_ids)
    pair_q, pair_l, has_truth = _truth_pairs(query_ids, library_ids)
    if not has_truth.all():
        absent = np.flatnonzero(~has_truth)
        names = ", ".join(f"{j} ({query_ids[j]!r})" for j in absent[:5])
        if missing == "raise":
            raise ValueError(f"{len(absent)} queries have no library entry of their identity, e.g. "
                             f"query {names}; add them to the library or pass missing='ignore'")
        logger.warning("%d of %d queries are absent from the library (rank -1), e.g. %s",
                       len(absent), n_q, names)
    ranks = []
    for a in range(0, n_q, chunk):
        b = min(a + chunk, n_q)
        s = _masked(score_fn(a, b), mask, a, b)
        if s.shape != (b - a, n_lib):
            raise ValueError(f"score_fn({a}, {b}) gave {tuple(s.shape)}, expected {(b - a, n_lib)}")
        lo, hi = np.searchsorted(pair_q, [a, b])
        rows = torch.as_tensor(pair_q[lo:hi] - a, device=s.device)
        cols = torch.as_tensor(pair_l[lo:hi], device=s.device)
        best = torch.full((b - a,), float("-inf"), dtype=s.dtype, device=s.device)
        best.scatter_reduce_(0, rows, s[rows, cols], reduce="amax")
        # true entries score <= best, so all entries above best are other identities;
        # the int32 sum is ~1.5x faster than the default bool -> int64 one
        r = (s > best[:, None]).sum(1, dtype=torch.int32)
        ranks.append(torch.where(best == float("-inf"), n_lib, r).long())
    out = torch.cat(ranks) if ranks else torch.zeros(0, dtype=torch.long)
    return out.masked_fill_(torch.as_tensor(~has_truth, device=out.device), -1)


def rank_of_truth(query_emb: ArrayLike, library_emb: ArrayLike, query_ids: Sequence[str],
                  library_ids: Sequence[str], chunk: int = CHUNK,
                  mask: Tensor | MaskFn | None = None, missing: str = "raise") -> Tensor:
    """(q,) long cosine rank of the truth; definition in `rank_of_truth_scored`."""
    if len(query_ids) != len(query_emb) or len(library_ids) != len(library_emb):
        raise ValueError(f"ids/embeddings differ in length: queries {len(query_ids)}/"
                         f"{len(query_emb)}, library {len(library_ids)}/{len(library_emb)}")
    return rank_of_truth_scored(cosine_scorer(query_emb, library_emb), query_ids, library_ids,
                                chunk, mask, missing)


def mass_filter_mask(query_mass_da: ArrayLike, library_mass_da: ArrayLike,
                     tol_da: float) -> Tensor:
    """(q, n) bool: |query mass - candidate mass| <= tol_da; slice query_mass_da for a chunk."""
    qm, lm = torch.as_tensor(query_mass_da), torch.as_tensor(library_mass_da)
    return (qm.reshape(-1, 1) - lm.reshape(1, -1)).abs() <= tol_da


def mass_filter(query_mass_da: ArrayLike, library_mass_da: ArrayLike, tol_da: float) -> MaskFn:
    """`mass_filter_mask` as a `mask=` callable: (start, stop) -> (stop - start, n) bool."""
    return lambda a, b: mass_filter_mask(query_mass_da[a:b], library_mass_da, tol_da)


def formula_filter_mask(query_formulas: Sequence[str], library_formulas: Sequence[str]) -> Tensor:
    """(q, n) bool: the candidate's molecular formula equals the query's (exact string match)."""
    n = len(library_formulas)
    _, codes = np.unique(np.asarray([*library_formulas, *query_formulas], dtype=str),
                         return_inverse=True)
    codes = torch.as_tensor(codes)
    return codes[n:, None] == codes[None, :n]
