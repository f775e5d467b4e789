"""Every QM9 molecule as a candidate structure: conformers cached once per conformer seed.

A candidate library larger than the test split needs structures that have no spectra: QM9
molecules outside the prepared data ("distractors"). Their conformers do not depend on any model,
so they are computed once per conformer seed and cached as npz shards along the dataset's own
seeded QM9 order (`sources.qm9_order`), 1,024 positions per shard, computed only when a library
first needs them. Every molecule gets a geometry: ETKDGv3 with RDKit's default attempt budget (no
retries: it fails fast), else QM9's own B3LYP geometry from `qm9pack`; each shard records the
route each molecule took.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vibraclip_core.data.files import atomic_path
from vibraclip_core.data.formulas import mass_of_numbers
from vibraclip_core.data.jobs import Progress, spawn_pool, stop_pool
from vibraclip_core.data.molecules import (MoleculeError, canonical_identity, embed_conformer,
                                           mol_from_smiles, molecular_mass_da)
from vibraclip_core.data.sources import QM9_SIZE, load_qm9_source, qm9_order

log = logging.getLogger(__name__)

SHARD_SIZE = 1024
# shards whose QM9 source is read at once (one CSV pass, ~3 s for 8), ahead of the pool
SOURCE_GROUP = 8
FORMAT_VERSION = 2
ROUTE_ETKDG = "etkdg"
ROUTE_B3LYP = "b3lyp"  # ETKDG failed: QM9's B3LYP geometry
ROUTE_B3LYP_UNPARSED = "b3lyp_unparsed_smiles"  # RDKit cannot read the SMILES at all


@dataclass
class Structures:
    """n candidate structures: QM9 index, SMILES, identity, mass, geometry route, ragged atoms."""

    index: np.ndarray  # (n,) int64 QM9 index
    smiles: list[str]
    identity: list[str]  # canonical_identity, or "qm9:<index>" when RDKit cannot parse it
    mass_da: np.ndarray  # (n,) float64 Da
    route: list[str]
    atom_offsets: np.ndarray  # (n + 1,) int64
    z: np.ndarray  # (n_atoms,) int64
    pos_ang: np.ndarray  # (n_atoms, 3) float32 Å
    seconds: np.ndarray | None = None  # (n,) float32 s of one core spent on each geometry

    def __len__(self) -> int:
        return len(self.index)

    def take(self, rows: np.ndarray) -> "Structures":
        """The structures at `rows` (in that order)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, stops = self.atom_offsets[rows], self.atom_offsets[rows + 1]
        atoms = (np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
                 if len(rows) else np.zeros(0, np.int64))
        return Structures(self.index[rows], [self.smiles[i] for i in rows],
                          [self.identity[i] for i in rows], self.mass_da[rows],
                          [self.route[i] for i in rows],
                          np.concatenate([[0], np.cumsum(stops - starts)]).astype(np.int64),
                          self.z[atoms], self.pos_ang[atoms],
                          None if self.seconds is None else self.seconds[rows])

    def routes(self) -> Counter:
        """How many structures took each geometry route."""
        return Counter(self.route)

    @staticmethod
    def concat(parts: Sequence["Structures"]) -> "Structures":
        """One Structures of all parts, in order."""
        sizes = [p.atom_offsets[-1] for p in parts]
        shifts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if parts else []
        return Structures(
            np.concatenate([p.index for p in parts]) if parts else np.zeros(0, np.int64),
            [s for p in parts for s in p.smiles], [s for p in parts for s in p.identity],
            np.concatenate([p.mass_da for p in parts]) if parts else np.zeros(0),
            [s for p in parts for s in p.route],
            np.concatenate([[0], *[p.atom_offsets[1:] + s for p, s in zip(parts, shifts)]]
                           ).astype(np.int64),
            np.concatenate([p.z for p in parts]) if parts else np.zeros(0, np.int64),
            np.concatenate([p.pos_ang for p in parts]) if parts
            else np.zeros((0, 3), np.float32),
            np.concatenate([p.seconds for p in parts])
            if parts and all(p.seconds is not None for p in parts) else None)


