"""Tests for vibraclip_core.spectra: broadening vs its naive twin, grids, readers, model input."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from vibraclip_core import spectra as S


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

def write_jcamp(path: Path, x: np.ndarray, y: np.ndarray, xunits: str, yunits: str,
                form: str = "XYDATA") -> Path:
    lines = ["##TITLE=test spectrum", "##JCAMP-DX=4.24", "##DATA TYPE=INFRARED SPECTRUM",
             f"##XUNITS={xunits}", f"##YUNITS={yunits}", "##XFACTOR=1.0", "##YFACTOR=1.0",
             f"##FIRSTX={x[0]:.6f}", f"##LASTX={x[-1]:.6f}", f"##NPOINTS={x.size}"]
    if form == "XYDATA":
        lines.append("##XYDATA=(X++(Y..Y))")
        for i in range(0, x.size, 8):
            lines.append(f"{x[i]:.6f} " + " ".join(f"{v:.6f}" for v in y[i : i + 8]))
    else:
        lines.append("##XYPOINTS=(XY..XY)")
        lines.extend(f"{a:.6f}, {b:.6f}" for a, b in zip(x, y))
    lines.append("##END=")
    path.write_text("\n".join(lines) + "\n")
    return path


def band_transmittance(x_cm1: np.ndarray, centre: float = 1700.0) -> np.ndarray:
    return 1.0 - 0.8 * lorentz(x_cm1, centre, 20.0)  # T = 0.2 at the centre


def model_peak_cm1(spectrum: S.Spectrum) -> float:
    return float(S.model_grid()[np.argmax(S.spectrum_to_model_input(spectrum))])


def test_jcamp_transmittance_becomes_absorbance_peak(tmp_path):
    x = np.arange(400.0, 4000.0 + 1e-9, 2.0)
    path = write_jcamp(tmp_path / "band.jdx", x, band_transmittance(x), "1/CM", "TRANSMITTANCE")
    spec = S.read_spectrum(path)
    assert spec.y_kind == "absorbance" and spec.source.endswith("band.jdx")
    assert np.all(np.diff(spec.wavenumbers_cm1) > 0)
    assert spec.wavenumbers_cm1[np.argmax(spec.intensity)] == 1700.0
    assert spec.intensity.max() == pytest.approx(-np.log10(0.2), rel=1e-4)
    assert abs(model_peak_cm1(spec) - 1700.0) <= 1.1


def test_jcamp_descending_x_absorbance(tmp_path):
    x = np.arange(4000.0, 400.0 - 1e-9, -2.0)
    y = 0.7 * lorentz(x, 2900.0, 12.0)
    path = write_jcamp(tmp_path / "desc.dx", x, y, "1/CM", "ABSORBANCE")
    spec = S.read_spectrum(path)
    assert np.all(np.diff(spec.wavenumbers_cm1) > 0)
    assert any("descending" in n for n in spec.notes)
    assert spec.wavenumbers_cm1[np.argmax(spec.intensity)] == 2900.0
    assert abs(model_peak_cm1(spec) - 2900.0) <= 1.1


def test_jcamp_micrometres_and_percent_transmittance(tmp_path):
    microns = np.linspace(2.5, 20.0, 4000)
    t_percent = 100.0 * band_transmittance(1e4 / microns, centre=1250.0)
    path = write_jcamp(tmp_path / "um.jcamp", microns, t_percent, "MICROMETERS", "TRANSMITTANCE",
                       form="XYPOINTS")
    spec = S.read_spectrum(path)
    assert spec.wavenumbers_cm1.min() == pytest.approx(500.0)
    assert spec.wavenumbers_cm1.max() == pytest.approx(4000.0)
    assert any("micrometres" in n for n in spec.notes)
    assert any("percent" in n for n in spec.notes)
    assert spec.intensity.max() == pytest.approx(-np.log10(0.2), rel=1e-3)
    assert abs(model_peak_cm1(spec) - 1250.0) <= 2.5


def test_csv_with_and_without_header(tmp_path):
    x = np.arange(600.0, 3800.0, 4.0)
    y = lorentz(x, 1100.0, 10.0) + 0.3 * lorentz(x, 3000.0, 30.0)
    body = "\n".join(f"{a:.3f},{b:.8f}" for a, b in zip(x, y))
    (tmp_path / "with.csv").write_text("wavenumber_cm1,absorbance\n" + body + "\n")
    (tmp_path / "without.csv").write_text(body + "\n")
    (tmp_path / "tabs.tsv").write_text(body.replace(",", "\t") + "\n")
    (tmp_path / "spaces.txt").write_text("# comment line\n" + body.replace(",", "   ") + "\n")
    names = ("with.csv", "without.csv", "tabs.tsv", "spaces.txt")
    specs = [S.read_spectrum(tmp_path / n) for n in names]
    for spec in specs:
        np.testing.assert_allclose(spec.wavenumbers_cm1, x)
        np.testing.assert_allclose(spec.intensity, y, atol=1e-8)
        assert spec.y_kind == "absorbance"
    assert any("header" in n for n in specs[0].notes)


def test_csv_declared_transmittance(tmp_path):
    x = np.arange(500.0, 4000.0, 5.0)
    path = tmp_path / "t.csv"
    path.write_text("\n".join(f"{a},{b}" for a, b in zip(x, 100 * band_transmittance(x, 2000.0))))
    spec = S.read_spectrum(path, y_kind="transmittance")
    assert spec.y_kind == "absorbance" and any("percent" in n for n in spec.notes)
    assert spec.wavenumbers_cm1[np.argmax(spec.intensity)] == 2000.0


@pytest.mark.parametrize("case", ["nan", "empty", "empty_jdx", "out_of_range", "too_few"])
def test_bad_files_raise_spectrum_error_naming_the_file(tmp_path, case):
    x = np.arange(600.0, 1600.0, 10.0)
    y = lorentz(x, 1000.0, 20.0)
    if case == "nan":
        y[[3, 10, 50]] = np.nan
    if case == "out_of_range":
        x = x + 5000.0
    if case == "too_few":
        x, y = x[:5], y[:5]
    name = {"empty_jdx": "broken_case.jdx"}.get(case, f"broken_{case}.csv")
    path = tmp_path / name
    path.write_text("" if case.startswith("empty") else "\n".join(f"{a},{b}" for a, b in zip(x, y)))
    with pytest.raises(S.SpectrumError) as err:
        S.read_spectrum(path)
    assert name in str(err.value)
    if case == "nan":
        assert "3 NaN" in str(err.value)


def test_narrow_range_is_zero_filled_with_note(tmp_path, caplog):
    x = np.arange(1000.0, 2000.0 + 1e-9, 1.0)
    path = tmp_path / "narrow.csv"
    path.write_text("\n".join(f"{a},{b}" for a, b in zip(x, 0.1 + lorentz(x, 1500.0, 15.0))))
    spec = S.read_spectrum(path)
    with caplog.at_level(logging.INFO):
        out = S.spectrum_to_model_input(spec)
    grid = S.model_grid()
    assert out.shape == (S.MODEL_POINTS,) and out.dtype == np.float32
    assert np.all(out[(grid < 1000.0) | (grid > 2000.0)] == 0.0)
    assert out.max() == 1.0 and out[(grid > 1001) & (grid < 1999)].min() > 0.05
    note = next(n for n in spec.notes if "zero-filled" in n)
    assert "500-1000.0" in note and "2000.0-4000" in note
    assert "zero-filled" in caplog.text


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
    assert by_hand == pytest.approx(1.011290e14, rel=1e-6)
    assert S.raman_intensity_factor(np.array([1000.0]))[0] == pytest.approx(by_hand, rel=1e-6)
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
