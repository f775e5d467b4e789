"""Tests for vibraclip_core.measured.readers: JCAMP-DX and CSV files written on the fly, units, bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from vibraclip_core.data import spectra as S
from vibraclip_core.measured import readers as R


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
    # the 0.1 baseline is the fill value: no step at 1000 and 2000 cm-1 (zero-filling made one)
    inside = out[(grid > 1001) & (grid < 1999)]
    assert out.max() == 1.0 and inside.min() < 1e-4 and inside[:5].max() < 0.01
    note = next(n for n in spec.notes if "filled" in n)
    assert "500-1000.0" in note and "2000.0-4000" in note and "the spectrum's minimum" in note
    assert "spectrum's minimum" in caplog.text


# issue 18: inputs that used to be read silently wrong

def band_absorbance(x: np.ndarray, centre: float = 1700.0) -> np.ndarray:
    return 0.01 + 0.8 * lorentz(x, centre, 20.0)


def write_csv(path: Path, header: str, x: np.ndarray, y: np.ndarray, fmt: str = "{},{}") -> Path:
    path.write_text((header + "\n" if header else "")
                    + "\n".join(fmt.format(a, b) for a, b in zip(x, y)) + "\n")
    return path


X_MID = np.arange(4000.0, 499.0, -2.0)  # descending, as most instruments export


@pytest.mark.parametrize("header,scale", [("wavenumber,%T", 100.0), ("cm-1,T", 1.0),
                                          ("Wavenumber (cm-1),Transmittance", 1.0)])
def test_csv_header_names_transmittance(tmp_path, header, scale):
    t = scale * 10 ** -band_absorbance(X_MID)
    spec = R.read_spectrum(write_csv(tmp_path / "t.csv", header, X_MID, t))
    assert spec.y_kind == "absorbance" and any("-log10(T)" in n for n in spec.notes)
    np.testing.assert_allclose(spec.intensity, band_absorbance(spec.wavenumbers_cm1), atol=1e-9)


@pytest.mark.parametrize("header", ["wavenumber,absorbance", "x,y", ""])
def test_transmittance_declared_or_assumed_absorbance_is_refused(tmp_path, header):
    t = 100 * 10 ** -band_absorbance(X_MID)
    path = write_csv(tmp_path / "pct.csv", header, X_MID, t)
    with pytest.raises(S.SpectrumError, match="--ir-y percent-transmittance") as err:
        R.read_spectrum(path)
    assert "pct.csv" in str(err.value)
    spec = R.read_spectrum(path, y_kind="percent-transmittance")  # the fix the message names
    np.testing.assert_allclose(spec.intensity, band_absorbance(spec.wavenumbers_cm1), atol=1e-9)
    kept = R.read_spectrum(path, y_kind="absorbance")  # an explicit declaration is obeyed
    np.testing.assert_allclose(kept.intensity, t[::-1])


def test_jcamp_absorbance_header_with_transmittance_values(tmp_path):
    x = np.arange(400.0, 4000.0 + 1e-9, 2.0)
    path = write_jcamp(tmp_path / "mislabelled.jdx", x, band_transmittance(x), "1/CM",
                       "ABSORBANCE")
    with pytest.raises(S.SpectrumError, match=r"mislabelled\.jdx.*--ir-y transmittance"):
        R.read_spectrum(path)
    spec = R.read_spectrum(path, y_kind="transmittance")
    assert any("overridden" in n for n in spec.notes)
    assert spec.intensity.max() == pytest.approx(-np.log10(0.2), rel=1e-4)


def test_ambiguous_baseline_gives_a_loud_note_and_absorbance_none(tmp_path):
    ramp = np.linspace(0.0, 1.0, X_MID.size)  # median at half the range: could be either
    spec = R.read_spectrum(write_csv(tmp_path / "ramp.csv", "", X_MID, ramp))
    assert any(n.startswith("WARNING") and "transmittance" in n for n in spec.notes)
    plain = R.read_spectrum(write_csv(tmp_path / "a.csv", "", X_MID, band_absorbance(X_MID)))
    assert not any("WARNING" in n for n in plain.notes)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_european_decimal_commas(tmp_path, sep):
    y = band_absorbance(X_MID)
    lines = [f"{a:.3f}{sep}{b:.5f}".replace(".", ",") for a, b in zip(X_MID, y)]
    path = tmp_path / "eu.csv"
    path.write_text(f"Wellenzahl{sep}Absorbanz\n" + "\n".join(lines) + "\n")
    spec = R.read_spectrum(path)
    np.testing.assert_allclose(spec.wavenumbers_cm1, X_MID[::-1])
    np.testing.assert_allclose(spec.intensity, y[::-1], atol=1e-5)
    assert any("decimal commas" in n for n in spec.notes)


def test_leading_index_column_is_skipped(tmp_path):
    import pandas as pd

    y = band_absorbance(X_MID)
    pd.DataFrame({"wavenumber": X_MID, "absorbance": y}).to_csv(tmp_path / "pd.csv")
    (tmp_path / "bare.csv").write_text("\n".join(f"{i},{a},{b}" for i, (a, b)
                                                 in enumerate(zip(X_MID, y))) + "\n")
    for name in ("pd.csv", "bare.csv"):
        spec = R.read_spectrum(tmp_path / name)
        np.testing.assert_allclose(spec.wavenumbers_cm1, X_MID[::-1])
        np.testing.assert_allclose(spec.intensity, y[::-1])
        assert any("index column" in n for n in spec.notes)


def test_constant_spectrum_is_refused(tmp_path):
    path = write_csv(tmp_path / "flat.csv", "", X_MID, np.full(X_MID.size, 0.3))
    with pytest.raises(S.SpectrumError, match=r"flat\.csv.*constant"):
        R.read_spectrum(path)
    spec = S.Spectrum(X_MID[::-1].copy(), np.full(X_MID.size, 0.3), "absorbance", "flat2.csv")
    with pytest.raises(S.SpectrumError, match="flat2.csv"):
        S.spectrum_to_model_input(spec)


def test_huge_values_scale_without_nan(tmp_path):
    y = 1e40 * band_absorbance(X_MID)
    spec = R.read_spectrum(write_csv(tmp_path / "huge.csv", "", X_MID, y), y_kind="absorbance")
    out = S.spectrum_to_model_input(spec)
    assert np.all(np.isfinite(out)) and out.max() == 1.0
    small = S.spectrum_to_model_input(R.read_spectrum(
        write_csv(tmp_path / "small.csv", "", X_MID, band_absorbance(X_MID))))
    np.testing.assert_allclose(out, small, atol=1e-6)  # the same spectrum, scaled


def test_nanometres_are_converted_or_refused(tmp_path):
    nm = np.linspace(190.0, 1100.0, 500)
    uv = 0.1 + lorentz(nm, 260.0, 30.0)
    jdx = write_jcamp(tmp_path / "uv.jdx", nm, uv, "NANOMETERS", "ABSORBANCE")
    csv = write_csv(tmp_path / "uv.csv", "wavelength (nm),absorbance", nm, uv)
    bare = write_csv(tmp_path / "uvbare.csv", "", nm, uv)
    for path, hint in ((jdx, "nm"), (csv, "nm"), (bare, "UV-Vis")):
        with pytest.raises(S.SpectrumError, match="MIN_COVERAGE_CM1") as err:
            R.read_spectrum(path)
        assert path.name in str(err.value) and hint in str(err.value)
    mid_nm = np.linspace(2500.0, 20000.0, 4000)  # mid-IR written in nm is usable
    ir = write_csv(tmp_path / "ir_nm.csv", "nm,A", mid_nm, band_absorbance(1e7 / mid_nm))
    spec = R.read_spectrum(ir)
    assert any("nanometres" in n for n in spec.notes)
    assert spec.wavenumbers_cm1[np.argmax(spec.intensity)] == pytest.approx(1700.0, abs=1.0)


@pytest.mark.parametrize("x", [np.r_[np.linspace(100, 450, 30), 1000.0, 1001.0],
                               np.arange(1500.0, 2000.0, 1.0)], ids=["2points", "500cm1"])
def test_too_little_coverage_is_refused(tmp_path, x):
    path = write_csv(tmp_path / "narrow.csv", "", x, band_absorbance(x, 1750.0))
    with pytest.raises(S.SpectrumError, match=r"narrow\.csv.*MIN_COVERAGE_CM1=1000"):
        R.read_spectrum(path)


def test_concatenated_scans_and_duplicate_spikes_are_noted(tmp_path):
    y = band_absorbance(X_MID)
    two = write_csv(tmp_path / "two.csv", "", np.r_[X_MID, X_MID], np.r_[y, y + 0.01])
    spec = R.read_spectrum(two)
    assert any(f"{X_MID.size} duplicated x values" in n for n in spec.notes)
    assert any("goes back 1 times" in n for n in spec.notes)
    np.testing.assert_allclose(spec.intensity, y[::-1] + 0.005)
    spike = write_csv(tmp_path / "spike.csv", "", np.r_[X_MID, 3000.0, 3000.0],
                      np.r_[y, 50.0, 60.0])
    spec = R.read_spectrum(spike)
    note = next(n for n in spec.notes if "duplicated" in n)
    assert note.startswith("2 duplicated") and "WARNING" in note and "3000.0" in note


def test_link_file_uses_the_block_that_covers_mid_ir(tmp_path):
    nir = np.linspace(12000.0, 4000.0, 1000)
    mid = np.arange(4000.0, 400.0 - 1e-9, -4.0)
    blocks = [write_jcamp(tmp_path / f"b{k}.jdx", x, band_absorbance(x, c), "1/CM", "ABSORBANCE")
              for k, (x, c) in enumerate(((nir, 6000.0), (mid, 1700.0)))]
    body = "\n".join(b.read_text() for b in blocks)
    path = tmp_path / "link.jdx"
    path.write_text("##TITLE=link\n##JCAMP-DX=4.24\n##DATA TYPE=LINK\n##BLOCKS=2\n" + body
                    + "##END=\n")
    spec = R.read_spectrum(path)
    assert any("block 2 of 2" in n for n in spec.notes)
    assert spec.wavenumbers_cm1[np.argmax(spec.intensity)] == 1700.0


def naive_read_text(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [ln.replace(";", " ").replace(",", " ").split() for ln in path.read_text().splitlines()]
    xy = np.array([[float(r[0]), float(r[1])] for r in rows if r and not r[0].startswith("#")])
    return xy[:, 0], xy[:, 1]


@pytest.mark.parametrize("fmt", ["{:.4f},{:.6e}", "{:.4f}\t{:.6e}", "{:.4f}  {:.6e}"])
def test_vectorised_text_reader_matches_a_naive_parse(tmp_path, fmt):
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(400, 4000, 20_000))
    y = rng.normal(size=x.size)
    path = tmp_path / "big.txt"
    path.write_text("# exported\n" + "\n".join(fmt.format(a, b) for a, b in zip(x, y)) + "\n")
    notes: list[str] = []
    from vibraclip_core.measured.readers import read_text

    got_x, got_y, x_units, y_units = read_text(path, notes)
    want_x, want_y = naive_read_text(path)
    np.testing.assert_array_equal(got_x, want_x)
    np.testing.assert_array_equal(got_y, want_y)
    assert (x_units, y_units) == ("1/CM", "")


@pytest.mark.parametrize("content,expect", [
    (b"hello world\nno numbers here\n", "no numeric x, y rows"),
    (bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8)), "no numeric"),
    (b"x,y\n1000,abc\n" + b"\n".join(b"%d,0.%d" % (1001 + i, i) for i in range(20)), "1 NaN"),
])
def test_text_without_numbers_or_with_a_bad_row_names_the_file(tmp_path, content, expect):
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.raises(S.SpectrumError, match=rf"odd\.csv.*{expect}"):
        R.read_spectrum(path)


def test_interleaved_scans_are_noted(tmp_path):
    a, b = X_MID, X_MID + 1.0  # two scans offset by 1 cm-1, points alternating
    x = np.ravel(np.column_stack([a, b]))
    spec = R.read_spectrum(write_csv(tmp_path / "inter.csv", "", x, band_absorbance(x)))
    assert any(f"goes back {a.size - 1} times" in n for n in spec.notes)
    assert np.all(np.diff(spec.wavenumbers_cm1) > 0)


# issue 28: structure the readers did not check

def test_one_based_index_column_is_skipped(tmp_path):
    y = band_absorbance(X_MID)
    path = tmp_path / "one.csv"
    path.write_text("\n".join(f"{i},{a:.3f},{b:.5f}" for i, (a, b)
                              in enumerate(zip(X_MID, y), start=1)) + "\n")
    spec = R.read_spectrum(path)
    np.testing.assert_allclose(spec.wavenumbers_cm1, X_MID[::-1])
    np.testing.assert_allclose(spec.intensity, y[::-1], atol=1e-5)
    assert any("index column (1, 2, 3, ...)" in n for n in spec.notes)
    # x, y and a third column of numbers that do not count 1, 2, 3: x stays the first column
    three = tmp_path / "three.csv"
    three.write_text("\n".join(f"{a},{b},{2 * b}" for a, b in zip(X_MID, y)) + "\n")
    assert not any("index" in n for n in R.read_spectrum(three).notes)
    np.testing.assert_allclose(R.read_spectrum(three).wavenumbers_cm1, X_MID[::-1])


@pytest.mark.parametrize("unit", ["\u00b5m", "\u03bcm", "um", "microns"])
def test_micrometre_headers_are_converted(tmp_path, unit):
    wavelength_um = 1e4 / X_MID  # 2.5-20 um
    path = tmp_path / "um.csv"
    path.write_text(f"Wavelength ({unit}),Absorbance\n" + "\n".join(
        f"{a:.8f},{b:.6f}" for a, b in zip(wavelength_um, band_absorbance(X_MID))) + "\n",
        encoding="utf-8")
    spec = R.read_spectrum(path)
    assert any("micrometres" in n for n in spec.notes)
    np.testing.assert_allclose(spec.wavenumbers_cm1, X_MID[::-1], rtol=1e-6)
    assert abs(model_peak_cm1(spec) - 1700.0) <= 2.1


def test_jcamp_micro_sign_units_are_micrometres(tmp_path):
    x_um = np.linspace(2.5, 20.0, 2000)
    path = write_jcamp(tmp_path / "um.jdx", x_um, band_absorbance(1e4 / x_um), "\u00b5m",
                       "ABSORBANCE")
    path.write_text(path.read_text(), encoding="utf-8")
    spec = R.read_spectrum(path)
    assert any("micrometres" in n for n in spec.notes)
    assert abs(model_peak_cm1(spec) - 1700.0) <= 2.1


def test_nmr_jcamp_is_refused(tmp_path):
    hz = np.linspace(-500.0, 5000.0, 4000)  # a 1H spectrum at 500 MHz: 0-10 ppm in Hz
    path = write_jcamp(tmp_path / "h1.jdx", hz, lorentz(hz, 1200.0, 3.0), "HZ",
                       "ARBITRARY UNITS")
    path.write_text(path.read_text().replace("INFRARED SPECTRUM", "NMR SPECTRUM"))
    with pytest.raises(S.SpectrumError, match=r"h1\.jdx: x units 'HZ'.*not an IR or Raman "
                       r"spectrum in cm-1"):
        R.read_spectrum(path)


def test_concatenated_jcamp_files_are_refused(tmp_path):
    x = np.arange(4000.0, 400.0 - 1e-9, -4.0)
    first = write_jcamp(tmp_path / "a.jdx", x, band_absorbance(x, 1700.0), "1/CM", "ABSORBANCE")
    second = write_jcamp(tmp_path / "b.jdx", x, band_absorbance(x, 2900.0), "1/CM",
                         "ABSORBANCE")
    path = tmp_path / "both.jdx"
    path.write_text(first.read_text() + "\n" + second.read_text())
    with pytest.raises(S.SpectrumError, match=r"both\.jdx: line \d+: a second JCAMP-DX file.*"
                       r"split them"):
        R.read_spectrum(path)
    assert R.read_spectrum(first).wavenumbers_cm1.size == x.size  # one file alone is read


def write_peak_table(path: Path, peaks: list[tuple[float, float]], data_type: str) -> str:
    lines = ["##TITLE=peaks", "##JCAMP-DX=4.24", f"##DATA TYPE={data_type}",
             "##XUNITS=1/CM", "##YUNITS=ABSORBANCE", "##PEAK TABLE=(XY..XY)"]
    lines += [f"{a:.1f}, {b:.3f}" for a, b in peaks]
    path.write_text("\n".join(lines + ["##END="]) + "\n")
    return path.read_text()


def test_jcamp_peak_table_is_refused(tmp_path):
    peaks = [(c, 0.1 + 0.07 * k) for k, c in enumerate(np.linspace(600.0, 3600.0, 12))]
    path = tmp_path / "peaks.jdx"
    write_peak_table(path, peaks, "INFRARED PEAK TABLE")
    with pytest.raises(S.SpectrumError, match=r"peaks\.jdx: a ##PEAK TABLE= of 12 peaks, not a "
                       r"continuous spectrum.*##XYDATA="):
        R.read_spectrum(path)
    # in a compound file beside a measured spectrum, the spectrum is used and the table noted
    x = np.arange(4000.0, 400.0 - 1e-9, -4.0)
    spectrum = write_jcamp(tmp_path / "s.jdx", x, band_absorbance(x, 1700.0), "1/CM",
                           "ABSORBANCE")
    link = tmp_path / "link.jdx"
    link.write_text("##TITLE=link\n##JCAMP-DX=4.24\n##DATA TYPE=LINK\n##BLOCKS=2\n"
                    + write_peak_table(tmp_path / "p.jdx", peaks, "INFRARED PEAK TABLE")
                    + spectrum.read_text() + "##END=\n")
    spec = R.read_spectrum(link)
    assert any("peak table" in n for n in spec.notes)
    assert spec.wavenumbers_cm1.size == x.size


@pytest.mark.parametrize("y_kind", ["transmittance", "percent-transmittance"])
def test_declared_transmittance_that_looks_like_absorbance_is_refused(tmp_path, y_kind):
    a = band_absorbance(X_MID)  # 0.01 baseline, one band up to 0.81: absorbance
    path = write_csv(tmp_path / "abs.csv", "", X_MID, a)
    with pytest.raises(S.SpectrumError, match=r"abs\.csv: y is declared transmittance by "
                       r"--ir-y, but looks like absorbance.*--ir-y absorbance"):
        R.read_spectrum(path, y_kind=y_kind)
    # a header that says transmittance over absorbance data: refused naming the file's units
    header = write_csv(tmp_path / "hdr.csv", "wavenumber,transmittance", X_MID, a)
    with pytest.raises(S.SpectrumError, match="by the file's y units"):
        R.read_spectrum(header)
    # values far above 100 are no transmittance, even in percent
    big = write_csv(tmp_path / "big.csv", "", X_MID, 500.0 * 10 ** -a)
    with pytest.raises(S.SpectrumError, match=r"big\.csv: .*outside 0-1 \(T\) and 0-100 \(%T\)"):
        R.read_spectrum(big, y_kind="percent-transmittance")
    # real transmittance, 101 % baseline noise included, passes
    t = np.minimum(101.0, 100.5 * 10 ** -a)
    spec = R.read_spectrum(write_csv(tmp_path / "t.csv", "", X_MID, t), y_kind=y_kind)
    assert spec.y_kind == "absorbance" and not any("WARNING" in n for n in spec.notes)


def test_arbitrary_units_header_is_not_absorbance(tmp_path):
    t = 100 * 10 ** -band_absorbance(X_MID)
    for header in ("Wavenumber (cm-1),Intensity (a.u.)", "cm-1,Intensity [arb. units]"):
        path = write_csv(tmp_path / "au.csv", header, X_MID, t)
        with pytest.raises(S.SpectrumError, match=r"y is assumed absorbance but looks like "
                           "percent-transmittance"):
            R.read_spectrum(path)
    a = R.read_spectrum(write_csv(tmp_path / "a.csv", "x,Intensity (a.u.)", X_MID,
                                  band_absorbance(X_MID)))
    assert any("assumed absorbance" in n for n in a.notes)
    assert R.read_spectrum(write_csv(tmp_path / "abs.csv", "x,Abs", X_MID,
                                     band_absorbance(X_MID))).y_kind == "absorbance"


def test_raman_file_without_units_is_raman_intensity(tmp_path):
    x = np.arange(200.0, 3600.0, 2.0)
    path = write_csv(tmp_path / "raman.csv", "Raman shift (cm-1),Intensity (counts)", x,
                     100 + 5000 * lorentz(x, 1000.0, 10.0))
    spec = R.read_spectrum(path, raman=True)
    assert spec.y_kind == "unknown"
    assert any("Raman intensity" in n for n in spec.notes)
    assert not any("absorbance" in n or "not recognised" in n for n in spec.notes)
    ir = R.read_spectrum(path)  # read as IR, the same file is assumed absorbance, as before
    assert any("assumed absorbance" in n for n in ir.notes)


def test_r_write_csv_utf16_and_spaced_decimal_commas_are_read(tmp_path):
    y = band_absorbance(X_MID)
    r_csv = tmp_path / "r.csv"  # R's write.csv: quoted header and row names from "1"
    r_csv.write_text('"","wavenumber","absorbance"\n' + "".join(
        f'"{i}",{a},{b}\n' for i, (a, b) in enumerate(zip(X_MID, y), start=1)))
    utf16 = tmp_path / "u16.csv"  # a Windows export with a byte-order mark
    utf16.write_text("wavenumber,absorbance\n" + "".join(f"{a},{b}\n" for a, b in zip(X_MID, y)),
                     encoding="utf-16")
    spaced = tmp_path / "spaced.txt"  # '4000,0  0,01000'
    spaced.write_text("".join(f"{a:.1f}  {b:.6f}\n".replace(".", ",") for a, b in zip(X_MID, y)))
    for path, said in ((r_csv, "index column (header '')"), (utf16, "UTF-16"),
                       (spaced, "decimal commas with space-separated columns")):
        spec = R.read_spectrum(path)
        np.testing.assert_allclose(spec.wavenumbers_cm1, X_MID[::-1])
        np.testing.assert_allclose(spec.intensity, y[::-1], atol=1e-6)
        assert any(said in n for n in spec.notes), (path.name, spec.notes)


def test_origin_export_with_units_and_comments_rows_reads_its_data(tmp_path):
    """Origin writes long names, a units row and a comments row above the data (issue 28)."""
    x = np.linspace(600.0, 3900.0, 800)
    y = np.exp(-0.5 * ((x - 1700) / 15) ** 2) + 0.5 * np.exp(-0.5 * ((x - 2950) / 20) ** 2)
    body = "".join(f"{a:.2f}\t{b:.5f}\n" for a, b in zip(x, y))
    path = tmp_path / "origin.txt"
    path.write_text("Wavenumber\tAbsorbance\ncm-1\ta.u.\nSample A\tSample A\n" + body)
    s = R.read_spectrum(path)
    assert len(s.wavenumbers_cm1) == 800 and s.y_kind == "absorbance"
    assert s.wavenumbers_cm1[0] == pytest.approx(600.0)
    assert abs(s.wavenumbers_cm1[int(np.argmax(s.intensity))] - 1700) < 5
    assert sum("skipped header line" in n for n in s.notes) == 3


# issue 37: units rows, axes the data contradict, data types, instrument exports, footers

def two_bands(x_cm1: np.ndarray) -> np.ndarray:
    """Absorbance with bands at 1700 and 2950 cm-1 (1700 the taller), baseline 0.02."""
    return 0.02 + 0.8 * lorentz(x_cm1, 1700.0, 20.0) + 0.4 * lorentz(x_cm1, 2950.0, 30.0)


def test_origin_units_row_in_nm_under_a_wavelength_column_is_converted(tmp_path):
    """'Wavelength,Absorbance' / 'nm,' / comments: the units row says nm (only the last header
    line was read, and the file was taken as cm-1)."""
    nm = np.linspace(2500.0, 20000.0, 3000)
    body = "".join(f"{a:.3f},{b:.6f}\n" for a, b in zip(nm, two_bands(1e7 / nm)))
    for name, head in (("three.csv", "Wavelength,Absorbance\nnm,\nsample 1,sample 1\n"),
                       ("two.csv", "Wavelength,Absorbance\nnm,\n")):
        (tmp_path / name).write_text(head + body)
        spec = R.read_spectrum(tmp_path / name)
        assert spec.wavenumbers_cm1.min() == pytest.approx(500.0)
        assert spec.wavenumbers_cm1[np.argmax(spec.intensity)] == pytest.approx(1700.0, abs=3.0)
        assert any("nanometres" in n for n in spec.notes)


@pytest.mark.parametrize("units_row, y_kind_note", [("cm-1,%", "'%'"), ("cm-1,%T", "percent")])
def test_a_percent_units_row_is_percent_transmittance(tmp_path, units_row, y_kind_note):
    t = 100.0 * 10 ** -band_absorbance(X_MID)
    path = write_csv(tmp_path / "t.csv", "Wavenumber,Transmittance\n" + units_row, X_MID, t)
    spec = R.read_spectrum(path)
    assert not any("assumed absorbance" in n for n in spec.notes)
    assert any("-log10(T)" in n for n in spec.notes) and any(y_kind_note in n for n in spec.notes)
    assert spec.intensity.max() == pytest.approx(0.81, abs=0.01)  # absorbance at the band
    bare = write_csv(tmp_path / "bare.csv", "x,y\n" + units_row.replace("cm-1", "1/cm"), X_MID, t)
    assert R.read_spectrum(bare).intensity.max() == pytest.approx(0.81, abs=0.01)


def jasco_text(yunits: str, data_type: str = "INFRARED SPECTRUM") -> str:
    head = ["TITLE\tsample", f"DATA TYPE\t{data_type}", "ORIGIN\tJASCO", "OWNER\t",
            "DATE\t24/05/02", "SPECTROMETER/DATA SYSTEM\tJASCO Corp., FT/IR-4600",
            "RESOLUTION\t", "DELTAX\t-2", "XUNITS\t1/CM", f"YUNITS\t{yunits}",
            f"FIRSTX\t{X_MID[0]}", f"LASTX\t{X_MID[-1]}", f"NPOINTS\t{X_MID.size}", "XYDATA"]
    return "\n".join(head) + "\n"


def test_jasco_yunits_percent_t_is_transmittance(tmp_path):
    t = 100.0 * 10 ** -band_absorbance(X_MID)
    path = tmp_path / "jasco.txt"
    path.write_text(jasco_text("%T") + "".join(f"{a}\t{b:.5f}\n" for a, b in zip(X_MID, t)))
    spec = R.read_spectrum(path)
    assert not any("assumed absorbance" in n for n in spec.notes)
    assert any("percent" in n for n in spec.notes)
    assert spec.wavenumbers_cm1[np.argmax(spec.intensity)] == 1700.0
    assert spec.intensity.max() == pytest.approx(0.81, abs=0.01)
    raman = tmp_path / "jasco_raman.txt"
    raman.write_text(jasco_text("INTENSITY", "RAMAN SPECTRUM")
                     + "".join(f"{a}\t{b:.5f}\n" for a, b in zip(X_MID, band_absorbance(X_MID))))
    with pytest.raises(S.SpectrumError, match=r"jasco_raman\.txt: DATA TYPE RAMAN SPECTRUM: a "
                       r"Raman spectrum, given as the IR spectrum \(--ir\); pass it with --raman"):
        R.read_spectrum(raman)
    assert R.read_spectrum(raman, raman=True).wavenumbers_cm1.size == X_MID.size


@pytest.mark.parametrize("header", ["Wavelength (nm),Absorbance", "Wavelength,Absorbance\nnm,"])
def test_a_wavelength_header_over_wavenumber_values_is_refused(tmp_path, header):
    """Values 500-4000 under 'Wavelength (nm)' became 2,500-20,000 cm-1 and were ranked."""
    x = np.linspace(500.0, 4000.0, 1751)
    path = write_csv(tmp_path / "nm_header.csv", header, x, two_bands(x))
    with pytest.raises(S.SpectrumError) as err:
        R.read_spectrum(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: the x header says") and "nanometres" in msg
    assert "as wavenumbers in cm-1 do" in msg and "wavenumber (cm-1)" in msg and "\n" not in msg


def write_shifted_jcamp(path: Path, x_lines: np.ndarray, y: np.ndarray, firstx: float,
                        lastx: float, data_type: str = "INFRARED SPECTRUM") -> Path:
    """(X++(Y..Y)) lines whose X run over x_lines while the header says firstx..lastx."""
    lines = ["##TITLE=shifted", "##JCAMP-DX=4.24", f"##DATA TYPE={data_type}",
             "##XUNITS=1/CM", "##YUNITS=ABSORBANCE", "##XFACTOR=1.0", "##YFACTOR=1.0",
             f"##FIRSTX={firstx}", f"##LASTX={lastx}", f"##NPOINTS={x_lines.size}",
             "##XYDATA=(X++(Y..Y))"]
    for i in range(0, x_lines.size, 6):
        lines.append(f"{x_lines[i]:.3f} " + " ".join(f"{v:.6f}" for v in y[i:i + 6]))
    path.write_text("\n".join(lines + ["##END="]) + "\n")
    return path


def test_jcamp_whose_lines_contradict_firstx_lastx_is_read_from_its_data(tmp_path):
    """##FIRSTX=400, ##LASTX=4400 over lines that run 574.9-3975: x was taken from the header
    (bands stretched), with one 'X-Check failed' note per line."""
    x = np.linspace(574.9, 3975.0, 3500)
    path = write_shifted_jcamp(tmp_path / "shifted.jdx", x, two_bands(x), 400.0, 4400.0)
    spec = R.read_spectrum(path)
    assert spec.wavenumbers_cm1[0] == pytest.approx(574.9, abs=0.01)
    assert spec.wavenumbers_cm1[-1] == pytest.approx(3975.0, abs=0.01)
    assert spec.wavenumbers_cm1[np.argmax(spec.intensity)] == pytest.approx(1700.0, abs=1.0)
    assert not any("X-Check failed" in n for n in spec.notes)
    said = [n for n in spec.notes if "FIRSTX" in n]
    assert len(said) == 1 and "x read from the data lines" in said[0]
    intact = write_shifted_jcamp(tmp_path / "intact.jdx", x, two_bands(x), x[0], x[-1])
    assert not any("FIRSTX" in n or "X-check" in n for n in R.read_spectrum(intact).notes)


def test_jcamp_data_type_is_checked_against_ir_and_raman(tmp_path):
    x = np.linspace(500.0, 4000.0, 1800)
    ir = write_shifted_jcamp(tmp_path / "ir.jdx", x, two_bands(x), x[0], x[-1])
    with pytest.raises(S.SpectrumError, match=r"ir\.jdx: ##DATA TYPE=INFRARED SPECTRUM: an "
                       r"infrared spectrum, given as the Raman spectrum \(--raman\); pass it "
                       "with --ir"):
        R.read_spectrum(ir, raman=True)
    raman = write_shifted_jcamp(tmp_path / "raman.jdx", x, two_bands(x), x[0], x[-1],
                                "RAMAN SPECTRUM")
    with pytest.raises(S.SpectrumError, match=r"raman\.jdx: ##DATA TYPE=RAMAN SPECTRUM: a Raman "
                       r"spectrum, given as the IR spectrum \(--ir\)"):
        R.read_spectrum(raman)
    assert R.read_spectrum(raman, raman=True).source.endswith("raman.jdx")
    assert R.read_spectrum(ir).source.endswith("ir.jdx")


def perkinelmer_text(x: np.ndarray, y: np.ndarray, yunits: str = "%T") -> str:
    head = ["PE IR       SUBTECH     SPECTRUM    ASCII       PEDS        4.00", "       -1",
            "sample.sp", "24/05/02", "10:11:12.00", "24/05/02", "10:11:12.00", "user",
            "sample", "4", "Spectrum Two", "12345", "4.00", "#HDR", "-1", "4000.00", "450.00",
            "-1.00", "4", "#GR", "cm-1", yunits, "1.0", "0.0", f"{x[0]:.2f}", "-1.00",
            f"{x.size}", "8", f"{y.max():.4f}", f"{y.min():.4f}", "#DATA"]
    return "\n".join(head) + "\n" + "".join(f"{a:.2f}\t{b:.5f}\n" for a, b in zip(x, y))


def test_perkinelmer_ascii_is_read_after_its_data_marker(tmp_path):
    """A numeric header above '#DATA' was taken for data ('not a table ... C error')."""
    t = 100.0 * 10 ** -band_absorbance(X_MID)
    path = tmp_path / "pe.txt"
    path.write_text(perkinelmer_text(X_MID, t))
    spec = R.read_spectrum(path)
    assert spec.wavenumbers_cm1.size == X_MID.size
    assert spec.wavenumbers_cm1[np.argmax(spec.intensity)] == 1700.0
    assert spec.intensity.max() == pytest.approx(0.81, abs=0.01)  # %T from #GR, converted
    assert any("PerkinElmer" in n and "'%T'" in n for n in spec.notes)


def test_a_footer_after_the_data_is_left_out_with_a_note(tmp_path):
    """Shimadzu-style settings after the data got a pandas message."""
    y = band_absorbance(X_MID)
    footer = "\n[Measurement Information]\nResolution,4,cm-1\nAccumulation,16\nApodization,Happ-Genzel\n"
    path = write_csv(tmp_path / "shimadzu.csv", "cm-1,Abs", X_MID, y)
    path.write_text(path.read_text() + footer)
    spec = R.read_spectrum(path)
    assert spec.wavenumbers_cm1.size == X_MID.size
    assert spec.wavenumbers_cm1[np.argmax(spec.intensity)] == 1700.0
    assert any("footer" in n and "[Measurement Information]" in n for n in spec.notes)
    broken = write_csv(tmp_path / "broken.csv", "cm-1,Abs", X_MID, y)
    lines = broken.read_text().splitlines()
    broken.write_text("\n".join(lines[:500] + ["Resolution,4,cm-1"] + lines[500:]) + "\n")
    with pytest.raises(S.SpectrumError, match=r"broken\.csv: line 501 \('Resolution,4,cm-1'\) "
                       r"is text inside the data, with \d+ numeric rows after it"):
        R.read_spectrum(broken)


def test_extra_y_columns_are_noted(tmp_path):
    y = band_absorbance(X_MID)
    path = tmp_path / "scans.csv"
    path.write_text("cm-1,scan1,scan2,scan3\n" + "".join(
        f"{a},{b},{b * 1.1},{b * 0.9}\n" for a, b in zip(X_MID, y)))
    spec = R.read_spectrum(path)
    np.testing.assert_allclose(spec.intensity, y[::-1])  # the first y column
    assert any("2 more y column(s)" in n and "'scan2'" in n for n in spec.notes)
    single = write_csv(tmp_path / "single.csv", "cm-1,A", X_MID, y)
    assert not any("more y column" in n for n in R.read_spectrum(single).notes)
