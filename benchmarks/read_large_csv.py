"""Vectorised (pandas C parser) vs line-by-line Python reading of a large two-column CSV.

Usage: python benchmarks/read_large_csv.py [--rows 5000000] [--seed 0]

Writes a CSV of --rows (x, y) rows into a temporary folder, then times, in the same run,
readers.read_text (what read_spectrum uses) and the line-by-line parser the readers used
before issue 18 (kept here as the baseline), checks they agree, and prints the ratio.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from vibraclip_core.measured.readers import read_text


def read_text_line_by_line(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The pre-issue-18 reader: split every line in Python, float() every field."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
    rows = [re.split(r"\s*[,;\t]\s*|\s+", ln) for ln in lines]
    xy = np.array([[float(r[0]), float(r[1])] for r in rows], dtype=np.float64)
    return xy[:, 0], xy[:, 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    x = np.linspace(4000.0, 400.0, args.rows)
    y = rng.random(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large.csv"
        np.savetxt(path, np.column_stack([x, y]), fmt="%.6f", delimiter=",")
        start = time.perf_counter()
        new_x, new_y, _, _ = read_text(path, [])
        t_new = time.perf_counter() - start
        start = time.perf_counter()
        old_x, old_y = read_text_line_by_line(path)
        t_old = time.perf_counter() - start
    assert np.array_equal(new_x, old_x) and np.array_equal(new_y, old_y), "readers disagree"
    print(f"rows: {args.rows:,}")
    print(f"line by line (before): {t_old:8.2f} s")
    print(f"vectorised   (now):    {t_new:8.2f} s")
    print(f"speed-up: {t_old / t_new:.1f}x")


if __name__ == "__main__":
    main()
