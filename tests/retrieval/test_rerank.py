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
    # an older two-coefficient file reads the fused margin (the first feature) alone
    p = back.probability(np.array([[1.0, 0.9, 3.0], [0.0, 0.1, 3.0]]))
    np.testing.assert_allclose(p, RR.logistic(np.array([1.0, 0.0]), (-2.0, 3.0)))
    assert back.none_fits(np.zeros((1, 3))) is None  # it cannot say that nothing fits
    path.write_text('{"settings": {"fwhm_cm1": -1}}')
    with pytest.raises(ValueError, match=str(path.name)):
        RR.Reranker.load(path)


def test_depth_all_fuses_every_admissible_candidate():
    model = np.array([[0.9, 0.8, 0.7, 0.6]])
    match = np.array([[0.1, 0.2, 0.3, 0.99]])
    short = RR.fused_ranks(model, match, np.array([3]), np.inf, depth=2)
    every = RR.fused_ranks(model, match, np.array([3]), np.inf, depth=RR.ALL_CANDIDATES)
    assert short.ranks.tolist() == [4] and every.ranks.tolist() == [1]
    assert every.top_match[0] == pytest.approx(0.99)
    assert every.n_candidates.tolist() == [4]
    absent = RR.fused_ranks(model, match, np.array([-1]), 1.0, 0, np.array([[1, 1, 0, 1]], bool))
    assert absent.ranks.tolist() == [4] and absent.n_candidates.tolist() == [3]


def test_confidence_features_are_margin_top_match_and_log_count():
    fused = np.array([[2.0, 0.5, -1.0], [0.1, 0.3, 0.2]])
    f = RR.confidence_features(fused, np.array([0.8, np.nan]), np.array([3, 1]))
    np.testing.assert_allclose(f, [[1.5, 0.8, np.log(3)], [0.1, 0.0, 0.0]])
    fr = RR.fused_ranks(np.array([[0.9, 0.1]]), np.array([[0.2, 0.7]]), np.array([0]), 1.0, 0)
    fused_row = RR.fuse(np.array([[0.9, 0.1]]), np.array([[0.2, 0.7]]), 1.0)
    np.testing.assert_allclose(fr.features(),
                               RR.confidence_features(fused_row, fr.top_match, fr.n_candidates))


def test_fit_logistic_recovers_several_coefficients():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1.5, (30000, 3))
    y = rng.uniform(size=len(x)) < RR.logistic(x, (0.5, 1.0, -2.0, 0.7))
    np.testing.assert_allclose(RR.fit_logistic(x, y), (0.5, 1.0, -2.0, 0.7), atol=0.08)


def test_expected_calibration_error_against_hand_computed_bins():
    prob = np.array([0.05, 0.05, 0.95, 0.95, 0.55])
    correct = np.array([0, 1, 1, 1, 0])
    # bins: 0.0-0.1 {0.05, 0.05} observed 0.5; 0.9-1.0 {0.95, 0.95} observed 1; 0.5-0.6 {0.55} 0
    expected = (2 * 0.45 + 2 * 0.05 + 1 * 0.55) / 5
    assert RR.expected_calibration_error(prob, correct) == pytest.approx(expected)
    assert RR.expected_calibration_error(np.ones(4), np.ones(4)) == 0.0


def test_reranker_says_none_fits_below_its_threshold(tmp_path):
    r = RR.Reranker(MatchSettings(), 4.0, RR.ALL_CANDIDATES, (-1.0, 1.0, 2.0, -0.1), {},
                    present_coef=(-5.0, 0.0, 10.0, 0.0), present_threshold=0.5)
    back = RR.Reranker.load(r.save(tmp_path / RR.RERANK_FILE))
    assert back.present_coef == r.present_coef and back.present_threshold == 0.5
    feats = np.array([[0.2, 0.2, np.log(50)], [0.2, 0.9, np.log(50)]])  # poor / good best match
    assert back.none_fits(feats).tolist() == [True, False]
    p = back.probability(feats)
    assert p[1] > p[0]
    np.testing.assert_allclose(p, RR.logistic(feats, r.confidence_coef))
