"""The re-ranking's choice on validation queries: the weight x shortlist grid, the open-set cases
and the confidence / "no candidate fits" fit, on seeded synthetic score matrices."""

import numpy as np
import pytest

from vibraclip_core.experiments import rerank_choice as RC
from vibraclip_core.retrieval import rerank as RR
from vibraclip_core.retrieval.spectral_match import MatchSettings


def _scores(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Model scores that know little, matches that mostly know the truth (the diagonal)."""
    rng = np.random.default_rng(seed)
    model = rng.normal(0, 1, (n, n)) + 0.3 * np.eye(n)
    match = rng.uniform(0.2, 0.6, (n, n))
    good = rng.uniform(size=n) < 0.7
    match[np.arange(n), np.arange(n)] = np.where(good, rng.uniform(0.7, 0.95, n), 0.4)
    return model, match


def test_library_draws_share_sizes_and_differ_only_by_the_truth():
    closed, opened = RC.library_draws(200, seed=3)
    assert closed.diagonal().all() and not opened.diagonal().any()
    sizes = closed.sum(1)
    assert np.array_equal(sizes, opened.sum(1))  # the count cannot tell open from closed
    assert sizes.min() >= 2 and sizes.max() <= 199 and len(np.unique(sizes)) > 30
    assert np.array_equal(closed, RC.library_draws(200, seed=3)[0])


def test_weight_grid_compares_shortlist_and_all_candidates():
    model, match = _scores()
    grid = RC.weight_grid({"q": model}, {"q": match}, depths=(5, RR.ALL_CANDIDATES),
                          weights=(0.0, np.inf))
    assert grid["candidates fused"].tolist() == ["model's top 5"] * 2 + ["all"] * 2
    by = grid.set_index(["candidates fused", "weight"])["q top1"]
    # the model alone ranks the same whatever the shortlist; the match needs every candidate
    assert by[("all", 0.0)] == by[("model's top 5", 0.0)]
    assert by[("all", np.inf)] > by[("model's top 5", np.inf)]
    ranks = RR.fused_ranks(match, match, np.arange(len(match)), 0.0, 0).ranks
    assert by[("all", np.inf)] == pytest.approx(100 * (ranks == 1).mean(), abs=0.01)


def test_open_set_cases_and_the_no_fit_threshold():
    model, match = _scores()
    cases = RC.open_set_cases({"a": model, "b": model[::-1, ::-1]},
                              {"a": match, "b": match[::-1, ::-1]}, 4.0, RR.ALL_CANDIDATES)
    n = len(model)
    assert len(cases.features) == 4 * n
    assert cases.present.sum() == 2 * n
    assert not cases.correct[~cases.present].any()  # nothing is right when the truth is absent
    conf, pres, threshold = RC.fit_confidence(cases, max_false_none=0.1)
    r = RR.Reranker(MatchSettings(), 4.0, RR.ALL_CANDIDATES, conf, {}, pres, threshold)
    none = r.none_fits(cases.features)
    assert none[cases.present].mean() <= 0.1 + 1 / n
    # the best match is absolute evidence: absent molecules are flagged far more often
    assert none[~cases.present].mean() > 3 * none[cases.present].mean()
    table = RC.open_set_table(cases, r)
    assert list(table.index) == ["a", "b"]
    assert (table["'no candidate fits', molecule present %"] <= 15).all()  # 10 % pooled
    assert (table["confidence ECE"] < 0.1).all()
