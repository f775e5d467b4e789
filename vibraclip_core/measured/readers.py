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
    """x units a header field names: "NANOMETERS", "MICROMETERS", "1/CM", or "" (none named)."""
    # str.upper() maps both micro signs (U+00B5, U+03BC) to Greek capital mu (U+039C); a
    # Latin-1 'µ' read as UTF-8 arrives as the replacement character U+FFFD
    n = name.upper().replace(" ", "").replace("\u039c", "U").replace("\ufffdM", "UM")
    words = re.findall(r"[A-Z]+", n)
    if "NM" in words or "NANOMET" in n:
        return "NANOMETERS"
    if any(k in n for k in ("UM)", "(UM", "[UM", "UM]", "MICRON", "MICROM")) or n == "UM":
        return "MICROMETERS"
    if "CM" in words or "WAVENUMBER" in n or "RAMANSHIFT" in n or n in ("1/CM", "CM-1"):
        return "1/CM"
    return ""


# a field that is only a unit: an Origin-style units row under the column names
_X_UNIT_FIELD = re.compile(r"^[(\[]?(cm-1|cm\^-1|cm\u22121|1/cm|cm\*\*-1|nm|um|\u00b5m|\u03bcm|"
                           r"microns?)[)\]]?$", re.IGNORECASE)
_Y_UNIT_FIELD = {"%": "%T", "%T": "%T", "T": "TRANSMITTANCE", "A": "ABSORBANCE",
                 "ABS": "ABSORBANCE", "ABS.": "ABSORBANCE"}


def _y_units(name: str) -> str:
    # 'a.u.' / 'arb. units' are arbitrary units, not the 'A' of absorbance
    n = re.sub(r"\bA\.?\s?U\b\.?|\bARB\w*\.?(\s*UNITS?)?", " ", name.upper().strip())
    for key, unit in Y_HEADER_UNITS:
        if key in n.replace(" ", ""):
            return unit
    tokens = re.findall(r"%?[A-Z]+", n)
    return next((Y_HEADER_TOKENS[t] for t in tokens if t in Y_HEADER_TOKENS), "")


# metadata lines 'KEY<tab, comma, ':' or '='>value' above the data (JASCO's text export) that
# name the units and the kind of spectrum
_META_LINE = re.compile(r"^\s*(XUNITS|YUNITS|DATA\s?TYPE)\s*[\t,;:=]\s*(.+?)\s*$", re.IGNORECASE)
_META_KEYS = {"XUNITS": "x", "YUNITS": "y", "DATATYPE": "type"}


def _header_units(path: Path, lines: list[str], sep: str, col: int, notes: list[str],
                  meta: dict[str, str]) -> tuple[str, str]:
    """(x units, y units) that the header lines above the data name: metadata lines (JASCO's
    XUNITS / YUNITS, with DATA TYPE, go into `meta`), a units row of bare units (Origin: 'nm',
    '%'), then the column names, first line first. Units rows that disagree on x are refused;
    x defaults to 1/CM, y to "" (not named)."""
    rows = []
    for ln in lines:
        m = _META_LINE.match(ln)
        if m:
            meta.setdefault(_META_KEYS[m.group(1).upper().replace(" ", "")], m.group(2))
        else:
            rows.append(_split(ln, sep))
    bare_x = [(_x_units(f[col]), f[col]) for f in rows
              if len(f) > col and _X_UNIT_FIELD.match(f[col].replace(" ", ""))]
    named_x = [(_x_units(f[col]), f[col]) for f in rows if len(f) > col and _x_units(f[col])]
    if meta.get("x"):
        bare_x.insert(0, (_x_units(meta["x"]) or "1/CM", f"XUNITS {meta['x']}"))
    if len({u for u, _ in bare_x}) > 1:
        said = ", ".join(f"{f!r} ({u})" for u, f in bare_x)
        raise SpectrumError(f"{path}: the header lines name different x units: {said}; "
                            "correct the header to the units the x values are in")
    chosen = (bare_x or named_x or [("1/CM", "")])[0]
    if bare_x and named_x and named_x[0][0] != chosen[0]:
        notes.append(f"x units {chosen[1]!r} of the units row taken over the column name "
                     f"{named_x[0][1]!r}")
    elif bare_x and chosen[0] != "1/CM":
        notes.append(f"x units {chosen[1]!r} read from the header's units row")
    bare_y = [_Y_UNIT_FIELD.get(f[col + 1].replace(" ", "").strip("()[]").upper(), "")
              for f in rows if len(f) > col + 1]
    named_y = [_y_units(f[col + 1]) for f in rows if len(f) > col + 1]
    if meta.get("y"):
        bare_y.insert(0, _Y_UNIT_FIELD.get(meta["y"].replace(" ", "").upper(), "")
                      or _y_units(meta["y"]))
    y_units = next((u for u in bare_y if u), "") or next((u for u in named_y if u), "")
    if y_units == "%T" and not meta.get("y") and "%T" not in named_y:
        notes.append("y units '%' in the header's units row: read as percent transmittance")
    elif y_units == "TRANSMITTANCE" and any(u == "%T" for u in bare_y):
        y_units = "%T"
    return chosen[0], y_units


