"""Two-column text spectra (.csv/.txt/.tsv): sniff header, separator, decimal comma and a leading
index column from the first lines, then parse the numbers with pandas' C parser.

Returns raw x, y and the units named in the header ("" when none); readers.py converts them.
"""

from __future__ import annotations

import re
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd

from .spectra import SpectrumError

SNIFF_LINES = 200
# header words -> y units understood by readers._to_absorbance_cm1
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