def candidate_geometry(index: int, smiles: str, numbers: np.ndarray, b3lyp_pos_ang: np.ndarray,
                       seed: int) -> tuple[str, float, str, np.ndarray, np.ndarray]:
    """(identity, mass Da, route, z (n,), pos (n, 3) Å) of one QM9 molecule.

    ETKDGv3 (seeded, RDKit's default attempts, no retry) on the SMILES with explicit H; when it
    fails, QM9's B3LYP geometry and atoms. A SMILES RDKit cannot read also takes the B3LYP route
    and gets the identity "qm9:<index>", which matches no query.
    """
    try:
        mol = mol_from_smiles(smiles)
    except MoleculeError:
        return (f"qm9:{index}", mass_of_numbers(numbers), ROUTE_B3LYP_UNPARSED,
                np.asarray(numbers, np.int64), np.asarray(b3lyp_pos_ang, np.float32))
    identity, mass = canonical_identity(smiles), molecular_mass_da(mol)
    try:
        pos = embed_conformer(mol, seed=seed, retry=False)
    except MoleculeError:
        return (identity, mass, ROUTE_B3LYP, np.asarray(numbers, np.int64),
                np.asarray(b3lyp_pos_ang, np.float32))
    z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
    return identity, mass, ROUTE_ETKDG, z, pos.astype(np.float32)


def _geometry_job(args: tuple) -> tuple:
    # CPU time, not wall: one core's seconds even when other jobs share the cores
    t0 = time.process_time()
    out = candidate_geometry(*args)
    return (*out, time.process_time() - t0)


def shard_file(cache_dir: Path, conformer_seed: int, shard: int) -> Path:
    return Path(cache_dir) / f"seed-{conformer_seed}" / f"shard_{shard:05d}.v{FORMAT_VERSION}.npz"


def _bar(total: int, desc: str, progress: bool) -> Progress:
    return Progress(total, desc, progress=progress, logger=log)


def _shard_jobs(shards: Sequence[int], conformer_seed: int) -> list[list[tuple]]:
    """The `candidate_geometry` arguments of each shard, from one read of QM9's source tables."""
    order = qm9_order()
    indices = [order[s * SHARD_SIZE:(s + 1) * SHARD_SIZE] for s in shards]
    for shard, ix in zip(shards, indices):
        if len(ix) == 0:
            raise ValueError(f"shard {shard} is beyond QM9's {len(order)} molecules")
    source = load_qm9_source({int(i) for ix in indices for i in ix})
    return [[(int(i), source[int(i)].smiles, source[int(i)].numbers,
              source[int(i)].positions_ang, conformer_seed) for i in ix] for ix in indices]


def _shard_arrays(jobs: Sequence[tuple], results: Sequence[tuple]) -> dict[str, np.ndarray]:
    ids, mass, route, zs, pos, seconds = zip(*results)
    return {"index": np.array([j[0] for j in jobs], dtype=np.int64),
            "smiles": np.array([j[1] for j in jobs], dtype=str),
            "identity": np.array(ids, dtype=str), "mass_da": np.array(mass, dtype=np.float64),
            "route": np.array(route, dtype=str), "seconds": np.array(seconds, dtype=np.float32),
            "atom_offsets": np.concatenate([[0], np.cumsum([len(z) for z in zs])]).astype(np.int64),
            "z": np.concatenate(zs).astype(np.int8), "pos_ang": np.concatenate(pos)}


