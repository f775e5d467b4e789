"""What `vibraclip identify` ranks: a SMILES file's candidates, or all of QM9.

A candidate set names its molecules only; `library_cache.build_library` turns it into an
embedded `CandidateLibrary` (SMILES featurised here, QM9 geometries from the shared conformer
cache of `qm9_candidates`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .sources import QM9_SIZE, qm9pack_csv_paths
from .qm9_candidates import FORMAT_VERSION as QM9_CONFORMER_FORMAT

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
    cache) or the SMILES of a .smi/.txt/.csv file's first column."""
    if str(spec).lower() == "qm9":
        return QM9Candidates()
    path = Path(spec)
    if path.suffix.lower() not in SMILES_SUFFIXES:
        raise IdentifyError(f"{path}: candidate library must be 'qm9' or a file ending in "
                            f"{', '.join(SMILES_SUFFIXES)} with one SMILES per line")
    if not path.is_file():
        raise IdentifyError(f"{path}: candidate library file not found")
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        first = re.split(r"[,\s;]+", line, maxsplit=1)[0].strip("\"'")
        if not out and first.lower() in ("smiles", "smi"):  # a CSV header
            continue
        out.append(first)
    if not out:
        raise IdentifyError(f"{path}: no SMILES found (one per line, '#' starts a comment)")
    return out
