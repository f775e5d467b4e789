"""Sharded, resumable, parallel generation of the embedded GFN2-xTB IR + Raman dataset.

Molecules are taken in a seeded random order over the whole QM9 index; shard k holds positions
[k * shard_size, (k + 1) * shard_size) of that order, so extending the dataset is asking for more
shards, and a shard that exists on disk is never recomputed. Each shard is one compressed npz
(no pickle) written atomically.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from vibraclip_core.data.files import atomic_path
from vibraclip_core.data.formulas import ELEMENTS
from vibraclip_core.data.simulate import (STATUS_OK, SimulationError, SimulatorSettings,
                                          limit_threads, simulate_molecule)
from vibraclip_core.data.sources import SourceMolecule, load_qm9_source, qm9_order

log = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 250


def shard_path(out_dir: Path, shard: int) -> Path:
    return Path(out_dir) / f"shard_{shard:05d}.npz"


def _simulate_one(mol: SourceMolecule, settings: SimulatorSettings) -> tuple[str, dict]:
    t0 = time.perf_counter()
    try:
        if mol.problem:
            raise SimulationError("bad_source_record", mol.problem)
        if (mol.numbers == 0).any():
            raise SimulationError("unsupported_element", f"element outside {'/'.join(ELEMENTS)}")
        res = simulate_molecule(mol.numbers, mol.positions_ang, settings)
    except SimulationError as exc:
        return exc.status, {"seconds": time.perf_counter() - t0, "message": str(exc)}
    except Exception as exc:  # one bad molecule never stops the batch
        return f"error_{type(exc).__name__}", {"seconds": time.perf_counter() - t0,
                                               "message": str(exc)}
    return STATUS_OK, {"seconds": time.perf_counter() - t0, "result": res}


def simulate_shard(molecules: list[SourceMolecule], settings: SimulatorSettings) -> dict:
    """Simulate a list of molecules into the arrays of one shard (ragged sticks + offsets)."""
    limit_threads()
    freqs, ir, raman, ref = [], [], [], []
    status, seconds = [], []
    offsets, ref_offsets = [0], [0]
    for mol in molecules:
        st, info = _simulate_one(mol, settings)
        status.append(st)
        seconds.append(info["seconds"])
        if st == STATUS_OK:
            r = info["result"]
            freqs.append(r.freqs_cm1), ir.append(r.ir_km_mol), raman.append(r.raman_a4_amu)
            offsets.append(offsets[-1] + len(r.freqs_cm1))
        else:
            log.info("molecule %d (%s): %s: %s", mol.index, mol.smiles, st, info["message"])
            offsets.append(offsets[-1])
        ref.append(mol.ref_freqs_cm1)
        ref_offsets.append(ref_offsets[-1] + len(mol.ref_freqs_cm1))

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)

    return {
        "index": np.array([m.index for m in molecules], dtype=np.int64),
        "smiles": np.array([m.smiles for m in molecules], dtype=str),
        "n_atoms": np.array([len(m.numbers) for m in molecules], dtype=np.int16),
        "status": np.array(status, dtype=str),
        "seconds": np.array(seconds, dtype=np.float32),
        "offsets": np.array(offsets, dtype=np.int64),
        "freqs_cm1": cat(freqs), "ir_km_mol": cat(ir), "raman_a4_amu": cat(raman),
        "ref_offsets": np.array(ref_offsets, dtype=np.int64), "ref_freqs_cm1": cat(ref),
        "method": np.array(settings.method),
    }


def write_shard_atomic(path: Path, arrays: dict) -> None:
    """Write an npz next to its final name, then rename: a killed job never leaves half a shard."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def _run_shard(path: str, molecules: list[SourceMolecule], settings: SimulatorSettings) -> str:
    write_shard_atomic(Path(path), simulate_shard(molecules, settings))
    return path


