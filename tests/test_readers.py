"""Tests for vibraclip_core.readers: JCAMP-DX and CSV files written on the fly, units, bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from vibraclip_core import readers as R
from vibraclip_core import spectra as S


def lorentz(x: np.ndarray, centre: float, fwhm: float) -> np.ndarray:
    hw = fwhm / 2
    return hw**2 / ((x - centre) ** 2 + hw**2)


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
    spec = R.read_spectrum(path)
    assert spec.y_kind == "absorbance" and spec.source.endswith("band.jdx")
    assert np.all(np.diff(spec.wavenumbers_cm1) > 0)
    assert spec.wavenumbers_cm1[np.argmax(spec.intensity)] == 1700.0
    assert spec.intensity.max() == pytest.approx(-np.log10(0.2), rel=1e-4)
    assert abs(model_peak_cm1(spec) - 1700.0) <= 1.1


def test_jcamp_descending_x_absorbance(tmp_path):
    x = np.arange(4000.0, 400.0 - 1e-9, -2.0)
    y = 0.7 * lorentz(x, 2900.0, 12.0)
    path = write_jcamp(tmp_path / "desc.dx", x, y, "1/CM", "ABSORBANCE")
    spec = R.read_spectrum(path)
    assert np.all(np.diff(spec.wavenumbers_cm1) > 0)
    assert any("descending" in n for n in spec.notes)
    assert spec.wavenumbers_cm1[np.argmax(spec.intensity)] == 2900.0
    assert abs(model_peak_cm1(spec) - 2900.0) <= 1.1


def test_jcamp_micrometres_and_percent_transmittance(tmp_path):
    microns = np.linspace(2.5, 20.0, 4000)
    t_percent = 100.0 * band_transmittance(1e4 / microns, centre=1250.0)
    path = write_jcamp(tmp_path / "um.jcamp", microns, t_percent, "MICROMETERS", "TRANSMITTANCE",
                       form="XYPOINTS")
    spec = R.read_spectrum(path)
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
    specs = [R.read_spectrum(tmp_path / n) for n in names]
    for spec in specs:
        np.testing.assert_allclose(spec.wavenumbers_cm1, x)
        np.testing.assert_allclose(spec.intensity, y, atol=1e-8)
        assert spec.y_kind == "absorbance"
    assert any("header" in n for n in specs[0].notes)


def test_csv_declared_transmittance(tmp_path):
    x = np.arange(500.0, 4000.0, 5.0)
    path = tmp_path / "t.csv"
    path.write_text("\n".join(f"{a},{b}" for a, b in zip(x, 100 * band_transmittance(x, 2000.0))))
    spec = R.read_spectrum(path, y_kind="transmittance")
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
        R.read_spectrum(path)
    assert name in str(err.value)
    if case == "nan":
        assert "3 NaN" in str(err.value)


def test_narrow_range_is_zero_filled_with_note(tmp_path, caplog):
    x = np.arange(1000.0, 2000.0 + 1e-9, 1.0)
    path = tmp_path / "narrow.csv"
    path.write_text("\n".join(f"{a},{b}" for a, b in zip(x, 0.1 + lorentz(x, 1500.0, 15.0))))
    spec = R.read_spectrum(path)
    with caplog.at_level(logging.INFO):
        out = S.spectrum_to_model_input(spec)
    grid = S.model_grid()
    assert out.shape == (S.MODEL_POINTS,) and out.dtype == np.float32
    assert np.all(out[(grid < 1000.0) | (grid > 2000.0)] == 0.0)
    assert out.max() == 1.0 and out[(grid > 1001) & (grid < 1999)].min() > 0.05
    note = next(n for n in spec.notes if "zero-filled" in n)
    assert "500-1000.0" in note and "2000.0-4000" in note
    assert "zero-filled" in caplog.text
