"""Tests for vibraclip_core.data.spectra: broadening vs its naive twin, grids, model input, Raman scale."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vibraclip_core.data import spectra as S


def lorentz(x: np.ndarray, centre: float, fwhm: float) -> np.ndarray:
    hw = fwhm / 2
    return hw**2 / ((x - centre) ** 2 + hw**2)


def ragged_sticks(seed: int = 0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 9, size=12)
    counts[4] = 0  # a molecule without sticks
    offsets = np.concatenate([[0], np.cumsum(counts)])
    freqs = rng.uniform(450, 4100, offsets[-1])
    intensities = rng.exponential(50.0, offsets[-1])
    freqs[offsets[2]] = -120.0  # an imaginary mode
    freqs[offsets[7] : offsets[8]] = -35.0  # a molecule whose only modes are imaginary
    return freqs, intensities, offsets


@pytest.mark.parametrize("chunk_sticks", [5, 1024])
def test_vectorized_broadening_matches_naive(chunk_sticks):
    freqs, intensities, offsets = ragged_sticks()
    fast = S.broaden_sticks(freqs, intensities, offsets, chunk_sticks=chunk_sticks)
    slow = S.broaden_sticks_naive(freqs, intensities, offsets)
    assert fast.shape == slow.shape == (12, S.FINE_POINTS)
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-5 * slow.max())
    assert not fast[4].any() and not fast[7].any()
    # the imaginary mode must be ignored, not broadened at |f|
    own = slice(offsets[2] + 1, offsets[3])
    reference = S.broaden_sticks_naive(freqs[own], intensities[own],
                                       np.array([0, own.stop - own.start]))
    np.testing.assert_allclose(fast[2], reference[0], rtol=1e-4, atol=1e-5 * slow.max())


def test_single_stick_peak_height_and_half_width():
    fwhm = 15.0
    grid = np.array([1000.0 - fwhm / 2, 1000.0, 1000.0 + fwhm / 2])
    out = S.broaden_sticks(np.array([1000.0]), np.array([3.0]), np.array([0, 1]), fwhm, grid)
    np.testing.assert_allclose(out[0], [1.5, 3.0, 1.5], rtol=1e-6)
    fine = S.broaden_sticks(np.array([1000.0]), np.array([3.0]), np.array([0, 1]), fwhm)
    assert S.fine_grid()[np.argmax(fine[0])] == 1000.0


def test_grids():
    assert S.fine_grid().shape == (3501,) and S.model_grid().shape == (1750,)
    assert np.allclose(np.diff(S.fine_grid()), 1.0)
    assert S.model_grid()[0] == 500.0 and S.model_grid()[-1] == 4000.0


def test_resample_linear_function_is_exact_and_zero_outside():
    src = S.fine_grid()
    rows = np.stack([2.0 * src + 3.0, -0.5 * src + 2500.0])
    dst = np.concatenate([[450.0], S.model_grid(), [4000.0, 4100.0]])
    out = S.resample(rows, src, dst)
    assert out.shape == (2, dst.size)
    inner = dst[1:-1]
    np.testing.assert_allclose(out[:, 1:-1], np.stack([2 * inner + 3, -0.5 * inner + 2500]),
                               rtol=1e-6)
    assert np.all(out[:, 0] == 0) and np.all(out[:, -1] == 0)


def test_minmax_scale_range_and_constant_rows():
    rng = np.random.default_rng(1)
    rows = np.vstack([rng.normal(size=(3, 50)) * 7 + 3, np.zeros(50), np.full(50, 5.0)])
    out = S.minmax_scale(rows)
    assert np.allclose(out[:3].min(axis=1), 0) and np.allclose(out[:3].max(axis=1), 1)
    assert np.all(out[3:] == 0) and np.isfinite(out).all()


def test_sticks_to_model_input_peak_position():
    freqs = np.array([1500.0, 3000.0, 900.0, 2200.0])
    ints = np.array([10.0, 2.0, 1.0, 0.5])
    out = S.sticks_to_model_input(freqs, ints, np.array([0, 2, 2, 4]), batch_molecules=2)
    assert out.shape == (3, S.MODEL_POINTS) and out.dtype == np.float32
    grid = S.model_grid()
    assert abs(grid[np.argmax(out[0])] - 1500.0) <= 1.1
    assert out[0].max() == 1.0 and out[0].min() == 0.0 and not out[1].any()
    fine = S.broaden_sticks(freqs, ints, np.array([0, 2, 2, 4]))
    np.testing.assert_allclose(S.fine_to_model_input(fine), out, atol=1e-6)


# ---- readers ----------------------------------------------------------------------------------

def test_fine_noisy_spectrum_maps_to_clean_peak():
    x = np.arange(500.0, 4000.0 + 1e-9, 0.1)
    clean = lorentz(x, 1234.5, 8.0) + 0.5 * lorentz(x, 2950.0, 25.0)
    noisy = clean + np.random.default_rng(7).normal(0.0, 0.1, x.size)
    out_clean = S.spectrum_to_model_input(S.Spectrum(x, clean, "absorbance", "clean", []))
    out_noisy = S.spectrum_to_model_input(S.Spectrum(x, noisy, "absorbance", "noisy", []))
    assert np.argmax(out_noisy) == np.argmax(out_clean)
    assert abs(S.model_grid()[np.argmax(out_clean)] - 1234.5) <= 1.1
    # bin averaging beats point sampling: residual noise far below the raw noise level (0.1)
    assert np.abs(out_noisy - out_clean).std() < 0.04


def test_raman_intensity_factor_hand_computed():
    nu0 = 1e7 / 532.0  # 18796.99 cm-1
    # (nu0 - 1000)^4 / 1000 = 1.003198e14; Bose 1 / (1 - exp(-1.438777 * 1000 / 298)) = 1.008066
    by_hand = (nu0 - 1000.0) ** 4 / 1000.0 / (1 - math.exp(-1.438777 * 1000.0 / 298.0))
    assert S.raman_intensity_factor(np.array([1000.0]))[0] == pytest.approx(by_hand, rel=1e-6)
    # the laser enters as nu0 = 1e7 / laser_nm: at 785 nm, (12738.85 - 1000)^4 / 1000 x Bose
    at_785 = (1e7 / 785.0 - 1000.0) ** 4 / 1000.0 / (1 - math.exp(-1.438777 * 1000.0 / 298.0))
    assert S.raman_intensity_factor(np.array([1000.0]), laser_nm=785.0)[0] == pytest.approx(
        at_785, rel=1e-6)
    # 500 vs 3000 cm-1: (18296.99 / 15796.99)^4 = 1.7997873, x 3000/500, x Bose 1.0982395/1.0000005
    f500, f3000 = S.raman_intensity_factor(np.array([500.0, 3000.0]))
    assert f500 / f3000 == pytest.approx(11.85958, rel=1e-6)
    # warming 298 -> 350 K: Bose at 100 cm-1 goes 2.6108 -> 2.9662 (x1.1361); at 3000 cm-1 ~1
    nu = np.array([100.0, 3000.0])
    gain = S.raman_intensity_factor(nu, temperature_k=350.0) / S.raman_intensity_factor(nu)
    assert gain[0] == pytest.approx(1.13614, rel=1e-5)
    assert gain[1] == pytest.approx(1.0, abs=1e-5)


def test_raman_intensity_factor_zero_outside_stokes_range():
    factor = S.raman_intensity_factor(np.array([[-120.0, 0.0], [18797.0, 25000.0]]))
    assert factor.shape == (2, 2) and factor.dtype == np.float64 and not factor.any()
    assert S.raman_intensity_factor(np.array([18796.0]))[0] > 0  # just below nu0 = 18796.99


def test_raman_sticks_round_trip():
    freqs = np.array([-35.0, 250.0, 1000.0, 1000.0, 3100.0])
    activity = np.array([4.0, 2.0, 1.0, 3.0, 5.0])
    intensity = S.raman_activity_to_intensity(freqs, activity)
    assert intensity[0] == 0  # imaginary mode: no Stokes line
    assert intensity[3] == pytest.approx(3 * intensity[2], rel=1e-12)
    np.testing.assert_allclose(intensity[1:] / S.raman_intensity_factor(freqs[1:]), activity[1:],
                               rtol=1e-12)


def test_broadened_raman_spectrum_round_trip():
    grid = np.arange(-100.0, 4500.0, 0.5)  # includes anti-Stokes and sub-floor shifts
    freqs, activity, offsets = np.array([300.0, 1200.0, 3000.0]), np.array([1.0, 2.0, 4.0]), [0, 3]
    act_spectrum = S.broaden_sticks(freqs, activity, np.array(offsets), grid=grid)[0]
    # exact inverse of a pointwise conversion
    measured = S.Spectrum(grid, act_spectrum * S.raman_intensity_factor(grid), "unknown", "sim",
                          ["read"])
    back = S.raman_intensity_to_activity(measured)
    keep = grid >= S.RAMAN_MIN_SHIFT_CM1
    np.testing.assert_allclose(back.intensity[keep], act_spectrum[keep], rtol=1e-9)
    assert not back.intensity[~keep].any()
    assert back.y_kind == "raman_activity" and measured.y_kind == "unknown"
    assert back.notes == ["read", "Raman intensity converted to activity scale (532 nm, 298 K)"]
    # physical spectrum: each line weighted at its centre, then broadened; pointwise division is
    # then right at the peaks (~2e-4) and off by < 0.5% of the tallest peak in the wings
    lines = S.raman_activity_to_intensity(freqs, activity)
    measured.intensity = S.broaden_sticks(freqs, lines, np.array(offsets), grid=grid)[0]
    back = S.raman_intensity_to_activity(measured).intensity
    peaks = np.searchsorted(grid, freqs)
    np.testing.assert_allclose(back[peaks], act_spectrum[peaks], rtol=1e-3)
    np.testing.assert_allclose(back[keep], act_spectrum[keep], atol=0.01 * act_spectrum.max())
    with pytest.raises(ValueError, match="sim: already on the Raman activity scale"):
        S.raman_intensity_to_activity(S.raman_intensity_to_activity(measured))


@pytest.mark.parametrize("kwargs, name", [
    ({"laser_nm": 0.0}, "laser_nm"), ({"laser_nm": -532.0}, "laser_nm"),
    ({"laser_nm": float("nan")}, "laser_nm"), ({"temperature_k": 0.0}, "temperature_k"),
    ({"temperature_k": float("inf")}, "temperature_k"),
    ({"wavenumbers_cm1": np.array([1000.0, np.nan])}, "wavenumbers_cm1"),
])
def test_raman_intensity_factor_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        S.raman_intensity_factor(**{"wavenumbers_cm1": np.array([1000.0]), **kwargs})


def test_raman_conversions_bad_inputs_name_the_item():
    with pytest.raises(ValueError, match="freqs_cm1 has shape .* but activity"):
        S.raman_activity_to_intensity(np.array([1000.0, 2000.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="temperature_k"):
        S.raman_activity_to_intensity(np.array([1000.0]), np.array([1.0]), temperature_k=-1.0)
    bad = S.Spectrum(np.array([500.0, 600.0]), np.array([1.0, np.inf]), "unknown", "raman.csv")
    with pytest.raises(S.SpectrumError, match="raman.csv: need finite"):
        S.raman_intensity_to_activity(bad)


def test_raman_conversion_refuses_a_laser_that_is_not_one():
    x = np.arange(200.0, 3600.0, 2.0)
    spec = S.Spectrum(x, 1.0 + np.sin(x / 100.0), "unknown", "raman.csv", [])
    for laser in (18797.0, 150.0, 1500.0):  # a wavenumber typed as nm, deep UV, beyond NIR
        with pytest.raises(S.SpectrumError, match=rf"raman.csv: laser line {laser:g} nm is "
                           r"outside 200-1100 nm.*--laser-nm"):
            S.raman_intensity_to_activity(spec, laser_nm=laser)
    with pytest.raises(S.SpectrumError, match="1e7/18797 = 532 nm"):
        S.raman_intensity_to_activity(spec, laser_nm=18797.0)
    # absolute wavenumbers (or a far-red laser) put shifts at or beyond nu0: refused, not zeroed
    far = S.Spectrum(np.arange(9000.0, 19000.0, 5.0), np.ones(2000), "unknown", "abs.csv", [])
    far.intensity[100] = 2.0
    with pytest.raises(S.SpectrumError, match=r"abs.csv: Raman shifts up to 18995 cm-1 reach the "
                       r"laser's wavenumber \(1e7 / 532 nm = 18797 cm-1\).*--laser-nm"):
        S.raman_intensity_to_activity(far)
    assert S.raman_intensity_to_activity(spec, laser_nm=1064.0).y_kind == "raman_activity"
    with pytest.raises(S.SpectrumError, match="9398 cm-1"):  # 1064 nm: nu0 = 9398 cm-1
        S.raman_intensity_to_activity(S.Spectrum(np.arange(200.0, 9500.0, 5.0), np.ones(1860),
                                                 "unknown", "r.csv", []), laser_nm=1064.0)


def naive_model_input(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Loop over model-grid bins: mean of the input points in [left edge, right edge) when the
    input is finer than half a grid step and the bin holds points, else linear interpolation;
    the covered minimum outside the data; then min-max by hand."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    grid = S.model_grid()
    step = grid[1] - grid[0]
    fine = np.median(np.diff(x)) < 0.5 * step
    values = np.zeros(grid.size)
    for i, g in enumerate(grid):
        if g < x[0] or g > x[-1]:
            continue
        left = grid[0] - step / 2 if i == 0 else 0.5 * (grid[i - 1] + g)
        right = grid[-1] + step / 2 if i == grid.size - 1 else 0.5 * (g + grid[i + 1])
        inside = y[(x >= left) & (x < right)]
        values[i] = inside.mean() if fine and inside.size else np.interp(g, x, y)
    covered = (grid >= x[0]) & (grid <= x[-1])
    values[~covered] = values[covered].min()
    return (values - values.min()) / (values.max() - values.min())


def _random_spectrum(case: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    grid = S.model_grid()
    edges = 0.5 * (grid[1:] + grid[:-1])
    if case == "full":  # beyond both ends of the grid, shuffled, some points exactly on edges
        x = np.concatenate([rng.uniform(480.0, 4030.0, 9000), edges[::97],
                            [grid[0] - (grid[1] - grid[0]) / 2]])
    elif case == "partial":  # covers only part of the grid, starts and ends inside bins
        x = np.concatenate([rng.uniform(1203.7, 2611.2, 5000), edges[400:900:50]])
    elif case == "holes":  # fine data with bins that hold no point (interpolated there)
        x = np.arange(500.0, 4000.0 + 1e-9, 0.25)
        x = x[(x < 2000.0) | (x > 2015.0)]
    else:  # "coarse": sparser than the grid, so interpolated everywhere
        x = np.sort(rng.uniform(700.0, 3800.0, 900))
    x = np.unique(x)
    rng.shuffle(x)
    return x, rng.normal(size=x.size) + lorentz(x, 1700.0, 30.0)


@pytest.mark.parametrize("case", ["full", "partial", "holes", "coarse"])
def test_spectrum_to_model_input_bin_average_equals_naive_loop(case):
    x, y = _random_spectrum(case, np.random.default_rng(["full", "partial", "holes",
                                                           "coarse"].index(case)))
    out = S.spectrum_to_model_input(S.Spectrum(x.copy(), y.copy(), "absorbance", case, []))
    expected = naive_model_input(x, y)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    if case == "partial":  # filled with the covered minimum: 0 after min-max scaling
        grid = S.model_grid()
        outside = out[(grid < x.min()) | (grid > x.max())]
        assert outside.size > 1000 and np.all(outside == 0.0)


def test_resample_equals_np_interp_row_by_row():
    rng = np.random.default_rng(11)
    src = np.unique(rng.uniform(600.0, 3900.0, 300))  # uneven spacing
    rows = rng.normal(size=(5, src.size))
    # unsorted queries: outside both ends, exactly on source points and both endpoints, between
    dst = np.concatenate([[500.0, src[0], src[-1], 3950.0], src[::7], rng.uniform(550, 3950, 400)])
    rng.shuffle(dst)
    for y in (rows, rows.astype(np.float32)):
        out = S.resample(y, src, dst)
        assert out.shape == (5, dst.size) and out.dtype == np.float32
        for r in range(5):
            np.testing.assert_allclose(out[r], np.interp(dst, src, rows[r], left=0.0, right=0.0),
                                       rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(S.resample(rows[2], src, dst),
                               np.interp(dst, src, rows[2], left=0.0, right=0.0), rtol=1e-5,
                               atol=1e-5)
    # the fine-grid (1 cm-1) -> model-grid path is this interpolation plus min-max, row by row
    fine = rng.normal(size=(3, S.FINE_POINTS))
    model = S.fine_to_model_input(fine)
    for r in range(3):
        v = np.interp(S.model_grid(), S.fine_grid(), fine[r])
        np.testing.assert_allclose(model[r], (v - v.min()) / (v.max() - v.min()), rtol=1e-5,
                                   atol=1e-5)


# issue 28: a constant baseline offset must not change the model input

def _acetone_like(x: np.ndarray) -> np.ndarray:
    """Three bands on a zero baseline (its minimum is 0), max 1 (absorbance-like)."""
    y = sum(h * lorentz(x, c, 20.0) for c, h in ((1220.0, 0.5), (1740.0, 1.0), (2970.0, 0.3)))
    return (y - y.min()) / np.ptp(y)


def test_constant_offset_leaves_model_input_unchanged():
    x = np.arange(575.0, 3975.0 + 1e-9, 2.5)  # covers only part of 500-4000 cm-1
    base = S.spectrum_to_model_input(S.Spectrum(x, _acetone_like(x), "absorbance", "base", []))
    grid = S.model_grid()
    outside = (grid < 575.0) | (grid > 3975.0)
    # a zero baseline: 0 outside the data, as zero-filling gave before
    assert outside.sum() == 51 and np.all(base[outside] == 0.0) and base.max() == 1.0
    old = np.interp(grid, x, _acetone_like(x))  # the old zero-fill, before min-max scaling
    old[outside] = 0.0
    np.testing.assert_allclose(base, (old - old.min()) / np.ptp(old), atol=1e-6)
    fine = np.arange(575.0, 3975.0 + 1e-9, 0.5)  # bin-averaged rather than interpolated
    fine_base = S.spectrum_to_model_input(S.Spectrum(fine, _acetone_like(fine), "absorbance",
                                                     "fine", []))
    for offset in (0.02, 0.2, 1.0, 1000.0, -0.3):
        for xs, expected in ((x, base), (fine, fine_base)):
            spec = S.Spectrum(xs, _acetone_like(xs) + offset, "absorbance", f"+{offset}", [])
            out = S.spectrum_to_model_input(spec)
            assert np.allclose(out, expected, atol=1e-5), offset
            below = [n for n in spec.notes if "below 0" in n]
            assert len(below) == (1 if offset < 0 else 0), (offset, spec.notes)
            assert any("with the spectrum's minimum" in n for n in spec.notes)
    # a step at the edges (the old zero-fill under an offset) is what the test would catch
    stepped = np.interp(grid, x, _acetone_like(x) + 0.2)
    stepped[outside] = 0.0
    assert not np.allclose((stepped - stepped.min()) / np.ptp(stepped), base, atol=1e-5)
