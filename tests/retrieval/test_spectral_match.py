"""The spectrum-to-spectrum score: its vectorised form against the loop twin, and the
invariances it promises (baseline offsets, band positions within the alignment grid)."""

from __future__ import annotations

import numpy as np
import pytest

from vibraclip_core.data.spectra import Spectrum, model_grid
from vibraclip_core.retrieval import spectral_match as SM

GRID = model_grid()


def sticks(rng: np.random.Generator, n_mol: int = 4, per: int = 5):
    lengths = rng.integers(0, per + 1, n_mol)
    lengths[-1] = per  # at least one candidate with sticks
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    freqs = rng.uniform(600, 3900, offsets[-1]).astype(np.float32)
    ints = rng.uniform(1, 100, offsets[-1]).astype(np.float32)
    return offsets, freqs, ints


def spectrum_of(freqs, ints, scale=1.0, fwhm=25.0) -> np.ndarray:
    hw = fwhm / 2
    return sum(i * hw**2 / ((GRID - scale * f) ** 2 + hw**2) for f, i in zip(freqs, ints))


@pytest.mark.parametrize("settings", [
    SM.MatchSettings(scale_step=0.015),
    SM.MatchSettings(alignment="regions", scale_step=0.035, compression="log"),
    SM.MatchSettings(alignment="none", compression="none", derivative=True, fwhm_cm1=12.0),
    SM.MatchSettings(baseline="arpls", scale_step=0.015, fwhm_cm1=45.0),
])
def test_match_scores_equal_the_loop_twin(settings):
    rng = np.random.default_rng(3)
    offsets, freqs, ints = sticks(rng)
    queries = np.stack([spectrum_of(freqs[:3], ints[:3], 0.985) + 0.2,
                        rng.uniform(0, 1, GRID.size)])
    masks = np.stack([(GRID > 650) & (GRID < 3700), np.ones(GRID.size, bool)])
    cands = SM.candidate_matrix(offsets, freqs, ints, settings)
    fast = SM.match_scores(queries, masks, cands, settings, chunk=1)
    for q in range(2):
        for m in range(len(offsets) - 1):
            one = slice(offsets[m], offsets[m + 1])
            naive = SM.match_score_naive(queries[q], masks[q], freqs[one], ints[one], settings)
            if np.isnan(naive):
                assert np.isnan(fast[q, m])  # a candidate without sticks has no score
            else:
                assert fast[q, m] == pytest.approx(naive, abs=2e-5)


def test_offsets_and_scale_inside_the_grid_leave_the_score_unchanged():
    rng = np.random.default_rng(0)
    offsets, freqs, ints = sticks(rng, n_mol=3, per=6)
    settings = SM.MatchSettings(scale_step=0.005)
    cands = SM.candidate_matrix(offsets, freqs, ints, settings)
    own = slice(offsets[-2], offsets[-1])
    base = spectrum_of(freqs[own], ints[own], fwhm=settings.fwhm_cm1)
    mask = np.ones(GRID.size, bool)
    ref = SM.match_scores(base[None], mask[None], cands, settings)[0]
    for offset in (0.02, 1.0, 1000.0):
        moved = SM.match_scores((base + offset * base.max())[None], mask[None], cands, settings)
        np.testing.assert_allclose(moved[0], ref, atol=1e-4)
    shifted = spectrum_of(freqs[own], ints[own], scale=1.03, fwhm=settings.fwhm_cm1)
    aligned = SM.match_scores(shifted[None], mask[None], cands, settings)[0]
    unaligned = SM.match_scores(shifted[None], mask[None], cands,
                                SM.MatchSettings(alignment="none"))[0]
    assert aligned[-1] > 0.99 and unaligned[-1] < aligned[-1] - 0.05
    f = SM.best_factors(shifted[None], mask[None], cands[-1:], settings)[0]
    assert f[0] == pytest.approx(1.03, abs=0.003)  # measured = factor x simulated


def test_coverage_mask_and_bad_settings():
    s = Spectrum(np.array([800.0, 1200.0, 3000.0]), np.ones(3), "absorbance", "x.csv")
    m = SM.coverage_mask(s)
    assert m[(GRID >= 800) & (GRID <= 3000)].all() and not m[(GRID < 800) | (GRID > 3000)].any()
    with pytest.raises(ValueError, match="compression"):
        SM.MatchSettings(compression="cube")
    with pytest.raises(ValueError, match="no point"):
        SM.prepare_queries(np.ones((1, GRID.size)), np.zeros((1, GRID.size), bool),
                           SM.MatchSettings())


def test_arpls_baseline_removes_a_slope_that_the_quantile_keeps():
    """A sloped baseline under the query swamps a compressed match unless it is fitted away."""
    rng = np.random.default_rng(5)
    offsets, freqs, ints = sticks(rng, n_mol=4, per=6)
    own = slice(offsets[1], offsets[2])
    clean = spectrum_of(freqs[own], ints[own], fwhm=30.0)
    sloped = clean + clean.max() * (0.3 * (GRID - GRID[0]) / (GRID[-1] - GRID[0]))
    mask = np.ones(GRID.size, bool)
    scores = {}
    for how in ("quantile", "arpls"):
        st = SM.MatchSettings(baseline=how, compression="log")
        cands = SM.candidate_matrix(offsets, freqs, ints, st)
        scores[how] = SM.match_scores(sloped[None], mask[None], cands, st)[0]
    assert scores["arpls"][1] > 0.9 > scores["quantile"][1]
    assert np.nanargmax(scores["arpls"]) == 1
    with pytest.raises(ValueError, match="baseline"):
        SM.MatchSettings(baseline="rolling")
