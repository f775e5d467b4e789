"""Readers of measured spectra: JCAMP-DX (.jdx/.dx/.jcamp) and two-column text (.csv/.txt/.tsv).

Every reader returns a `spectra.Spectrum` with ascending wavenumbers in cm-1 and, where the units
say so, absorbance (transmittance converted); what was converted or assumed is listed in its
notes. `spectra.spectrum_to_model_input` puts it onto the model grid.

Three parts, in this order: two-column text (sniff header, separator, decimal comma and a leading
index column from the first lines, then parse the numbers with pandas' C parser); the checks that
refuse degenerate or mislabelled spectra (each takes the file path for its message, ascending x in
cm-1 and y, and raises SpectrumError naming the file and the fix or appends to notes); and the
readers themselves.
"""

from __future__ import annotations

import contextlib
import io
import re
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd

from vibraclip_core.config.choices import Y_KINDS
from vibraclip_core.data.spectra import GRID_MAX_CM1, GRID_MIN_CM1, Spectrum, SpectrumError

# --- two-column text ---

SNIFF_LINES = 200
# header words -> y units understood by _to_absorbance_cm1 below
Y_HEADER_UNITS = (("%T", "%T"), ("PERCENT", "%T"), ("TRANSMITTANCE", "TRANSMITTANCE"),
                  ("ABSORBANCE", "ABSORBANCE"))
Y_HEADER_TOKENS = {"T": "TRANSMITTANCE", "A": "ABSORBANCE", "ABS": "ABSORBANCE"}


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _split(line: str, sep: str) -> list[str]:
    # quotes: R's write.csv quotes the header and the row names ("1", "2", ...)
    return [f.strip().strip('"\'') for f in (line.split(sep) if sep != " " else line.split())]


def _encoding(path: Path) -> str:
    """'utf-16' for a file that starts with a UTF-16 byte-order mark (Windows exports)."""
    with open(path, "rb") as fh:
        bom = fh.read(2)
    return "utf-16" if bom in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"


_COMMA_NUMBER = re.compile(r"^[-+]?\d*,\d+([eE][-+]?\d+)?$")


def _x_units(name: str) -> str:
    # str.upper() maps both micro signs (U+00B5, U+03BC) to Greek capital mu (U+039C); a
    # Latin-1 'µ' read as UTF-8 arrives as the replacement character U+FFFD
    n = name.upper().replace(" ", "").replace("\u039c", "U").replace("\ufffdM", "UM")
    if "NM" in re.findall(r"[A-Z]+", n) or "NANOMET" in n:
        return "NANOMETERS"
    if any(k in n for k in ("UM)", "(UM", "MICRON", "MICROM")) or n == "UM":
        return "MICROMETERS"
    return "1/CM"


def _y_units(name: str) -> str:
    # 'a.u.' / 'arb. units' are arbitrary units, not the 'A' of absorbance
    n = re.sub(r"\bA\.?\s?U\b\.?|\bARB\w*\.?(\s*UNITS?)?", " ", name.upper().strip())
    for key, unit in Y_HEADER_UNITS:
        if key in n.replace(" ", ""):
            return unit
    tokens = re.findall(r"%?[A-Z]+", n)
    return next((Y_HEADER_TOKENS[t] for t in tokens if t in Y_HEADER_TOKENS), "")


