"""Fusion, re-ranked ranks, the confidence's logistic fit and the re-ranking file."""

from __future__ import annotations

import numpy as np
import pytest

from vibraclip_core.retrieval import rerank as RR
from vibraclip_core.retrieval.spectral_match import MatchSettings


def test_fuse_is_a_sum_of_row_z_scores_and_a_missing_match_is_neutral():
    model = np.array([[3.0, 2.0, 1.0]])
    match = np.array([[0.0, np.nan, 1.0]])
    fused = RR.fuse(model, match, 2.0)
    zm = (model - model.mean()) / model.std()
    zs = np.array([-1.0, 0.0, 1.0])  # the finite entries [0, 1] standardised; NaN -> 0
    np.testing.assert_allclose(fused[0], zm[0] + 2.0 * zs)
    assert np.argmax(RR.fuse(model, match, np.inf)) == 2  # the match alone
    assert np.argmax(RR.fuse(model, match, 0.0)) == 0  # the model alone


def test_reranked_ranks_reorder_only_the_shortlist():
    model = np.array([[0.9, 0.8, 0.7, 0.6], [0.9, 0.8, 0.7, 0.6]])
    match = np.array([[0.1, 0.2, 0.3, 0.99], [0.1, 0.2, 0.99, 0.3]])
    ranks, margins = RR.reranked_ranks(model, match, np.array([3, 2]), np.inf, depth=3)
    assert ranks.tolist() == [4, 1]  # truth 3 lies below the shortlist: the model's rank
    assert margins[1] > 0
    admissible = np.array([[True, True, False, True], [True] * 4])
    ranks, _ = RR.reranked_ranks(model, match, np.array([2, 0]), 0.0, 2, admissible)
    assert ranks.tolist() == [4, 1]  # filtered out: below every admissible candidate


def test_fit_logistic_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, 20000)
    y = rng.uniform(size=x.size) < RR.logistic(x, (-1.0, 1.5))
    a, b = RR.fit_logistic(x, y)
    assert a == pytest.approx(-1.0, abs=0.08) and b == pytest.approx(1.5, abs=0.08)
    rel = RR.reliability(RR.logistic(x, (a, b)), y, bins=5)
    assert (rel["predicted"] - rel["observed"]).abs().max() < 0.03
    with pytest.raises(ValueError, match="both outcomes"):
        RR.fit_logistic(x[:5], np.ones(5))


def test_reranker_file_roundtrip_and_damage(tmp_path):
    r = RR.Reranker(MatchSettings(fwhm_cm1=20.0, alignment="regions"), 0.5, 40, (-2.0, 3.0),
                    {"chosen on": "test"})
    path = r.save(tmp_path / RR.RERANK_FILE)
    back = RR.Reranker.load(path)
    assert back.settings == r.settings and back.weight == 0.5 and back.depth == 40
    assert back.confidence_coef == (-2.0, 3.0)
    p = back.probability(np.array([[2.0, 1.0], [1.0, 1.0]]))
    np.testing.assert_allclose(p, RR.logistic(np.array([1.0, 0.0]), (-2.0, 3.0)))
    path.write_text('{"settings": {"fwhm_cm1": -1}}')
    with pytest.raises(ValueError, match=str(path.name)):
        RR.Reranker.load(path)
