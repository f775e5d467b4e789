"""Reader for the QM9S release (the paper's data): per-molecule CSVs plus broadened IR/Raman tables.

Layout: folder/qm9s_csv/*.csv (one per molecule; the first data row holds QM9S index, QM9 index,
SMILES, atom count) and folder/ir_broaden.csv + folder/raman_broaden.csv (one row per molecule:
QM9S index, then 3501 intensities on 500-4000 cm-1). Rows are paired with molecules by QM9S
index, never by file or row order.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from vibraclip_core.data.spectra import FINE_POINTS, fine_to_model_input

log = logging.getLogger(__name__)

# some copies of the release spell the tables "boraden"
TABLE_NAMES = {
    "ir": ("ir_broaden.csv", "ir_boraden.csv"),
    "raman": ("raman_broaden.csv", "raman_boraden.csv"),
}
MOLECULE_DIR = "qm9s_csv"
READ_CHUNK_ROWS = 8192


@dataclass
class QM9SData:
    """QM9S molecules paired across sources, sorted by QM9S index; spectra on fine_grid()."""

    qm9s_index: np.ndarray  # (n,) int64
    qm9_index: np.ndarray  # (n,) int64
    smiles: list[str]
    n_atoms: np.ndarray  # (n,) int64
    ir_fine: np.ndarray  # (n, 3501) float32, 500-4000 cm-1 in 1 cm-1 steps
    raman_fine: np.ndarray  # (n, 3501) float32
    report: dict[str, int] = field(default_factory=dict)


def _as_int(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if np.isfinite(value) and value == int(value) else None


def _is_text(field_text: str) -> bool:
    try:
        float(field_text)
    except ValueError:
        return True
    return False


def read_molecule_header(path: Path) -> tuple[int, int, str, int]:
    """(qm9s_index, qm9_index, smiles, n_atoms) from the first data row of one molecule CSV.

    A header line and a leading row-number column (as pandas writes them) are tolerated: the first
    of the first two lines holding int, int, non-numeric text, int in a row is taken.
    """
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        lines = [row for _, row in zip(range(2), csv.reader(fh))]
    for row in lines:
        fields = [f.strip() for f in row]
        for k in range(len(fields) - 3):
            a, b, smiles, n = fields[k : k + 4]
            if None not in (_as_int(a), _as_int(b), _as_int(n)) and smiles and _is_text(smiles):
                return _as_int(a), _as_int(b), smiles, _as_int(n)
    raise ValueError(f"{path}: no row 'QM9S index, QM9 index, SMILES, atom count' "
                     "in the first two lines")


def _find_table(folder: Path, kind: str) -> Path:
    for name in TABLE_NAMES[kind]:
        if (folder / name).is_file():
            return folder / name
    tried = ", ".join(str(folder / n) for n in TABLE_NAMES[kind])
    raise FileNotFoundError(f"{folder}: no {kind} spectrum table; looked for {tried}")


def _count_lines(path: Path) -> int:
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def _short_rows(path: Path, n_cols: int, has_header: bool, n_rows: int) -> dict[int, int]:
    """{data row: line number} of the rows with fewer than n_cols fields (pandas pads them with
    NaN); blank lines are skipped as pandas skips them."""
    short, row = {}, 0
    with open(path, "rb") as fh:
        for line_no, line in enumerate(fh, 1):
            if (has_header and line_no == 1) or not line.strip():
                continue
            if line.count(b",") + 1 < n_cols and row < n_rows:
                short[row] = line_no
            row += 1
    return short


def read_spectrum_table(path: Path) -> tuple[np.ndarray, np.ndarray, int, list[int]]:
    """(index (n,) int64, spectra (n, 3501) float32, n rows dropped for NaN/inf, line numbers of
    the short rows dropped: fewer than 3502 fields, as a truncated file ends) of one table."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline().strip().split(",")
    n_cols = 1 + FINE_POINTS
    if len(first) != n_cols:
        raise ValueError(f"{path}: {len(first)} columns in the first line; expected {n_cols} "
                         f"(index + {FINE_POINTS} intensities on 500-4000 cm-1)")
    has_header = _as_int(first[0]) is None or any(_is_text(v) for v in first[1:])
    names = [f"c{i}" for i in range(n_cols)]
    dtype = {names[0]: np.float64, **{c: np.float32 for c in names[1:]}}
    # preallocate and fill chunk by chunk so peak memory is ~one table plus one chunk
    n_rows = _count_lines(path) - int(has_header)
    index = np.empty(n_rows, dtype=np.float64)
    values = np.empty((n_rows, FINE_POINTS), dtype=np.float32)
    filled = 0
    reader = pd.read_csv(path, header=None, names=names, skiprows=int(has_header), dtype=dtype,
                         chunksize=READ_CHUNK_ROWS, engine="c")
    try:
        for chunk in reader:
            stop = filled + len(chunk)
            index[filled:stop] = chunk[names[0]].to_numpy()
            values[filled:stop] = chunk[names[1:]].to_numpy(dtype=np.float32)
            filled = stop
    except (ValueError, pd.errors.ParserError) as exc:
        line = filled + int(has_header) + 1
        raise ValueError(f"{path}: could not parse the rows from line {line} on: {exc}") from exc
    index, values = index[:filled], values[:filled]
    finite = np.isfinite(values).all(axis=1) & np.isfinite(index)
    if not np.all(index[finite] == np.round(index[finite])):
        raise ValueError(f"{path}: first column holds non-integer values; expected the QM9S index")
    short = _short_rows(path, n_cols, has_header, filled) if not finite.all() else {}
    n_bad = int(np.count_nonzero(~finite)) - len(short)
    if not finite.all():
        index, values = index[finite], values[finite]
    return index.astype(np.int64), values, n_bad, sorted(short.values())


