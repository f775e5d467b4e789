"""Vectorized vs naive Lorentzian broadening of ragged stick spectra onto the 3501-point fine grid.

Usage: python benchmarks/broadening.py [--n 10000] [--naive-n 200] [--seed 0]

The naive per-molecule, per-stick loop is timed on the first --naive-n molecules only and
extrapolated linearly to n (its cost is proportional to the number of sticks). Both paths are
also compared on that subset. The vectorized path is timed end to end as model input
(broaden, resample to 1750 points, min-max), and broadening alone for the like-for-like ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vibraclip_core.data.spectra import (broaden_sticks, broaden_sticks_naive, fine_grid,
                                         minmax_scale, model_grid, resample, sticks_to_model_input)


def synthetic_sticks(n_molecules: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ragged sticks: ~45 per molecule (30-60), frequencies 500-4000 cm-1, a few imaginary modes."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(30, 61, n_molecules)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    freqs_cm1 = rng.uniform(500.0, 4000.0, offsets[-1])
    freqs_cm1[rng.random(offsets[-1]) < 0.01] *= -1.0
    intensities = rng.exponential(30.0, offsets[-1])
    return freqs_cm1, intensities, offsets


def timed(fn, *args, **kwargs) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="molecules for the vectorized path")
    parser.add_argument("--naive-n", type=int, default=200, help="molecules for the naive loop")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    freqs, ints, offsets = synthetic_sticks(args.n, args.seed)
    n_sub = min(args.naive_n, args.n)
    sub = (freqs[: offsets[n_sub]], ints[: offsets[n_sub]], offsets[: n_sub + 1])

    t_vec, fine = timed(broaden_sticks, freqs, ints, offsets)
    t_model, model = timed(sticks_to_model_input, freqs, ints, offsets)
    t_naive_sub, naive = timed(broaden_sticks_naive, *sub)
    t_naive = t_naive_sub * offsets[-1] / offsets[n_sub]  # linear in sticks

    rel_err = float(np.abs(fine[:n_sub] - naive).max() / naive.max())
    naive_model = minmax_scale(resample(naive, fine_grid(), model_grid()))
    model_err = float(np.abs(model[:n_sub] - naive_model).max())
    print(f"molecules: {args.n}  sticks: {offsets[-1]}  grid: {fine.shape[1]} points")
    print(f"agreement on {n_sub} molecules: max |vectorized - naive| / max = {rel_err:.2e}; "
          f"model input max abs diff = {model_err:.2e}")
    print(f"vectorized broaden_sticks:       {t_vec:8.2f} s")
    print(f"vectorized sticks_to_model_input:{t_model:8.2f} s")
    print(f"naive loop: {t_naive_sub:.2f} s on {n_sub} molecules -> "
          f"{t_naive:.2f} s extrapolated linearly to {args.n}")
    print(f"ratio naive / vectorized (broadening only): {t_naive / t_vec:.1f}x")
    if rel_err > 1e-4:
        raise SystemExit(f"vectorized and naive broadening disagree (relative error {rel_err:.2e})")


if __name__ == "__main__":
    main()
