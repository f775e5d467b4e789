"""Checks that refuse degenerate measured spectra or note what is odd about them.

Each check takes the file path (for the message), ascending x in cm-1 and y, and either raises
SpectrumError naming the file and the fix or appends to notes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .spectra import GRID_MAX_CM1, GRID_MIN_CM1, SpectrumError

MIN_SPECTRUM_POINTS = 10
MIN_COVERAGE_CM1 = 1000.0  # of the 3500 cm-1 model range; less is too little to identify from
# transmittance look: where the median (baseline) sits in the y range; on the 68 JCAMP files of
# the jcamp sdist, transmittance gives 0.70-0.97 and absorbance at most 0.20
T_LOOK_REFUSE = 0.6
T_LOOK_WARN = 0.4
# declared transmittance whose median sits this low in its range has its baseline at the minimum,
# bands pointing up: absorbance (or Raman), which -log10 would turn inside out
A_LOOK_REFUSE = 0.2
PERCENT_T_MAX = 110.0  # %T a little above 100 is baseline noise; far above, not a transmittance
# JCAMP x units and data types of spectra that are not vibrational (NMR, mass spectra)
NON_VIBRATIONAL_XUNITS = ("HZ", "PPM", "M/Z")
NON_VIBRATIONAL_TYPES = ("NMR", "MASS")
_JCAMP_TITLE = re.compile(r"^##\s*TITLE\s*=", re.IGNORECASE)
_JCAMP_END = re.compile(r"^##\s*END\s*=", re.IGNORECASE)


def coverage_cm1(x: np.ndarray) -> float:
    """Width (cm-1) of GRID_MIN_CM1-GRID_MAX_CM1 spanned by ascending x."""
    return max(0.0, min(float(x[-1]), GRID_MAX_CM1) - max(float(x[0]), GRID_MIN_CM1))


def check_coverage(path: Path, x: np.ndarray, hint: str = "") -> None:
    """Refuse x that covers less than MIN_COVERAGE_CM1 of the model range or few points in it."""
    inside = int(np.count_nonzero((x >= GRID_MIN_CM1) & (x <= GRID_MAX_CM1)))
    cover = coverage_cm1(x)
    if inside < MIN_SPECTRUM_POINTS or cover < MIN_COVERAGE_CM1:
        raise SpectrumError(
            f"{path}: x range {x.min():.1f}-{x.max():.1f} cm-1 covers {cover:.0f} cm-1 with "
            f"{inside} points of {GRID_MIN_CM1:.0f}-{GRID_MAX_CM1:.0f} cm-1; need at least "
            f"MIN_COVERAGE_CM1={MIN_COVERAGE_CM1:.0f} cm-1 and {MIN_SPECTRUM_POINTS} points; "
            f"check the x units{hint}")


def check_variation(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Refuse y without variation inside the model range."""
    inside = y[(x >= GRID_MIN_CM1) & (x <= GRID_MAX_CM1)]
    if inside.size and not np.ptp(inside) > 0:
        raise SpectrumError(f"{path}: y is constant ({inside[0]:g}) over "
                            f"{GRID_MIN_CM1:.0f}-{GRID_MAX_CM1:.0f} cm-1; not a spectrum")


def transmittance_look(y: np.ndarray) -> float:
    """Where the median lies in the y range: ~0 for absorbance (baseline low), ~1 for T."""
    span = float(np.ptp(y))
    return float((np.median(y) - y.min()) / span) if span > 0 else 0.0


def check_declared_absorbance(path: Path, y: np.ndarray, how: str, notes: list[str]) -> None:
    """Refuse (or warn) when y declared or assumed absorbance looks like transmittance.

    Rule: y within 0-100 (T in 0-1 or %T) and the median in the top 40% of the range
    (a baseline near the maximum, bands pointing down) -> refuse; top 60% -> loud note.
    """
    if y.min() < -0.01 * max(1.0, float(y.max())) or y.max() > 101.0:
        return
    look = transmittance_look(y)
    kind = "percent-transmittance" if y.max() > 1.5 else "transmittance"
    if look > T_LOOK_REFUSE:
        raise SpectrumError(
            f"{path}: y is {how} absorbance but looks like {kind} (values within 0-100, "
            f"baseline near the maximum: median at {look:.0%} of the range); declare the y "
            f"units with --ir-y {kind} (y_kind='{kind}'), or --ir-y absorbance to keep them")
    if look > T_LOOK_WARN:
        notes.append(f"WARNING: y {how} absorbance, but its median lies at {look:.0%} of the "
                     f"range, as in {kind}; if so, pass --ir-y {kind}")