def read_qm9s(folder: str | Path) -> QM9SData:
    """Molecules present in all three QM9S sources, paired by QM9S index; report counts the rest."""
    folder = Path(folder)
    tables = {kind: _find_table(folder, kind) for kind in TABLE_NAMES}
    mol_dir = folder / MOLECULE_DIR
    if not mol_dir.is_dir():
        raise FileNotFoundError(f"{mol_dir}: folder of per-molecule CSVs not found")
    report: dict[str, int] = {}
    molecules: dict[int, tuple[int, str, int]] = {}
    files = sorted(mol_dir.glob("*.csv"))
    n_malformed = n_dup = 0
    for path in tqdm(files, desc="QM9S molecule files", unit="file", disable=len(files) < 1000):
        try:
            qm9s, qm9, smiles, n_atoms = read_molecule_header(path)
        except (ValueError, OSError, csv.Error) as exc:
            n_malformed += 1
            log.warning("skipping malformed molecule file %s: %s", path, exc)
            continue
        if qm9s in molecules:
            n_dup += 1
            log.warning("%s: QM9S index %d already seen; keeping the first file", path, qm9s)
            continue
        molecules[qm9s] = (qm9, smiles, n_atoms)
    report.update(molecule_files=len(files), molecule_files_malformed=n_malformed,
                  molecule_duplicates=n_dup)

    spectra: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for kind, path in tables.items():
        index, values, n_bad, short = read_spectrum_table(path)
        uniq, first = np.unique(index, return_index=True)
        report[f"{kind}_rows"] = int(index.size + n_bad + len(short))
        report[f"{kind}_rows_nonfinite"] = n_bad
        report[f"{kind}_rows_short"] = len(short)
        if short:
            log.warning("%s: dropped %d short rows (fewer than %d fields; truncated?) at line%s "
                        "%s", path, len(short), 1 + FINE_POINTS, "s" if len(short) > 1 else "",
                        ", ".join(map(str, short[:5])) + (", ..." if len(short) > 5 else ""))
        report[f"{kind}_duplicates"] = int(index.size - uniq.size)
        if n_bad or index.size != uniq.size:
            log.warning("%s: dropped %d rows with NaN/inf and %d repeated indices (first kept)",
                        path, n_bad, index.size - uniq.size)
        if index.size != uniq.size:
            first = np.sort(first)
            index, values = index[first], values[first]
        spectra[kind] = (index, values)

    sources = {"molecule_csv": np.fromiter(molecules, dtype=np.int64, count=len(molecules)),
               "ir": spectra["ir"][0], "raman": spectra["raman"][0]}
    everything = np.unique(np.concatenate(list(sources.values())))
    keep = everything
    for name, idx in sources.items():
        missing = np.setdiff1d(everything, idx)
        report[f"missing_{name}"] = int(missing.size)
        keep = np.intersect1d(keep, idx)
        if missing.size:
            log.warning("%s: %d QM9S indices present elsewhere are missing from %s (e.g. %s)",
                        folder, missing.size, name, missing[:5].tolist())
    report["paired"] = int(keep.size)
    log.info("%s: paired %d molecules; report %s", folder, keep.size, report)

    def rows(kind: str) -> np.ndarray:
        index, values = spectra[kind]
        pos = pd.Index(index).get_indexer(keep)
        if pos.size == index.size and np.array_equal(pos, np.arange(pos.size)):
            return values  # already aligned; avoid copying a multi-GB table
        return values[pos]

    meta = [molecules[int(i)] for i in keep]
    return QM9SData(
        qm9s_index=keep.astype(np.int64),
        qm9_index=np.array([m[0] for m in meta], dtype=np.int64),
        smiles=[m[1] for m in meta],
        n_atoms=np.array([m[2] for m in meta], dtype=np.int64),
        ir_fine=rows("ir"),
        raman_fine=rows("raman"),
        report=report,
    )


def is_qm9s_folder(path: Path) -> bool:
    """True for a QM9S release folder (qm9s_csv/ plus broadened IR/Raman tables)."""
    return (Path(path) / MOLECULE_DIR).is_dir()


def qm9s_digest(folder: Path) -> str:
    """12 hex digits identifying a QM9S folder's tables for the processed-data cache key."""
    # the QM9S tables are GB-sized: identify them by name, size and mtime instead of content
    h = hashlib.sha256()
    for p in sorted(Path(folder).glob("*.csv")):
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(str(len(list((Path(folder) / MOLECULE_DIR).glob("*.csv")))).encode())
    return h.hexdigest()[:12]


def qm9s_model_inputs(folder: Path, n_molecules: int | None
                      ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """(smiles, QM9 index (n,), IR (n, 1750), Raman (n, 1750) model inputs, report) of the first
    `n_molecules` (None: all) paired QM9S molecules."""
    q = read_qm9s(folder)
    report = {"molecules_in_qm9s": len(q.smiles), **{f"qm9s_{k}": v for k, v in q.report.items()}}
    rows = np.arange(len(q.smiles) if n_molecules is None else min(n_molecules, len(q.smiles)))
    return ([q.smiles[i] for i in rows], q.qm9_index[rows], fine_to_model_input(q.ir_fine[rows]),
            fine_to_model_input(q.raman_fine[rows]), report)
