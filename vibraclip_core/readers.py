"""Readers of measured spectra: JCAMP-DX (.jdx/.dx/.jcamp) and two-column text (.csv/.txt/.tsv).

Every reader returns a `spectra.Spectrum` with ascending wavenumbers in cm-1 and, where the units
say so, absorbance (transmittance converted); what was converted or assumed is listed in its
notes. `spectra.spectrum_to_model_input` puts it onto the model grid.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

from .spectra import GRID_MAX_CM1, GRID_MIN_CM1, Spectrum, SpectrumError

MIN_SPECTRUM_POINTS = 10
JCAMP_SUFFIXES = (".jdx", ".dx", ".jcamp")
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")


def read_spectrum(path: str | Path, y_kind: str | None = None) -> Spectrum:
    """Read a JCAMP-DX (.jdx/.dx/.jcamp) or two-column text (.csv/.txt/.tsv) spectrum.

    x is converted to ascending cm-1, transmittance to absorbance. y_kind ("absorbance" or
    "transmittance") declares the y units of text files (default absorbance); for JCAMP files the
    ##YUNITS header wins and y_kind is used only when the header has none.
    """
    path = Path(path)
    if y_kind not in (None, "absorbance", "transmittance"):
        raise ValueError(f"{path}: y_kind must be 'absorbance' or 'transmittance', got {y_kind!r}")
    if not path.is_file():
        raise SpectrumError(f"{path}: file not found")
    notes: list[str] = []
    suffix = path.suffix.lower()
    if suffix in JCAMP_SUFFIXES:
        x, y, x_units, y_units = _read_jcamp(path, notes)
        y_units = y_units or y_kind or ""
    elif suffix in TEXT_SUFFIXES:
        x, y = _read_text(path, notes)
        x_units, y_units = "1/CM", y_kind or "absorbance"
    else:
        raise SpectrumError(f"{path}: unknown suffix {suffix!r}; use one of "
                            f"{', '.join(JCAMP_SUFFIXES + TEXT_SUFFIXES)}")
    return _to_absorbance_cm1(path, x, y, x_units, y_units, notes)


def _read_jcamp(path: Path, notes: list[str]) -> tuple[np.ndarray, np.ndarray, str, str]:
    import jcamp

    # jcamp >= 1.3 documents jcamp_readfile, but some 1.3.x wheels ship only `readfile`
    reader = getattr(jcamp, "jcamp_readfile", None) or jcamp.readfile
    captured = io.StringIO()  # jcamp prints its X/Y-check warnings; keep them as notes instead
    try:
        with contextlib.redirect_stdout(captured):
            data = reader(str(path))
    except Exception as exc:  # jcamp raises bare Exception / KeyError on malformed data
        raise SpectrumError(f"{path}: not a readable JCAMP-DX file "
                            f"({type(exc).__name__}: {exc})") from exc
    notes.extend(f"jcamp: {line}" for line in captured.getvalue().splitlines() if line.strip())
    if len(data.get("x", ())) == 0 and data.get("children"):
        blocks = [c for c in data["children"] if len(c.get("x", ()))]
        if blocks:
            notes.append(f"compound JCAMP file: used the first of {len(blocks)} data blocks")
            data = blocks[0]
    x = np.asarray(data.get("x", ()), dtype=np.float64)
    y = np.asarray(data.get("y", ()), dtype=np.float64)
    return x, y, str(data.get("xunits", "")), str(data.get("yunits", ""))


def _parse_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read_text(path: Path, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
    rows = [re.split(r"\s*[,;\t]\s*|\s+", ln) for ln in lines]
    if rows and any(_parse_float(f) is None for f in rows[0][:2]):
        notes.append(f"skipped header line {lines[0]!r}")
        rows = rows[1:]
    short = [i for i, r in enumerate(rows) if len(r) < 2]
    if short:
        raise SpectrumError(f"{path}: data row {short[0] + 1} has fewer than 2 columns; "
                            "expected x, y")
    # None (unparsable) becomes NaN here and is reported with the other non-finite values
    xy = np.array([[_parse_float(r[0]), _parse_float(r[1])] for r in rows], dtype=np.float64)
    return (xy[:, 0], xy[:, 1]) if xy.size else (np.empty(0), np.empty(0))


def _to_absorbance_cm1(path: Path, x: np.ndarray, y: np.ndarray, x_units: str, y_units: str,
                       notes: list[str]) -> Spectrum:
    if x.size == 0:
        raise SpectrumError(f"{path}: no data points found (empty file?)")
    if x.size != y.size:
        raise SpectrumError(f"{path}: {x.size} x values but {y.size} y values")
    n_bad = int(np.count_nonzero(~np.isfinite(x) | ~np.isfinite(y)))
    if n_bad:
        raise SpectrumError(f"{path}: {n_bad} NaN/inf or unparsable values among {x.size} points; "
                            "remove or fill them first")
    if x.size < MIN_SPECTRUM_POINTS:
        raise SpectrumError(f"{path}: only {x.size} data points; "
                            f"need at least {MIN_SPECTRUM_POINTS}")
    xu = x_units.upper().replace(" ", "")
    is_micrometre = any(k in xu for k in ("MICROM", "MICRON", "UM", "\u00b5M"))
    if is_micrometre and not ("CM" in xu or "WAVENUMBER" in xu):  # "WAVENUMBER" contains "UM"
        if np.any(x <= 0):
            raise SpectrumError(f"{path}: non-positive wavelengths in micrometres")
        x = 1e4 / x
        notes.append("x converted from micrometres to cm-1 (1e4 / x)")
    elif not ("CM" in xu or "WAVENUMBER" in xu):
        notes.append(f"x units {x_units!r} not recognised; assumed cm-1")
    if np.any(np.diff(x) < 0):
        notes.append("x was descending; sorted ascending" if x[0] > x[-1]
                     else "x was unsorted; sorted ascending")
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    yu = y_units.upper()
    if "TRANSMITTANCE" in yu or yu.replace(" ", "") in ("T", "%T"):
        if "%" in yu or "PERCENT" in yu or y.max() > 1.5:
            y = y / 100.0
            notes.append("transmittance taken as percent (max > 1.5 or '%' in units), "
                         "divided by 100")
        y = -np.log10(np.clip(y, 1e-4, None))
        notes.append("transmittance converted to absorbance = -log10(T), T clipped at 1e-4")
        kind = "absorbance"
    elif "ABSORBANCE" in yu or yu.strip() == "A":
        kind = "absorbance"
    elif "(MICROMOL/MOL)-1" in yu.replace(" ", "") and "M-1" in yu.replace(" ", ""):
        # NIST quantitative IR: decadic absorption coefficient per (umol/mol) and metre, i.e.
        # absorbance per unit concentration and path length: proportional to absorbance
        kind = "absorbance"
        notes.append(f"y units {y_units!r}: NIST absorption coefficient, proportional to "
                     "absorbance")
    else:
        kind = "unknown"
        notes.append(f"y units {y_units!r} not recognised; intensities kept as they are")
    if np.count_nonzero((x >= GRID_MIN_CM1) & (x <= GRID_MAX_CM1)) < 2:
        raise SpectrumError(f"{path}: x range {x.min():.1f}-{x.max():.1f} cm-1 does not overlap "
                            f"{GRID_MIN_CM1:.0f}-{GRID_MAX_CM1:.0f} cm-1; check the x units")
    return Spectrum(x, y, kind, str(path), notes)
