"""Tests for vibraclip_core.measured.quality: the warnings for a slope, noise, CO2 and water
vapour, on spectra written here with known defects and on clean ones (issue 37)."""

from __future__ import annotations

import numpy as np
import pytest

from vibraclip_core.data.spectra import Spectrum
from vibraclip_core.measured import quality as Q
from vibraclip_core.measured.baseline import correct_baseline

X = np.arange(500.0, 4000.0 + 1e-9, 1.0)


def lorentz(x, centre, fwhm):
    hw = fwhm / 2
    return hw**2 / ((x - centre) ** 2 + hw**2)


def clean(x=X):
    """Absorbance of four bands, baseline 0.02: nothing to warn about."""
    return (0.02 + lorentz(x, 1720.0, 18.0) + 0.6 * lorentz(x, 2950.0, 30.0)
            + 0.4 * lorentz(x, 1100.0, 20.0) + 0.3 * lorentz(x, 3400.0, 200.0))


def spectrum(y, x=X):
    return Spectrum(x.copy(), np.asarray(y, dtype=np.float64), "absorbance", "q.csv", [])


def warned(y, baseline="none", x=X):
    return Q.quality_warnings(spectrum(y, x), baseline)


def test_a_clean_spectrum_gets_no_warning():
    assert warned(clean()) == []
    rng = np.random.default_rng(0)
    assert warned(clean() + rng.normal(0, 0.002, X.size)) == []  # 0.2 % noise: measured data


def test_a_sloped_baseline_points_to_arpls():
    slope = 0.6 * (X - X[0]) / (X[-1] - X[0])  # rises by 0.6 under bands of height 1
    notes = warned(clean() + slope)
    assert len(notes) == 1 and "baseline rises by" in notes[0] and "--baseline arpls" in notes[0]
    assert "warned above 25%" in notes[0]
    # with --baseline arpls the slope is gone: nothing left to warn about
    corrected = correct_baseline(spectrum(clean() + slope), "arpls")
    assert Q.quality_warnings(corrected, "arpls") == []
    assert warned(clean() - slope)[0].startswith("WARNING: the baseline falls by")


def test_noise_above_the_stated_level_is_named():
    rng = np.random.default_rng(1)
    noisy = clean() + rng.normal(0, 0.03, X.size)  # 3 % of the tallest band (height ~1)
    notes = warned(noisy)
    said = [n for n in notes if "noise" in n]
    assert len(said) == 1 and "warned above 2%" in said[0]
    level = float(said[0].split("~")[1].split("%")[0])
    assert 2.4 <= level <= 3.6  # the estimate is close to the 3 % written in


def co2(x):
    return 0.5 * (lorentz(x, 2360.0, 12.0) + lorentz(x, 2340.0, 12.0))


def water_lines(x, rng):
    out = np.zeros_like(x)
    for lo, hi in Q.WATER_WINDOWS:
        for c in rng.uniform(lo, hi, 150):
            out += rng.uniform(0.02, 0.12) * lorentz(x, c, 1.5)
    return out


def test_co2_and_water_vapour_bands_are_found():
    rng = np.random.default_rng(2)
    notes = warned(clean() + co2(X) + water_lines(X, rng))
    assert any("CO2 band at 2320-2375 cm-1 above" in n for n in notes)
    assert any("water vapour" in n for n in notes)
    assert not any("water" in n for n in warned(clean() + co2(X)))
    assert not any("CO2" in n for n in warned(clean() + water_lines(X, rng)))


@pytest.mark.parametrize("centre", [2250.0, 2100.0])
def test_a_nitrile_or_alkyne_band_is_not_taken_for_co2(centre):
    assert warned(clean() + 0.8 * lorentz(X, centre, 20.0)) == []