def compute_shard(shard: int, conformer_seed: int, pool: ProcessPoolExecutor | None = None,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """The arrays of one cache shard: positions [shard * SHARD_SIZE, ...) of `qm9_order()`."""
    jobs = _shard_jobs([shard], conformer_seed)[0]
    results = []
    with _bar(len(jobs), f"QM9 conformers, shard {shard}", progress) as bar:
        for r in pool.map(_geometry_job, jobs, chunksize=64) if pool else map(_geometry_job, jobs):
            results.append(r)
            bar.update(1)
    return _shard_arrays(jobs, results)


def ensure_shards(shards: Sequence[int], cache_dir: Path, conformer_seed: int,
                  workers: int = 1, progress: bool = True) -> None:
    """Compute and write (atomically) the cache shards that are not on disk yet; resumable."""
    if all(shard_file(cache_dir, conformer_seed, s).is_file() for s in shards):
        return
    lock_path = shard_file(cache_dir, conformer_seed, 0).parent / ".lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    # one process computes at a time: a chapter running beside another waits for the shards
    # the other is computing instead of computing them twice
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _compute_missing(shards, cache_dir, conformer_seed, workers, progress)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _compute_missing(shards: Sequence[int], cache_dir: Path, conformer_seed: int, workers: int,
                     progress: bool) -> None:
    """Missing shards in groups of SOURCE_GROUP: a thread reads the next group's QM9 source
    while the pool computes this group's geometries as one stream (no idle tail per shard);
    each shard is written as soon as its last molecule is done."""
    todo = [s for s in shards if not shard_file(cache_dir, conformer_seed, s).is_file()]
    if not todo:
        return
    n_qm9 = len(qm9_order())
    total = sum(min(SHARD_SIZE, n_qm9 - s * SHARD_SIZE) for s in todo)
    log.info("computing %d QM9 conformer shard(s), %d molecules", len(todo), total)
    groups = [todo[i:i + SOURCE_GROUP] for i in range(0, len(todo), SOURCE_GROUP)]
    # spawn: forking after torch's OpenMP can deadlock
    pool = spawn_pool(workers) if workers > 1 else None
    try:
        with ThreadPoolExecutor(1) as reader, \
                _bar(total, f"QM9 conformers ({len(todo)} shards)", progress) as bar:
            pending = reader.submit(_shard_jobs, groups[0], conformer_seed)
            for g, group in enumerate(groups):
                jobs = pending.result()
                if g + 1 < len(groups):
                    pending = reader.submit(_shard_jobs, groups[g + 1], conformer_seed)
                flat = [job for shard_jobs in jobs for job in shard_jobs]
                results = (pool.map(_geometry_job, flat, chunksize=16) if pool
                           else map(_geometry_job, flat))
                for shard, shard_jobs in zip(group, jobs):
                    done = []
                    for _ in shard_jobs:
                        done.append(next(results))
                        bar.update(1)
                    _write_shard(shard_file(cache_dir, conformer_seed, shard),
                                 _shard_arrays(shard_jobs, done))
    except BaseException:  # Ctrl-C: stop now; the shards written so far stay, a rerun resumes
        if pool is not None:
            stop_pool(pool)
        raise
    if pool is not None:
        pool.shutdown()


def _write_shard(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    log.info("QM9 conformer shard %s written (%s)", path.name,
             dict(Counter(arrays["route"].tolist())))


def load_shard(cache_dir: Path, conformer_seed: int, shard: int) -> Structures:
    """One cache shard from disk (see `ensure_shards`)."""
    path = shard_file(cache_dir, conformer_seed, shard)
    try:
        with np.load(path, allow_pickle=False) as f:
            a = {k: f[k] for k in f.files}
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: unreadable QM9 conformer shard ({exc}); delete it and rerun "
                         "to recompute it") from exc
    return Structures(a["index"], a["smiles"].tolist(), a["identity"].tolist(), a["mass_da"],
                      a["route"].tolist(), a["atom_offsets"], a["z"].astype(np.int64),
                      a["pos_ang"], a["seconds"])


def qm9_positions(indices: np.ndarray) -> np.ndarray:
    """(n,) int64 position of each QM9 index in `qm9_order()`; raises for unknown indices."""
    order = qm9_order()
    where = np.full(int(order.max()) + 1, -1, dtype=np.int64)
    where[order] = np.arange(len(order))
    indices = np.asarray(indices, dtype=np.int64)
    bad = (indices < 0) | (indices >= len(where))
    pos = np.where(bad, -1, where[np.clip(indices, 0, len(where) - 1)])
    if (pos < 0).any():
        raise ValueError(f"QM9 indices {indices[pos < 0][:5].tolist()} are not in qm9pack's QM9")
    return pos


def distractor_positions(data_index: np.ndarray, test_index: np.ndarray) -> np.ndarray:
    """Positions in `qm9_order()` of every QM9 molecule except the test split's, in library order.

    First the molecules after the last position the prepared data uses (the QM9 molecules the
    embedded dataset would grow into, none of them in any split), then the rest that are not in
    the test split (training and validation molecules and failed simulations), each part in
    `qm9_order()` order. A library of size N is the test split plus the first N - n_test of these.
    """
    n = QM9_SIZE
    used = qm9_positions(data_index)
    test = np.zeros(n, dtype=bool)
    test[qm9_positions(test_index)] = True
    in_data = np.zeros(n, dtype=bool)
    in_data[used] = True
    start = int(used.max()) + 1 if len(used) else 0
    positions = np.arange(n)
    first = positions[(positions >= start) & ~in_data]
    rest = positions[~np.isin(positions, first) & ~test]
    return np.concatenate([first, rest])


def load_positions(positions: np.ndarray, cache_dir: Path, conformer_seed: int,
                   workers: int = 1, progress: bool = True) -> Structures:
    """Structures at these `qm9_order()` positions (in that order), computing missing shards."""
    positions = np.asarray(positions, dtype=np.int64)
    shards = sorted(set((positions // SHARD_SIZE).tolist()))
    ensure_shards(shards, cache_dir, conformer_seed, workers, progress)
    parts = [load_shard(cache_dir, conformer_seed, s) for s in shards]
    offset = np.concatenate([[0], np.cumsum([len(p) for p in parts])])
    row_of = {s: offset[k] for k, s in enumerate(shards)}
    rows = np.array([row_of[int(p // SHARD_SIZE)] + int(p % SHARD_SIZE) for p in positions],
                    dtype=np.int64)
    return Structures.concat(parts).take(rows)
