"""Checks of one stick-spectra shard (`shard_NNNN.npz`, written by `vibraclip simulate`) as it is
loaded: every array present, of matching lengths, offsets in order, sticks finite."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARD_ARRAYS = {"index": 1, "smiles": 1, "n_atoms": 1, "status": 1, "seconds": 1,
                "offsets": 1, "freqs_cm1": 1, "ir_km_mol": 1, "raman_a4_amu": 1,
                "ref_offsets": 1, "ref_freqs_cm1": 1}  # name -> ndim


def _check_offsets(arrays: dict, f: Path, name: str, n: int, n_values: int, values: str) -> None:
    off = arrays[name]
    if off.shape != (n + 1,) or not np.issubdtype(off.dtype, np.integer):
        raise ValueError(f"{f}: array '{name}' has shape {off.shape} ({off.dtype}); expected "
                         f"({n + 1},) integers for {n} molecules")
    if off[0] != 0 or off[-1] != n_values or np.any(np.diff(off) < 0):
        raise ValueError(f"{f}: array '{name}' is not non-decreasing from 0 to {n_values} (the "
                         f"length of '{values}'); the shard is damaged: delete it and rerun "
                         "`vibraclip simulate`")


def check_shard(arrays: dict, f: Path) -> None:
    """Raise ValueError naming shard f and the array when an array is missing, of another length,
    or holds offsets out of order or non-finite sticks."""
    fix = "the shard is damaged or from another version: delete it and rerun `vibraclip simulate`"
    for name, ndim in SHARD_ARRAYS.items():
        if name not in arrays:
            raise ValueError(f"{f}: array '{name}' is missing; {fix}")
        if arrays[name].ndim != ndim:
            raise ValueError(f"{f}: array '{name}' has shape {arrays[name].shape}; expected "
                             f"{ndim} dimension(s); {fix}")
    n = len(arrays["index"])
    for name in ("smiles", "n_atoms", "status", "seconds"):
        if len(arrays[name]) != n:
            raise ValueError(f"{f}: array '{name}' has {len(arrays[name])} entries for {n} "
                             f"molecules in 'index'; {fix}")
    n_sticks = len(arrays["freqs_cm1"])
    for name in ("ir_km_mol", "raman_a4_amu"):
        if len(arrays[name]) != n_sticks:
            raise ValueError(f"{f}: array '{name}' has {len(arrays[name])} values for "
                             f"{n_sticks} in 'freqs_cm1'; {fix}")
    _check_offsets(arrays, f, "offsets", n, n_sticks, "freqs_cm1")
    _check_offsets(arrays, f, "ref_offsets", n, len(arrays["ref_freqs_cm1"]), "ref_freqs_cm1")
    for name in ("freqs_cm1", "ir_km_mol", "raman_a4_amu", "ref_freqs_cm1"):
        bad = np.flatnonzero(~np.isfinite(arrays[name]))
        if bad.size:
            raise ValueError(f"{f}: array '{name}' holds {bad.size} NaN/inf values (first at "
                             f"position {bad[0]}); {fix}")