def check_declared_transmittance(path: Path, y: np.ndarray, by: str, notes: list[str]) -> None:
    """Refuse y declared transmittance (`by`: the flag or the file's units) that cannot be one.

    Rule: negative values, values above PERCENT_T_MAX (even as %T), or the median in the bottom
    A_LOOK_REFUSE of the range (a baseline at the minimum, as in absorbance) -> refuse.
    """
    fix = "declare the y units with --ir-y absorbance (y_kind='absorbance') if they are absorbances"
    if y.min() < -0.01 * max(1.0, float(y.max())) or y.max() > PERCENT_T_MAX:
        raise SpectrumError(
            f"{path}: y is declared transmittance by {by}, but its values run from {y.min():g} "
            f"to {y.max():g}, outside 0-1 (T) and 0-100 (%T); {fix}, or check the file")
    look = transmittance_look(y)
    if look < A_LOOK_REFUSE:
        raise SpectrumError(
            f"{path}: y is declared transmittance by {by}, but looks like absorbance (baseline "
            f"near the minimum, bands pointing up: median at {look:.0%} of the range); {fix}")
    if look < T_LOOK_WARN:
        notes.append(f"WARNING: y declared transmittance by {by}, but its median lies at "
                     f"{look:.0%} of the range, low for a transmittance baseline; if the bands "
                     "point up, pass --ir-y absorbance")


def note_repeats(x_raw: np.ndarray, x: np.ndarray, y: np.ndarray,
                 notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Note restarts of x (several scans) and duplicated x; average duplicates (x ascending)."""
    steps = np.sign(np.diff(x_raw))
    back = int(min(np.count_nonzero(steps > 0), np.count_nonzero(steps < 0)))
    if back:
        notes.append(f"x goes back {back} times against its direction: scans or sections "
                     "interleaved or concatenated? merged by wavenumber")
    ux, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if ux.size == x.size:
        return x, y
    n_dup = int(x.size - ux.size)
    mean = np.bincount(inverse, weights=y) / counts
    spread = np.zeros_like(mean)
    np.maximum.at(spread, inverse, np.abs(y - mean[inverse]))
    span = float(np.ptp(y)) or 1.0
    worst = int(np.argmax(spread))
    msg = (f"{n_dup} duplicated x values ({int(np.count_nonzero(counts > 1))} wavenumbers "
           "measured more than once: two scans?); their y values were averaged")
    if spread[worst] > 0.1 * span:
        msg += (f"; WARNING: at {ux[worst]:.1f} cm-1 they disagree by {spread[worst] / span:.0%} "
                "of the y range (a spike?), which can set the min-max scale")
    notes.append(msg)
    return ux, mean


def check_jcamp_text(path: Path, text: str) -> None:
    """Refuse JCAMP-DX text holding several files one after another (a ##TITLE= after the
    ##END= that closes the first block); the blocks of a compound (LINK) file nest inside it."""
    depth = closed = 0
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if _JCAMP_TITLE.match(line):
            if depth == 0 and closed:
                raise SpectrumError(
                    f"{path}: line {n}: a second JCAMP-DX file (##TITLE=) begins after the "
                    "##END= of the first; these are concatenated files: split them into one "
                    "file per spectrum and pass the one to identify")
            depth += 1
        elif _JCAMP_END.match(line) and depth:
            depth -= 1
            closed += depth == 0


def check_jcamp_block(path: Path, block: dict) -> None:
    """Refuse a parsed JCAMP block that is not a continuous IR/Raman spectrum: NMR or mass
    spectra (x in Hz, ppm, m/z) and peak tables (##PEAK TABLE=, a list of band positions)."""
    xunits = str(block.get("xunits", "")).strip().upper()
    dtype = str(block.get("data type", block.get("datatype", ""))).upper()
    if xunits in NON_VIBRATIONAL_XUNITS or any(k in dtype for k in NON_VIBRATIONAL_TYPES):
        raise SpectrumError(
            f"{path}: x units {xunits!r}" + (f", data type {dtype!r}" if dtype else "") +
            ": not an IR or Raman spectrum in cm-1 (NMR or mass spectrum?); give an IR or "
            "Raman spectrum with x in 1/CM, MICROMETERS or NANOMETERS")
    if "peak table" in block and not ("xydata" in block or "xypoints" in block):
        n = len(block.get("x", ()))
        raise SpectrumError(
            f"{path}: a ##PEAK TABLE= of {n} peaks, not a continuous spectrum; peak lists "
            "cannot be compared with the model's spectra: export the measured spectrum "
            "itself (##XYDATA= or ##XYPOINTS=)")
