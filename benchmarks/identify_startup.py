"""How fast `vibraclip identify` starts: its import cost beside the training stack's, and the
seconds to its first line of output and to its model line, on a generated spectrum.

    python benchmarks/identify_startup.py [--repeats 3]

Each number is the median over fresh interpreter processes run side by side in this one run:
importing identify's modules, importing them plus the training stack (Lightning: what identify
loaded before it was kept out by an import contract), and a whole `identify` on five SMILES.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def seconds(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def line_times(cmd: list[str], marks: tuple[str, ...]) -> dict[str, float]:
    """Seconds from start to the first output line, to the first line starting with each mark,
    and to the exit."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out: dict[str, float] = {}
    for line in proc.stdout:
        now = time.perf_counter() - t0
        out.setdefault("first line", now)
        for mark in marks:
            if line.startswith(mark):
                out.setdefault(f"'{mark}' line", now)
    proc.wait()
    out["exit"] = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode})")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    py = sys.executable
    imports = {
        "identify's modules": "import vibraclip_core.app.identify_command",
        "+ the training stack": "import vibraclip_core.app.identify_command, "
                                "vibraclip_core.training.train",
        "torch alone": "import torch",
    }
    times = {name: statistics.median(seconds([py, "-c", code]) for _ in range(args.repeats))
             for name, code in imports.items()}
    for name, t in times.items():
        print(f"import {name:>22}: {t:5.2f} s")
    ratio = times["identify's modules"] / times["+ the training stack"]
    print(f"identify's imports / with the training stack: {ratio:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        x = np.arange(500, 4000.5, 2.0)
        y = sum(a * np.exp(-0.5 * ((x - c) / 12) ** 2)
                for a, c in ((1, 1050), (0.6, 1460), (0.8, 2950), (0.3, 1720)))
        ir = Path(tmp) / "ir.csv"
        np.savetxt(ir, np.c_[x, y], delimiter=",", header="wavenumber,absorbance", comments="")
        smi = Path(tmp) / "cands.smi"
        smi.write_text("CCO\nCC(=O)C\nCCCO\nOCCO\nCC(C)O\n")
        cmd = [str(Path(py).parent / "vibraclip"), "identify", "--ir", str(ir), "--candidates",
               str(smi), "--mass", "46.07", "--rerank", "0", "--cache-dir", f"{tmp}/cache"]
        runs = [line_times(cmd, ("model:",)) for _ in range(args.repeats + 1)][1:]  # warm cache
    for key in runs[0]:
        print(f"identify, {key:>14}: {statistics.median(r[key] for r in runs):5.2f} s")


if __name__ == "__main__":
    main()
