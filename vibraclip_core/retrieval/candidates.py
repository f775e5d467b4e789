"""What `vibraclip identify` ranks: a SMILES file's candidates, or all of QM9.

A candidate set names its molecules only; `library_cache.build_library` turns it into an
embedded `CandidateLibrary` (SMILES featurised here, QM9 geometries from the shared conformer
cache of `qm9_candidates`).
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vibraclip_core.data.molecules import is_smiles
from vibraclip_core.data.qm9_candidates import FORMAT_VERSION as QM9_CONFORMER_FORMAT
from vibraclip_core.data.sources import QM9_SIZE, qm9pack_csv_paths

SMILES_SUFFIXES = (".smi", ".txt", ".csv")


class IdentifyError(ValueError):
    """A query or library that cannot be identified as given; the message says what to change."""


@dataclass(eq=False)
class QM9Candidates:
    """QM9's structures at these `sources.qm9_order()` positions (default: all 130,831), with
    the geometries of the shared QM9 conformer cache (`qm9_candidates`), the ones the book uses."""

    positions: np.ndarray = field(default_factory=lambda: np.arange(QM9_SIZE))

    def __len__(self) -> int:
        return len(self.positions)

    def key(self) -> list:
        """What names this candidate set in a library cache key (no QM9 file is read)."""
        pos = np.ascontiguousarray(self.positions, dtype=np.int64)
        return ["qm9", QM9_CONFORMER_FORMAT, len(pos), hashlib.sha256(pos.tobytes()).hexdigest()]


def qm9_smiles() -> list[str]:
    """All 130,831 QM9 SMILES in qm9pack's order."""
    return [str(s) for p in qm9pack_csv_paths()
            for s in pd.read_csv(p, usecols=["SMILES"])["SMILES"]]


def load_candidates(spec: str | Path) -> list[str] | QM9Candidates:
    """The candidate set: 'qm9' (all 130,831 QM9 structures, geometries from the shared conformer
    cache) or the SMILES of a file, in file order ('#' starts a comment line):

    - .smi: 'SMILES name' lines (Daylight): the SMILES ends at the first space, tab, comma or
      semicolon; a line whose space-separated name also reads as SMILES ('C C O') is an error,
      since it is more likely a SMILES with spaces than a molecule named 'C O'.
    - .txt: one SMILES per line, optionally followed by a tab-, comma- or semicolon-separated
      name; a space inside the SMILES is an error naming the line.
    - .csv (',', ';' or tab): the column named 'smiles' (any case; else the first whose name
      contains 'smiles') when there is a header, else the first column; a header without such a
      column, or a first column that holds no SMILES where another does, is an error. A space
      inside a SMILES cell is an error naming the line.
    """
    if str(spec).lower() == "qm9":
        return QM9Candidates()
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix not in SMILES_SUFFIXES:
        raise IdentifyError(f"{path}: candidate library must be 'qm9' or a file ending in "
                            f"{', '.join(SMILES_SUFFIXES)} with one SMILES per line")
    if not path.is_file():
        raise IdentifyError(f"{path}: candidate library file not found")
    lines = [(n, line.strip()) for n, line in
             enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
             if line.strip() and not line.strip().startswith("#")]
    out = _csv_smiles(path, lines) if suffix == ".csv" else _line_smiles(path, lines, suffix)
    if not out:
        raise IdentifyError(f"{path}: no SMILES found (one per line, '#' starts a comment)")
    return out


def _line_smiles(path: Path, lines: list[tuple[int, str]], suffix: str) -> list[str]:
    out = []
    for n, line in lines:
        field = re.split(r"[\t,;]", line, maxsplit=1)[0].strip().strip("\"'")
        words = field.split()
        if not out and words and words[0].lower() in ("smiles", "smi"):  # a header line
            continue
        if len(words) > 1 and (suffix != ".smi" or all(is_smiles(w) for w in words[1:])):
            fix = ("separate a name from the SMILES with a tab" if suffix == ".smi" else
                   "use a .smi file for 'SMILES name' lines")
            raise IdentifyError(f"{path}: line {n}: {field!r} has spaces inside a SMILES; remove "
                                f"them (SMILES have none), or {fix}")
        out.append(words[0] if words else "")
    return out


def _csv_smiles(path: Path, lines: list[tuple[int, str]]) -> list[str]:
    if not lines:
        return []
    delimiter = next((d for d in ",;\t" if d in lines[0][1]), ",")
    rows = [(n, [c.strip() for c in next(csv.reader([line], delimiter=delimiter))])
            for n, line in lines]
    rows = [(n, cells) for n, cells in rows if any(cells)]  # ',,,' rows of a spreadsheet
    head = rows[0][1] if rows else []
    lower = [c.lower() for c in head]
    named = [i for i, c in enumerate(lower) if c in ("smiles", "smi")] or \
        [i for i, c in enumerate(lower) if "smiles" in c]
    if named:
        col, rows = named[0], rows[1:]
    elif head and not any(is_smiles(c) for c in head):  # a header without a SMILES column
        if len(rows) < 2 or not is_smiles(rows[1][1][0]):
            raise IdentifyError(f"{path}: the header {head} has no 'smiles' column and the first "
                                "column holds no SMILES; name the SMILES column 'smiles'")
        col, rows = 0, rows[1:]
    elif head and not is_smiles(head[0]):
        other = next(i for i, c in enumerate(head) if is_smiles(c))
        raise IdentifyError(f"{path}: line {lines[0][0]}: the first column {head[0]!r} is no "
                            f"SMILES but column {other + 1} ({head[other]!r}) is; add a header "
                            "line that names the SMILES column 'smiles'")
    else:
        col = 0
    out = []
    for n, cells in rows:
        cell = cells[col] if col < len(cells) else ""  # an empty cell is skipped as 'empty'
        if len(cell.split()) > 1:
            raise IdentifyError(f"{path}: line {n}: {cell!r} has spaces inside a SMILES; remove "
                                "them (SMILES have none)")
        out.append(cell)
    return out
