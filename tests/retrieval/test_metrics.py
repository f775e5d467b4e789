"""Tests for vibraclip_core.retrieval.metrics: known answers and a naive twin of the bootstrap."""

import math

import numpy as np
import pytest
import torch

from vibraclip_core.retrieval import metrics as M


def test_topk_curve_and_mrr_known_answers():
    ranks = torch.tensor([0, 1, 0, 4, 30, -1])
    assert M.topk_curve(ranks, kmax=5).tolist() == pytest.approx([0.4, 0.6, 0.6, 0.6, 0.8])
    assert M.mean_reciprocal_rank(ranks) == pytest.approx((1 + 0.5 + 1 + 0.2 + 1 / 31) / 5)
    assert M.topk_accuracy(ranks, 2) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="no ranked queries"):
        M.topk_curve(torch.tensor([-1, -1]))


def test_bootstrap_ci_contains_estimate_and_is_seeded():
    ranks = np.random.default_rng(0).geometric(0.4, size=300) - 1
    stat = lambda r: M.topk_accuracy(r, 1)  # noqa: E731
    low, high = M.bootstrap_ci(ranks, stat, n_boot=500, seed=7)
    assert low < M.topk_accuracy(ranks, 1) < high and high - low < 0.2
    assert (low, high) == M.bootstrap_ci(ranks, stat, n_boot=500, seed=7)
    assert (low, high) != M.bootstrap_ci(ranks, stat, n_boot=500, seed=8)
    low, high = M.bootstrap_ci(ranks, M.mean_reciprocal_rank, n_boot=200)
    assert low < M.mean_reciprocal_rank(ranks) < high
    with pytest.raises(ValueError, match="reduce the last axis"):
        M.bootstrap_ci(ranks, lambda r: r, n_boot=10)


def _naive_quantile(sorted_values: list[float], p: float) -> float:
    """Linear interpolation between the order statistics at position p * (n - 1)."""
    pos = p * (len(sorted_values) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (pos - lo) * (sorted_values[hi] - sorted_values[lo])


def naive_bootstrap_ci(ranks: list[int], stat, n_boot: int, seed: int, alpha: float
                       ) -> tuple[float, float]:
    """Loop twin of bootstrap_ci: drop rank -1, draw each resample index one at a time from the
    same seeded generator, compute the statistic per resample, take the two percentiles."""
    kept = [r for r in ranks if r >= 0]
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        sample = [kept[int(rng.integers(0, len(kept), dtype=np.int32))] for _ in kept]
        stats.append(stat(sample))
    stats.sort()
    return _naive_quantile(stats, alpha / 2), _naive_quantile(stats, 1 - alpha / 2)


def test_bootstrap_ci_equals_naive_loop_with_the_same_generator():
    rng = np.random.default_rng(3)
    ranks = (rng.geometric(0.3, size=41) - 1).tolist() + [-1, -1]  # two unranked queries
    rng.shuffle(ranks)
    top3 = lambda s: sum(r < 3 for r in s) / len(s)  # noqa: E731
    mrr = lambda s: sum(1 / (r + 1) for r in s) / len(s)  # noqa: E731
    cases = ((top3, lambda m: M.topk_accuracy(m, 3), 0.05), (mrr, M.mean_reciprocal_rank, 0.05),
             (top3, lambda m: (m < 3).mean(-1), 0.3))
    for stat, fast, alpha in cases:
        got = M.bootstrap_ci(np.array(ranks), fast, n_boot=300, seed=5, alpha=alpha)
        assert got == pytest.approx(naive_bootstrap_ci(ranks, stat, 300, 5, alpha), abs=1e-12)
    # known answers: a constant statistic gives a point; low <= high with the tails ordered
    assert M.bootstrap_ci([4, 4, 4, -1], lambda m: (m < 5).mean(-1), n_boot=50) == (1.0, 1.0)
    low, high = M.bootstrap_ci(ranks, M.mean_reciprocal_rank, n_boot=400, alpha=0.5)
    wide = M.bootstrap_ci(ranks, M.mean_reciprocal_rank, n_boot=400, alpha=0.02)
    assert wide[0] < low < M.mean_reciprocal_rank(np.array(ranks)) < high < wide[1]


def test_cluster_bootstrap_resamples_molecules_not_spectra():
    from vibraclip_core.retrieval.metrics import cluster_topk_ci

    # one molecule with 10 spectra all right, nine with one spectrum each all wrong: resampling
    # molecules, the top-1 swings with whether the big molecule is drawn
    ranks = np.array([0] * 10 + [5] * 9)
    groups = np.array(["a"] * 10 + [f"m{i}" for i in range(9)])
    lo, hi = cluster_topk_ci(ranks, groups, 1, n_boot=4000, seed=0)
    assert lo == 0.0  # a resample without "a" gets nothing right
    assert hi > 0.7
    same = cluster_topk_ci(ranks, np.arange(19), 1, n_boot=4000, seed=0)  # one spectrum each
    assert same[0] > 0.2 and same[1] < 0.8


def test_paired_difference_keeps_pairs_together():
    from vibraclip_core.retrieval.metrics import paired_topk_difference

    a = np.array([0, 0, 0, 3, 0, 0, 2, 0])
    b = np.array([1, 0, 2, 3, 4, 0, 2, 5])  # a is right wherever b is, and on 4 more queries
    groups = np.arange(8)
    d, lo, hi = paired_topk_difference(a, b, groups, 1, n_boot=2000)
    assert d == pytest.approx((6 - 2) / 8)
    assert lo >= 0.0 and hi <= 1.0 and lo < d < hi
    assert paired_topk_difference(a, a, groups, 1) == (0.0, 0.0, 0.0)