def generate(out_dir: Path, order: np.ndarray,
             load_source: Callable[[set[int]], dict[int, SourceMolecule]], n_shards: int,
             first_shard: int = 0, workers: int = 2, shard_size: int = DEFAULT_SHARD_SIZE,
             settings: SimulatorSettings = SimulatorSettings()) -> list[Path]:
    """Simulate shards [first_shard, first_shard + n_shards) of `order` (source indices).

    Existing shards are skipped, so an interrupted job resumes where it stopped.
    """
    out_dir = Path(out_dir)
    todo = [k for k in range(first_shard, first_shard + n_shards)
            if not shard_path(out_dir, k).exists() and k * shard_size < len(order)]
    log.info("%d of %d shards to compute in %s", len(todo), n_shards, out_dir)
    if not todo:
        return []
    wanted = {int(i) for k in todo for i in order[k * shard_size:(k + 1) * shard_size]}
    source = load_source(wanted)
    missing = wanted - set(source)
    if missing:
        raise KeyError(f"{len(missing)} indices missing from the source, e.g. {sorted(missing)[:5]}")
    jobs = [(k, [source[int(i)] for i in order[k * shard_size:(k + 1) * shard_size]]) for k in todo]
    done: list[Path] = []
    with tqdm(total=sum(len(m) for _, m in jobs), unit="mol",
              desc=f"{settings.method} spectra") as bar:
        if workers <= 1:
            for k, mols in jobs:
                done.append(Path(_run_shard(str(shard_path(out_dir, k)), mols, settings)))
                bar.update(len(mols))
        else:
            # spawn, not fork: a forked child of a process that already ran tblite's OpenMP
            # runtime can deadlock.
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                     initializer=limit_threads) as pool:
                futures = {pool.submit(_run_shard, str(shard_path(out_dir, k)), mols, settings):
                           len(mols) for k, mols in jobs}
                for fut in as_completed(futures):
                    done.append(Path(fut.result()))
                    bar.update(futures[fut])
    return sorted(done)


def generate_qm9(out_dir: Path, n_shards: int, first_shard: int = 0, workers: int = 2,
                 shard_size: int = DEFAULT_SHARD_SIZE,
                 settings: SimulatorSettings = SimulatorSettings()) -> list[Path]:
    """Shards of the seeded QM9 order (see `generate`)."""
    return generate(out_dir, qm9_order(), load_qm9_source, n_shards, first_shard, workers,
                    shard_size, settings)


RETRYABLE = ("imaginary_mode", "relaxation_not_converged", "scf_failure")


def retry_failed(out_dir: Path, load_source: Callable[[set[int]], dict[int, SourceMolecule]],
                 settings: SimulatorSettings = SimulatorSettings()) -> dict[str, int]:
    """Recompute the molecules of existing shards whose status is retryable (e.g. after a
    simulator fix) and rewrite those shards atomically; returns counts rescued / still failing."""
    limit_threads()
    files = sorted(Path(out_dir).glob("shard_*.npz"))
    shards = {}
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            shards[f] = {k: z[k] for k in z.files}
    wanted = {int(i) for d in shards.values() for i, s in zip(d["index"], d["status"])
              if s in RETRYABLE}
    counts = {"retried": len(wanted), "rescued": 0}
    if not wanted:
        return counts
    source = load_source(wanted)
    for f, d in tqdm(shards.items(), desc="retrying failed molecules", unit="shard"):
        rows = [m for m, s in enumerate(d["status"]) if s in RETRYABLE]
        if not rows:
            continue
        redo = simulate_shard([source[int(d["index"][m])] for m in rows], settings)
        parts = {k: [] for k in ("freqs_cm1", "ir_km_mol", "raman_a4_amu")}
        status, seconds, offsets = list(d["status"]), d["seconds"].copy(), [0]
        for m in range(len(d["index"])):
            src, off, r = (redo, redo["offsets"], rows.index(m)) if m in rows else (d, d["offsets"], m)
            for k in parts:
                parts[k].append(src[k][off[r]:off[r + 1]])
            offsets.append(offsets[-1] + int(off[r + 1] - off[r]))
            if m in rows:
                status[m], seconds[m] = str(redo["status"][r]), redo["seconds"][r]
                counts["rescued"] += status[m] == STATUS_OK
        new = {**d, **{k: np.concatenate(v).astype(np.float32) for k, v in parts.items()},
               "status": np.array(status, dtype=str), "seconds": seconds,
               "offsets": np.array(offsets, dtype=np.int64)}
        write_shard_atomic(f, new)
    return counts