def read_text(path: Path, notes: list[str]) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(x, y, x_units, y_units) of a text spectrum; units from the header, "" for y when absent."""
    encoding = _encoding(path)
    if encoding != "utf-8-sig":
        notes.append(f"read as {encoding.upper()} (byte-order mark)")
    with open(path, encoding=encoding, errors="replace") as fh:
        head = [(i, ln.strip()) for i, ln in enumerate(islice(fh, SNIFF_LINES))]
    head = [(i, ln) for i, ln in head if ln and not ln.startswith("#")]
    if not head:
        return np.empty(0), np.empty(0), "1/CM", ""
    sep = next((s for s in (";", "\t", ",") if any(s in ln for _, ln in head[-5:])), " ")
    decimal = "," if sep in (";", "\t") and any("," in ln for _, ln in head[-5:]) else "."
    if sep == "," and all(len(f) >= 2 and all(_COMMA_NUMBER.match(v) for v in f)
                          for f in (ln.split() for _, ln in head[-5:])):
        sep, decimal = " ", ","  # '574,928  0,00008': space-separated with decimal commas
    if decimal == ",":
        names = {";": "semicolon", "\t": "tab", " ": "space"}
        notes.append(f"decimal commas with {names[sep]}-separated columns")
    # a header line is one whose x field is not a number; "1000,abc" is a bad data row
    numeric = [_float(_split(ln, sep)[0].replace(decimal, ".")) is not None for _, ln in head]
    first = next((k for k, ok in enumerate(numeric) if ok), len(head))
    if first == len(head):
        raise SpectrumError(f"{path}: no numeric x, y rows in the first {SNIFF_LINES} lines; "
                            "expected two columns of numbers (wavenumber, intensity)")
    header = _split(head[first - 1][1], sep) if first else []
    for _, ln in head[:first]:
        notes.append(f"skipped header line {ln!r}")
    skip = head[first][0]
    fields = _split(head[first][1], sep)
    col, start = 0, 0.0
    if header and header[0] in ("", "Unnamed: 0", "index"):
        col = 1
    elif not header and len(fields) >= 3:
        rows = [_split(ln, sep) for _, ln in head[first:]]
        index = [_float(r[0].replace(decimal, ".")) for r in rows]
        # pandas writes 0, 1, 2, ...; R, Excel and hand-numbered rows start at 1
        start = index[0] if index[0] in (0.0, 1.0) else -1.0
        if index == [start + k for k in range(len(rows))]:
            col = 1
    if col:
        notes.append("skipped a leading index column (" + (
            f"header {header[0]!r})" if header else
            f"{start:g}, {start + 1:g}, {start + 2:g}, ...)"))
    x_units = _x_units(header[col]) if len(header) > col else "1/CM"
    y_units = _y_units(header[col + 1]) if len(header) > col + 1 else ""
    x, y = _parse(path, sep, decimal, skip, col, encoding)
    return x, y, x_units, y_units


def _parse(path: Path, sep: str, decimal: str, skip: int, col: int, encoding: str
           ) -> tuple[np.ndarray, ...]:
    kw = dict(sep=r"\s+" if sep == " " else sep, decimal=decimal, header=None, skiprows=skip,
              comment="#", engine="c", encoding=encoding, encoding_errors="replace",
              skip_blank_lines=True)
    try:
        table = pd.read_csv(path, usecols=[col, col + 1], dtype=np.float64, **kw)
        x, y = (table[c].to_numpy(np.float64) for c in table.columns)
    except pd.errors.EmptyDataError:
        return np.empty(0), np.empty(0)
    except (ValueError, pd.errors.ParserError):
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, **kw)
        except pd.errors.ParserError as exc:  # e.g. a row with more columns than the first
            raise SpectrumError(f"{path}: not a table of x, y columns ({exc})") from None
        if table.shape[1] < col + 2:
            raise SpectrumError(f"{path}: data rows have fewer than {col + 2} columns; "
                                "expected x, y") from None
        x, y = (pd.to_numeric(table[c].str.replace(decimal, "."), errors="coerce")
                .to_numpy(np.float64) for c in table.columns[col:col + 2])
    short = np.flatnonzero(np.isnan(y) & np.isfinite(x))
    if short.size and np.all(np.isnan(y)):
        raise SpectrumError(f"{path}: data row {short[0] + 1} has fewer than 2 columns; "
                            "expected x, y")
    return x, y


# --- checks ---

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


# --- readers ---

Y_KIND_UNITS = {"absorbance": "ABSORBANCE", "transmittance": "TRANSMITTANCE",
                "percent-transmittance": "%T"}  # y_kind -> the y units it declares
assert tuple(Y_KIND_UNITS) == Y_KINDS, "choices.YKind and Y_KIND_UNITS name the same kinds"
JCAMP_SUFFIXES = (".jdx", ".dx", ".jcamp")
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")


def read_spectrum(path: str | Path, y_kind: str | None = None, raman: bool = False
                  ) -> Spectrum:
    """Read a JCAMP-DX (.jdx/.dx/.jcamp) or two-column text (.csv/.txt/.tsv) spectrum.

    x is converted to ascending cm-1 (from micrometres or nanometres), transmittance to
    absorbance. y_kind ("absorbance", "transmittance", "percent-transmittance") declares the y
    units and wins over the file; None detects them from ##YUNITS or the CSV header, assuming
    absorbance when there is none. y declared or assumed absorbance that looks like
    transmittance is refused (see check_declared_absorbance), as is y declared
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
