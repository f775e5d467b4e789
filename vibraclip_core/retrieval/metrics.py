"""Retrieval metrics of ranks of the truth: top-k curves and accuracies, MRR, bootstrap intervals.

Ranks come from `scores.rank_of_truth` / `rank_of_truth_scored` (0-based; -1 marks a query
whose molecule is not in the library, excluded from every metric).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from torch import Tensor

ArrayLike = Tensor | np.ndarray


def _to_numpy(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def _valid(ranks: ArrayLike) -> np.ndarray:
    r = _to_numpy(ranks).ravel()
    r = r[r >= 0]
    if r.size == 0:
        raise ValueError("no ranked queries (all ranks are -1 or the input is empty)")
    return r


def topk_curve(ranks: ArrayLike, kmax: int = 25) -> np.ndarray:
    """(kmax,) float64: fraction of queries with rank < k for k = 1..kmax (rank -1 excluded)."""
    r = _valid(ranks)
    return np.cumsum(np.bincount(np.minimum(r, kmax), minlength=kmax + 1)[:kmax]) / r.size


def _ranked_mean(ranks: ArrayLike, fn: Callable[[np.ndarray], np.ndarray]) -> float | np.ndarray:
    r = _to_numpy(ranks)
    ok = r >= 0
    out = np.where(ok, fn(np.maximum(r, 0)), 0.0).sum(-1) / ok.sum(-1)
    return float(out) if np.ndim(out) == 0 else out


def topk_accuracy(ranks: ArrayLike, k: int) -> float | np.ndarray:
    """Fraction with rank < k over the last axis ((..., m) -> (...)); rank -1 entries excluded."""
    return _ranked_mean(ranks, lambda r: r < k)


def mean_reciprocal_rank(ranks: ArrayLike) -> float | np.ndarray:
    """Mean of 1 / (rank + 1) over the last axis ((..., m) -> (...)); rank -1 entries excluded."""
    return _ranked_mean(ranks, lambda r: 1.0 / (r + 1.0))


def bootstrap_ci(ranks: ArrayLike, stat_fn: Callable[[np.ndarray], np.ndarray],
                 n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap (low, high) of stat_fn, which maps (n_boot, m) -> (n_boot,).

    All resamples are one (n_boot, m) index matrix; queries with rank -1 are dropped first.
    """
    r = _valid(ranks)
    idx = np.random.default_rng(seed).integers(0, r.size, size=(n_boot, r.size), dtype=np.int32)
    stats = np.asarray(stat_fn(r[idx]), dtype=np.float64)
    if stats.shape != (n_boot,):
        raise ValueError(f"stat_fn returned shape {stats.shape}; it must reduce the last axis of "
                         f"(n_boot, m) to ({n_boot},), e.g. lambda r: topk_accuracy(r, 1)")
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _cluster_resamples(groups: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_groups) group draws, each a resample of the distinct groups with replacement."""
    n = len(np.unique(groups))
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def cluster_topk_ci(ranks: ArrayLike, groups: ArrayLike, k: int, n_boot: int = 2000,
                    seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap (low, high) of the top-k fraction resampling groups (molecules), not
    queries: two spectra of one molecule are not two independent tests. Ranks 0-based."""
    r, g = _to_numpy(ranks).ravel(), np.asarray(groups)
    _, code = np.unique(g, return_inverse=True)
    hits = np.bincount(code, weights=(r < k) & (r >= 0))
    counts = np.bincount(code, weights=r >= 0)
    draw = _cluster_resamples(g, n_boot, seed)
    stats = hits[draw].sum(1) / np.maximum(counts[draw].sum(1), 1)
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def paired_topk_difference(ranks_a: ArrayLike, ranks_b: ArrayLike, groups: ArrayLike, k: int,
                           n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
                           ) -> tuple[float, float, float]:
    """(difference, low, high) of top-k fractions a minus b on the same queries, the interval by
    a bootstrap over groups (molecules) that keeps each query's pair together."""
    a, b, g = _to_numpy(ranks_a).ravel(), _to_numpy(ranks_b).ravel(), np.asarray(groups)
    if not a.shape == b.shape == g.shape:
        raise ValueError(f"paired ranks {a.shape}, {b.shape} and groups {g.shape} differ")
    _, code = np.unique(g, return_inverse=True)
    diff = np.bincount(code, weights=(a < k).astype(float) - (b < k))
    counts = np.bincount(code)
    draw = _cluster_resamples(g, n_boot, seed)
    stats = diff[draw].sum(1) / counts[draw].sum(1)
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(diff.sum() / counts.sum()), float(low), float(high)