def _is_number_field(text: str, decimal: str) -> bool:
    return _float(text.replace(decimal, ".")) is not None


def read_text(path: Path, notes: list[str], meta: dict[str, str] | None = None
              ) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(x, y, x_units, y_units) of a text spectrum; units from the header, "" for y when absent.

    Reads column names, units and comments rows above the data (Origin), 'XUNITS'/'YUNITS'
    metadata lines (JASCO), PerkinElmer ASCII (the data after '#DATA', the units after '#GR')
    and text lines after the data (a footer, left out with a note). `meta` receives what the
    metadata lines say ('x', 'y', 'type': JASCO's DATA TYPE)."""
    meta = {} if meta is None else meta
    encoding = _encoding(path)
    if encoding != "utf-8-sig":
        notes.append(f"read as {encoding.upper()} (byte-order mark)")
    with open(path, encoding=encoding, errors="replace") as fh:
        raw = [ln.strip() for ln in islice(fh, SNIFF_LINES)]
    # PerkinElmer ASCII: numeric header values above a '#DATA' line, unit names after '#GR'
    marker = next((i for i, ln in enumerate(raw) if ln.upper() == "#DATA"), None)
    begin = 0
    if marker is not None:
        begin = marker + 1
        gr = next((i for i, ln in enumerate(raw[:marker]) if ln.upper() == "#GR"), None)
        if gr is not None and gr + 2 < marker:
            meta.setdefault("x", raw[gr + 1])
            meta.setdefault("y", raw[gr + 2])
        notes.append(f"PerkinElmer ASCII: data read after the #DATA line ({marker + 1}); "
                     + (f"units from #GR: x {meta['x']!r}, y {meta['y']!r}" if gr is not None
                        and gr + 2 < marker else "no #GR units"))
    head = [(i, ln) for i, ln in enumerate(raw) if i >= begin and ln and not ln.startswith("#")]
    if not head:
        return np.empty(0), np.empty(0), "1/CM", ""
    tail = head[-5:]
    sep = next((s for s in (";", "\t", ",") if any(s in ln for _, ln in tail)), " ")
    decimal = "," if sep in (";", "\t") and any("," in ln for _, ln in tail) else "."
    if sep == "," and all(len(f) >= 2 and all(_COMMA_NUMBER.match(v) for v in f)
                          for f in (ln.split() for _, ln in tail)):
        sep, decimal = " ", ","  # '574,928  0,00008': space-separated with decimal commas
    if decimal == ",":
        names = {";": "semicolon", "\t": "tab", " ": "space"}
        notes.append(f"decimal commas with {names[sep]}-separated columns")
    # a header line is one whose x field is not a number; "1000,abc" is a bad data row
    numeric = [_is_number_field(_split(ln, sep)[0], decimal) for _, ln in head]
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
        data_rows = [_split(ln, sep) for _, ln in head[first:]]
        index = [_float(r[0].replace(decimal, ".")) for r in data_rows]
        # pandas writes 0, 1, 2, ...; R, Excel and hand-numbered rows start at 1
        start = index[0] if index[0] in (0.0, 1.0) else -1.0
        if index == [start + k for k in range(len(data_rows))]:
            col = 1
    if col:
        notes.append("skipped a leading index column (" + (
            f"header {header[0]!r})" if header else
            f"{start:g}, {start + 1:g}, {start + 2:g}, ...)"))
    x_units, y_units = _header_units(path, [ln for _, ln in head[:first]], sep, col, notes,
                                     meta)
    extra = [f for f in fields[col + 2:] if f]
    if extra:
        names = [h for h in header[col + 2:] if h]
        notes.append(f"{len(extra)} more y column(s) after x and y ignored" + (
            f" ({', '.join(repr(h) for h in names[:4])})" if names else "") +
            ": several scans or samples? only the first y column is used; average them or "
            "keep the one you mean in its own file")
    x, y = _parse(path, sep, decimal, skip, col, encoding, notes)
    return x, y, x_units, y_units


def _footer(path: Path, sep: str, decimal: str, skip: int, encoding: str
            ) -> tuple[list[str], int | None]:
    """(the file's lines, index of the first text line after the data begins or None)."""
    with open(path, encoding=encoding, errors="replace") as fh:
        lines = fh.read().splitlines()
    for i in range(skip, len(lines)):
        ln = lines[i].strip()
        if ln and not ln.startswith("#") and not _is_number_field(_split(ln, sep)[0], decimal):
            return lines, i
    return lines, None


def _parse(path: Path, sep: str, decimal: str, skip: int, col: int, encoding: str,
           notes: list[str] | None = None) -> tuple[np.ndarray, ...]:
    kw = dict(sep=r"\s+" if sep == " " else sep, decimal=decimal, header=None,
              comment="#", engine="c", skip_blank_lines=True)
    source: io.StringIO | Path = path
    try:
        table = pd.read_csv(path, usecols=[col, col + 1], dtype=np.float64, skiprows=skip,
                            encoding=encoding, encoding_errors="replace", **kw)
        x, y = (table[c].to_numpy(np.float64) for c in table.columns)
    except pd.errors.EmptyDataError:
        return np.empty(0), np.empty(0)
    except (ValueError, pd.errors.ParserError):
        # text after the data (a footer of instrument settings): the data end where it begins
        lines, stop = _footer(path, sep, decimal, skip, encoding)
        if stop is not None:
            after = [ln for ln in lines[stop + 1:] if ln.strip()
                     and _is_number_field(_split(ln.strip(), sep)[0], decimal)]
            if after:
                raise SpectrumError(
                    f"{path}: line {stop + 1} ({lines[stop].strip()[:40]!r}) is text inside the "
                    f"data, with {len(after)} numeric rows after it; remove it, or cut the file "
                    "there if what follows is not this spectrum")
            (notes if notes is not None else []).append(
                f"left out {len(lines) - stop} lines after the data, from line {stop + 1} "
                f"({lines[stop].strip()[:40]!r}): a footer")
            source = io.StringIO("\n".join(lines[skip:stop]))
        else:
            source = io.StringIO("\n".join(lines[skip:]))
        try:
            table = pd.read_csv(source, usecols=[col, col + 1], dtype=np.float64, **kw)
            x, y = (table[c].to_numpy(np.float64) for c in table.columns)
            return x, y
        except pd.errors.EmptyDataError:
            return np.empty(0), np.empty(0)
        except (ValueError, pd.errors.ParserError):
            source.seek(0)
        try:
            table = pd.read_csv(source, dtype=str, keep_default_na=False, **kw)
        except pd.errors.ParserError as exc:  # e.g. a row with more columns than the first
            first = str(exc).split(". ")[-1].strip().rstrip(".")
            raise SpectrumError(f"{path}: not a table of x, y columns (rows of different "
                                f"lengths: {first}); export the spectrum as two columns, "
                                "x and y") from None
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
# x declared in nm/um whose values cover this much of 500-4000 as cm-1, and less than the second
# once converted, are wavenumbers under a wrong header ('Wavelength (nm)' over 500-4000)
AXIS_AS_CM1_COVERAGE = 2800.0
AXIS_CONVERTED_COVERAGE = 1750.0
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


def check_data_type(path: Path, data_type: str, raman: bool, label: str = "##DATA TYPE=") -> None:
    """Refuse a file whose data type (JCAMP ##DATA TYPE, JASCO's DATA TYPE) says IR when it was
    given as the Raman spectrum (`raman`), or Raman when given as the IR spectrum."""
    dt = data_type.upper()
    is_raman = "RAMAN" in dt
    is_ir = not is_raman and ("INFRARED" in dt or re.match(r"^\s*(FT-?)?IR\b", dt) is not None)
    if raman and is_ir:
        raise SpectrumError(f"{path}: {label}{data_type.strip()}: an infrared spectrum, given as "
                            "the Raman spectrum (--raman); pass it with --ir")
    if not raman and is_raman:
        raise SpectrumError(f"{path}: {label}{data_type.strip()}: a Raman spectrum, given as "
                            "the IR spectrum (--ir); pass it with --raman")


def check_axis_units(path: Path, x_raw: np.ndarray, x_cm1: np.ndarray, x_units: str,
                     unit: str) -> None:
    """Refuse x declared as wavelengths (nm, um) whose values run as wavenumbers in cm-1 do:
    covering most of 500-4000 as cm-1, little of it once converted."""
    as_cm1, converted = np.sort(x_raw), np.sort(x_cm1)
    if unit in ("nm", "um") and coverage_cm1(as_cm1) >= AXIS_AS_CM1_COVERAGE and \
            coverage_cm1(converted) < AXIS_CONVERTED_COVERAGE:
        name = "nanometres" if unit == "nm" else "micrometres"
        raise SpectrumError(
            f"{path}: the x header says {x_units!r} ({name}), but the values run "
            f"{as_cm1[0]:g}-{as_cm1[-1]:g}, as wavenumbers in cm-1 do; read as {name} they are "
            f"{converted[0]:.0f}-{converted[-1]:.0f} cm-1 and cover "
            f"{coverage_cm1(converted):.0f} cm-1 of {GRID_MIN_CM1:.0f}-{GRID_MAX_CM1:.0f}; if they "
            "are wavenumbers, change the x header to 'wavenumber (cm-1)'")


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
    meta: dict[str, str] = {}
    suffix = path.suffix.lower()
    if suffix in JCAMP_SUFFIXES:
        x, y, x_units, y_units = _read_jcamp(path, notes, meta)
    elif suffix in TEXT_SUFFIXES:
        x, y, x_units, y_units = read_text(path, notes, meta)
    else:
        raise SpectrumError(f"{path}: unknown suffix {suffix!r}; use one of "
                            f"{', '.join(JCAMP_SUFFIXES + TEXT_SUFFIXES)}")
    check_data_type(path, meta.get("type", ""), raman, "##DATA TYPE=" if suffix in
                    JCAMP_SUFFIXES else "DATA TYPE ")
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


def _read_jcamp(path: Path, notes: list[str], meta: dict[str, str] | None = None
                ) -> tuple[np.ndarray, np.ndarray, str, str]:
    import jcamp

    # jcamp >= 1.3 documents jcamp_readfile, but some 1.3.x wheels ship only `readfile`
    reader = getattr(jcamp, "jcamp_readfile", None) or jcamp.readfile
    # jcamp keeps the last of concatenated files without a word: refuse them before parsing
    text = path.read_text(encoding="utf-8", errors="replace")
    check_jcamp_text(path, text)
    captured = io.StringIO()  # jcamp prints its X/Y-check warnings; keep them as notes instead
    try:
        with contextlib.redirect_stdout(captured):
            data = reader(str(path))
    except Exception as exc:  # jcamp raises bare Exception / KeyError on malformed data
        raise SpectrumError(f"{path}: not a readable JCAMP-DX file "
                            f"({type(exc).__name__}: {exc})") from exc
    printed = [line for line in captured.getvalue().splitlines() if line.strip()]
    x_checks = [ln for ln in printed if ln.startswith("X-Check failed")]
    y_checks = [ln for ln in printed if ln.startswith("Y-Check failed")]
    notes.extend(f"jcamp: {line}" for line in printed if line not in x_checks + y_checks)
    if y_checks:
        notes.append(f"jcamp: {len(y_checks)} Y-check failures (a data line's first y differs "
                     f"from the previous line's last: damaged compressed data?), the first: "
                     f"{y_checks[0]}")
    compound = len(data.get("x", ())) == 0 and bool(data.get("children"))
    if x_checks and compound:
        raise SpectrumError(
            f"{path}: the X values that start its data lines disagree with ##FIRSTX/##LASTX "
            f"({len(x_checks)} lines) in a compound (LINK) file; export the spectrum as a "
            "single-block JCAMP-DX file so its x axis can be read from the data")
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
    if meta is not None:
        meta["type"] = str(data.get("data type", data.get("datatype", "")))
    x = np.asarray(data.get("x", ()), dtype=np.float64)
    y = np.asarray(data.get("y", ()), dtype=np.float64)
    if x_checks:
        x = _jcamp_x_from_lines(path, text, data, x, y.size, len(x_checks), notes)
    return x, y, str(data.get("xunits", "")), str(data.get("yunits", ""))


JCAMP_X_TOLERANCE_STEPS = 0.5  # line X values this close to the header's axis: the header's x


def _jcamp_x_from_lines(path: Path, text: str, block: dict, x_header: np.ndarray, n_y: int,
                        n_failed: int, notes: list[str]) -> np.ndarray:
    """x of an (X++(Y..Y)) block from the X values that start its data lines (times XFACTOR),
    when they disagree with ##FIRSTX/##LASTX (jcamp's X-check): a straight line fitted through
    (index of the line's first y, its X). One note; refused when the line X values do not lie
    on a straight line."""
    import jcamp

    starts, counts, in_data, asdf = [], [], False, False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("##"):
            key = s[2:].split("=", 1)[0].strip().upper()
            if in_data and key != "":
                break
            in_data = key == "XYDATA" and "X++(Y..Y)" in s.upper().replace(" ", "")
            continue
        if not in_data or not s or s.startswith("$$"):
            continue
        try:
            vals = jcamp.parse(s)
        except Exception:  # jcamp raises bare Exception for a character it does not know
            continue
        if not vals:
            continue
        if not starts:
            asdf = any(c in jcamp.DIF_digits for c in s)
        starts.append(float(vals[0]))
        # compressed lines after the first repeat the previous line's last y as a check
        counts.append(len(vals) - (2 if asdf and starts[1:] else 1))
    index = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.float64)
    xfactor = float(block.get("xfactor", 1.0) or 1.0)
    line_x = np.asarray(starts) * xfactor
    if line_x.size < 2 or int(np.sum(counts)) != n_y:
        raise SpectrumError(
            f"{path}: the X values that start its data lines disagree with ##FIRSTX="
            f"{block.get('firstx')} / ##LASTX={block.get('lastx')} ({n_failed} lines), and the "
            "data lines cannot be counted to read x from them; fix ##FIRSTX/##LASTX/##NPOINTS")
    slope, intercept = np.polyfit(index, line_x, 1)
    step = abs(slope) if slope else 1.0
    residual = float(np.max(np.abs(intercept + slope * index - line_x)))
    if residual > 2 * step:
        raise SpectrumError(
            f"{path}: the X values that start its data lines disagree with ##FIRSTX/##LASTX and "
            f"do not lie on an evenly spaced axis (off by up to {residual:.3g}); fix the file's "
            "x axis")
    header_at_lines = x_header[index.astype(int)] if x_header.size == n_y else None
    shift = (float(np.max(np.abs(header_at_lines - line_x))) if header_at_lines is not None
             else float("inf"))
    if shift <= JCAMP_X_TOLERANCE_STEPS * step:
        notes.append(f"jcamp: {n_failed} X-check failures, within half a point of the header's "
                     "axis: x from ##FIRSTX/##LASTX")
        return x_header
    x = intercept + slope * np.arange(n_y)
    notes.append(
        f"##FIRSTX={block.get('firstx')} and ##LASTX={block.get('lastx')} disagree with the X "
        f"values that start its {len(starts)} data lines ({x[0]:g} to {x[-1]:g}): x read from "
        "the data lines" + (f" (the header's axis is off by up to {shift:.0f} there)"
                            if np.isfinite(shift) else ""))
    return x


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
    x_declared = x
    x, unit = _x_to_cm1(x, x_units)
    if unit in ("um", "nm") and not np.all(np.isfinite(x)):
        raise SpectrumError(f"{path}: non-positive wavelengths in {x_units!r}")
    check_axis_units(path, x_declared, x, x_units, unit)
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
