"""Readers of measured spectra: JCAMP-DX (.jdx/.dx/.jcamp) and two-column text (.csv/.txt/.tsv).

Every reader returns a `spectra.Spectrum` with ascending wavenumbers in cm-1 and, where the units
say so, absorbance (transmittance converted); what was converted or assumed is listed in its
notes. `spectra.spectrum_to_model_input` puts it onto the model grid. Text parsing lives in
readers_text.py, the refusals of degenerate or mislabelled spectra in readers_checks.py.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from .readers_checks import (MIN_SPECTRUM_POINTS, check_coverage, check_declared_absorbance,
                             check_declared_transmittance, check_jcamp_block, check_jcamp_text,
                             check_variation, coverage_cm1, note_repeats)
from .readers_text import read_text
from .config_types import Y_KINDS
from .spectra import Spectrum, SpectrumError

Y_KIND_UNITS = {"absorbance": "ABSORBANCE", "transmittance": "TRANSMITTANCE",
                "percent-transmittance": "%T"}  # y_kind -> the y units it declares
assert tuple(Y_KIND_UNITS) == Y_KINDS, "config_types.YKind and Y_KIND_UNITS name the same kinds"
JCAMP_SUFFIXES = (".jdx", ".dx", ".jcamp")
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")


def read_spectrum(path: str | Path, y_kind: str | None = None, raman: bool = False
                  ) -> Spectrum:
    """Read a JCAMP-DX (.jdx/.dx/.jcamp) or two-column text (.csv/.txt/.tsv) spectrum.

    x is converted to ascending cm-1 (from micrometres or nanometres), transmittance to
    absorbance. y_kind ("absorbance", "transmittance", "percent-transmittance") declares the y
    units and wins over the file; None detects them from ##YUNITS or the CSV header, assuming
    absorbance when there is none. y declared or assumed absorbance that looks like
    transmittance is refused (see readers_checks.check_declared_absorbance), as is y declared
    transmittance that looks like absorbance (check_declared_transmittance); degenerate spectra
    (constant, too little of 500-4000 cm-1, non-finite) are refused with SpectrumError. With
    `raman`, y without units is Raman intensity (y_kind "unknown"), not assumed absorbance.
    """
    path = Path(path)
    if y_kind not in (None, *Y_KINDS):
        raise ValueError(f"{path}: y_kind must be one of {', '.join(Y_KINDS)} or None, "
                         f"got {y_kind!r}")
    if not path.is_file():
        raise SpectrumError(f"{path}: file not found")
    notes: list[str] = []
    suffix = path.suffix.lower()
    if suffix in JCAMP_SUFFIXES:
        x, y, x_units, y_units = _read_jcamp(path, notes)
    elif suffix in TEXT_SUFFIXES:
        x, y, x_units, y_units = read_text(path, notes)
    else:
        raise SpectrumError(f"{path}: unknown suffix {suffix!r}; use one of "
                            f"{', '.join(JCAMP_SUFFIXES + TEXT_SUFFIXES)}")
    if y_kind is not None:
        if y_units and y_units.upper() != Y_KIND_UNITS[y_kind]:
            notes.append(f"y units {y_units!r} in the file overridden: declared {y_kind}")
        y_units, how = Y_KIND_UNITS[y_kind], "declared"
    else:
        how = "declared" if y_units else "assumed"
        if not y_units and raman:
            notes.append("no y units in the file: taken as Raman intensity (counts, arb. units)")
            return _to_absorbance_cm1(path, x, y, x_units, "", notes, check_look=False,
                                      how="raman")
        if not y_units and suffix in TEXT_SUFFIXES:
            y_units = "absorbance"  # the CSV convention so far; checked below
            notes.append("no y units in the file: assumed absorbance")
    return _to_absorbance_cm1(path, x, y, x_units, y_units, notes,
                              check_look=y_kind is None, how=how, flag=y_kind is not None)


def _read_jcamp(path: Path, notes: list[str]) -> tuple[np.ndarray, np.ndarray, str, str]:
    import jcamp

    # jcamp >= 1.3 documents jcamp_readfile, but some 1.3.x wheels ship only `readfile`
    reader = getattr(jcamp, "jcamp_readfile", None) or jcamp.readfile
    # jcamp keeps the last of concatenated files without a word: refuse them before parsing
    check_jcamp_text(path, path.read_text(encoding="utf-8", errors="replace"))
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
        spectra = [c for c in blocks if "peak table" not in c or "xydata" in c
                   or "xypoints" in c]
        if len(spectra) < len(blocks):
            notes.append(f"compound JCAMP file: left out {len(blocks) - len(spectra)} peak "
                         "table block(s), which are not continuous spectra")
        blocks = spectra or blocks[:1]  # only peak tables: refused below
        if blocks:
            data = max(blocks, key=_block_coverage)  # the first of equals: max keeps the first
            k = next(i for i, b in enumerate(blocks) if b is data)
            notes.append(f"compound JCAMP file: used data block {k + 1} of {len(blocks)}, the "
                         "one covering most of 500-4000 cm-1")
    check_jcamp_block(path, data)
    x = np.asarray(data.get("x", ()), dtype=np.float64)
    y = np.asarray(data.get("y", ()), dtype=np.float64)
    return x, y, str(data.get("xunits", "")), str(data.get("yunits", ""))


def _block_coverage(block: dict) -> float:
    x = np.sort(_x_to_cm1(np.asarray(block["x"], np.float64), str(block.get("xunits", "")))[0])
    return coverage_cm1(x) if x.size else 0.0


def _x_to_cm1(x: np.ndarray, x_units: str) -> tuple[np.ndarray, str]:
    """x in cm-1 and the unit it came from: "um", "nm", "cm-1" or "" (not recognised)."""
    # str.upper() maps both micro signs (U+00B5, U+03BC) to Greek capital mu (U+039C)
    xu = x_units.upper().replace(" ", "").replace("\u039c", "U")
    if "CM" in xu or "WAVENUMBER" in xu:  # "WAVENUMBER" contains "UM"
        return x, "cm-1"
    if any(k in xu for k in ("MICROM", "MICRON", "UM", "\u00b5M")):
        return 1e4 / np.where(x > 0, x, np.nan), "um"
    if "NANOM" in xu or xu == "NM":
        return 1e7 / np.where(x > 0, x, np.nan), "nm"
    return x, ""


def _to_absorbance_cm1(path: Path, x: np.ndarray, y: np.ndarray, x_units: str, y_units: str,
                       notes: list[str], check_look: bool = True, how: str = "declared",
                       flag: bool = False) -> Spectrum:
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
    x, unit = _x_to_cm1(x, x_units)
    if unit in ("um", "nm") and not np.all(np.isfinite(x)):
        raise SpectrumError(f"{path}: non-positive wavelengths in {x_units!r}")
    if unit == "um":
        notes.append("x converted from micrometres to cm-1 (1e4 / x)")
    elif unit == "nm":
        notes.append("x converted from nanometres to cm-1 (1e7 / x)")
    elif not unit:
        notes.append(f"x units {x_units!r} not recognised; assumed cm-1")
    x_raw = x
    if np.any(np.diff(x) < 0):
        notes.append("x was descending; sorted ascending" if x[0] > x[-1]
                     else "x was unsorted; sorted ascending")
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    hint = "; UV-Vis/NIR data in nm cannot be used" if unit == "nm" else ""
    if unit in ("cm-1", "") and x[0] >= 150 and x[-1] <= 1100:
        hint = "; are these UV-Vis wavelengths in nm? this tool reads mid-IR/Raman in cm-1"
    check_coverage(path, x, hint)
    x, y = note_repeats(x_raw, x, y, notes)
    check_variation(path, x, y)
    yu = y_units.upper()
    if "TRANSMITTANCE" in yu or yu.replace(" ", "") in ("T", "%T"):
        check_declared_transmittance(path, y, "--ir-y" if flag else "the file's y units", notes)
        if "%" in yu or "PERCENT" in yu or y.max() > 1.5:
            y = y / 100.0
            notes.append("transmittance taken as percent (max > 1.5 or '%' in units), "
                         "divided by 100")
        y = -np.log10(np.clip(y, 1e-4, None))
        notes.append("transmittance converted to absorbance = -log10(T), T clipped at 1e-4")
        kind = "absorbance"
    elif "ABSORBANCE" in yu or yu.strip() == "A" or not yu.strip():
        if check_look:
            check_declared_absorbance(path, y, how, notes)
        kind = "absorbance" if yu.strip() else "unknown"
        if not yu.strip() and how != "raman":  # Raman intensity: noted by read_spectrum
            notes.append("y units '' not recognised; intensities kept as they are")
    elif "(MICROMOL/MOL)-1" in yu.replace(" ", "") and "M-1" in yu.replace(" ", ""):
        # NIST quantitative IR: decadic absorption coefficient per (umol/mol) and metre, i.e.
        # absorbance per unit concentration and path length: proportional to absorbance
        kind = "absorbance"
        notes.append(f"y units {y_units!r}: NIST absorption coefficient, proportional to "
                     "absorbance")
    else:
        kind = "unknown"
        notes.append(f"y units {y_units!r} not recognised; intensities kept as they are")
    return Spectrum(x, y, kind, str(path), notes)
