"""Simulated GFN2-xTB stick spectra of a candidate set, for comparing a measured spectrum with
each candidate's own physics (`spectral_match`).

Each candidate's sticks come from the embedded shards when its molecule is there (matched by
`canonical_identity`: `data/qm9_gfn2`, the measured molecules' `data/experimental_ir/gfn2` and
the QM9 isomers of their formulas, `data/experimental_ir/qm9_isomers_gfn2`),
else from a cache of earlier runs, else the project's simulator computes them from the
candidate's conformer (ETKDG + MMFF, as the embedded set's non-QM9 molecules were made), in
parallel with a progress bar. Every molecule, failures included, is cached as one small npz named
by its identity, written atomically as soon as it is done: the cache is shared between queries
and libraries, an interrupted run resumes, and a failure is reported by reason, not retried.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections import Counter
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vibraclip_core.config.profiles import EMBEDDED_DATA_DIR
from vibraclip_core.data.datasets import load_sticks
from vibraclip_core.data.generate import _simulate_one, write_shard_atomic
from vibraclip_core.data.jobs import Progress, spawn_pool, stop_pool
from vibraclip_core.data.molecules import canonical_identity
from vibraclip_core.data.simulate import STATUS_OK, SimulatorSettings, limit_threads
from vibraclip_core.data.sources import source_from_smiles
from vibraclip_core.measured.experimental import GFN2_DIR, ISOMERS_GFN2_DIR

log = logging.getLogger(__name__)

SPECTRA_CACHE_DIR = "simulated-spectra"  # under the cache dir, beside the library caches
CACHE_VERSION = 1
EMBEDDED_DIRS = (EMBEDDED_DATA_DIR, GFN2_DIR, ISOMERS_GFN2_DIR)
FROM_EMBEDDED, FROM_CACHE, COMPUTED = "embedded", "cache", "computed"
NOT_SIMULATED = "not simulated"  # status and origin of a candidate left out by `simulate`


@dataclass
class CandidateSpectra:
    """Ragged sticks of n candidates in library order: candidate m owns
    freqs_cm1[offsets[m]:offsets[m+1]] (no sticks where status[m] is not 'ok')."""

    identity: list[str]
    status: list[str]  # "ok" or the reason the spectrum could not be simulated
    origin: list[str]  # FROM_EMBEDDED, FROM_CACHE or COMPUTED
    offsets: np.ndarray  # (n + 1,) int64
    freqs_cm1: np.ndarray  # float32
    ir_km_mol: np.ndarray
    raman_a4_amu: np.ndarray

    def __len__(self) -> int:
        return len(self.identity)

    @property
    def ok(self) -> np.ndarray:
        """(n,) bool: candidates with a simulated spectrum."""
        return np.asarray([s == STATUS_OK for s in self.status], dtype=bool)

    def failures(self) -> Counter:
        """Failure reason -> count (candidates left out on purpose are not failures)."""
        return Counter(s for s in self.status if s not in (STATUS_OK, NOT_SIMULATED))


@functools.lru_cache(maxsize=4)
def embedded_sticks(dirs: tuple[Path, ...] = EMBEDDED_DIRS) -> dict[str, tuple]:
    """identity -> (freqs_cm1, ir_km_mol, raman_a4_amu) of every 'ok' molecule of the shard
    folders `dirs` (the first folder wins for a molecule in several)."""
    out: dict[str, tuple] = {}
    for d in dirs:
        if not Path(d).is_dir():
            continue
        sticks = load_sticks(Path(d)).ok()
        for m, smi in enumerate(sticks.smiles):
            out.setdefault(canonical_identity(smi), sticks.sticks(m))
    return out


def cache_file(cache_dir: str | Path, identity: str, settings: SimulatorSettings,
               conformer_seed: int) -> Path:
    """Where one molecule's simulated sticks (or its failure) are cached."""
    key = hashlib.sha256(f"{identity}|{conformer_seed}".encode()).hexdigest()[:24]
    return (Path(cache_dir) / SPECTRA_CACHE_DIR / f"{settings.method}-v{CACHE_VERSION}"
            / f"{key}.npz")


def _read_cached(path: Path, identity: str) -> tuple | None:
    """(status, freqs, ir, raman) from a cache file, or None if absent or damaged."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["identity"]) != identity:
                raise ValueError(f"holds {str(z['identity'])!r}")
            return str(z["status"]), z["freqs_cm1"], z["ir_km_mol"], z["raman_a4_amu"]
    except Exception as exc:  # truncated or foreign file: recompute, never use it
        log.warning("%s: damaged simulated-spectrum cache (%s); recomputing", path, exc)
        return None


def _write_cached(path: Path, identity: str, status: str, sticks: tuple, seconds: float) -> None:
    write_shard_atomic(path, {"identity": np.array(identity), "status": np.array(status),
                              "seconds": np.array(seconds, dtype=np.float32),
                              **dict(zip(("freqs_cm1", "ir_km_mol", "raman_a4_amu"),
                                         (np.asarray(a, np.float32) for a in sticks)))})


def _simulate_smiles(smiles: str, settings: SimulatorSettings, conformer_seed: int
                     ) -> tuple[str, tuple, float]:
    """(status, (freqs, ir, raman), seconds) for one SMILES, in a worker process."""
    mol = source_from_smiles([smiles], seed=conformer_seed)[0]
    status, info = _simulate_one(mol, settings)
    empty = np.zeros(0, np.float32)
    if status != STATUS_OK:
        return status, (empty, empty, empty), info["seconds"]
    r = info["result"]
    return status, (r.freqs_cm1, r.ir_km_mol, r.raman_a4_amu), info["seconds"]


def candidate_spectra(smiles: Sequence[str], cache_dir: str | Path, workers: int = 2,
                      progress: bool = True, conformer_seed: int = 0,
                      settings: SimulatorSettings = SimulatorSettings(),
                      embedded_dirs: tuple[Path, ...] = EMBEDDED_DIRS,
                      simulate: int | None = None) -> CandidateSpectra:
    """Simulated sticks of each candidate SMILES (see the module docstring); candidates whose
    spectrum cannot be made keep their place with a failure status. `simulate`: only the first
    `simulate` candidates without sticks on disk are computed (0: none, what is free); the others
    get status and origin NOT_SIMULATED (None: all are computed)."""
    identity = [canonical_identity(s) for s in smiles]
    found: dict[str, tuple] = {}
    origin: dict[str, str] = {}
    for ident in dict.fromkeys(identity):
        hit = _read_cached(cache_file(cache_dir, ident, settings, conformer_seed), ident)
        if hit is not None:
            found[ident], origin[ident] = (hit[0], hit[1:]), FROM_CACHE
    missing = [i for i in dict.fromkeys(identity) if i not in found]
    if missing and settings.method == SimulatorSettings().method:
        embedded = embedded_sticks(tuple(Path(d) for d in embedded_dirs))
        for ident in missing:
            if ident in embedded:
                found[ident], origin[ident] = (STATUS_OK, embedded[ident]), FROM_EMBEDDED
                _write_cached(cache_file(cache_dir, ident, settings, conformer_seed), ident,
                              STATUS_OK, embedded[ident], 0.0)
    todo = {identity[k]: smiles[k] for k in range(len(smiles)) if identity[k] not in found}
    if simulate is not None:
        for ident in list(todo)[simulate:]:
            found[ident], origin[ident] = (NOT_SIMULATED, (np.zeros(0, np.float32),) * 3), \
                NOT_SIMULATED
            del todo[ident]
    if todo:
        _compute(todo, found, origin, cache_dir, workers, progress, conformer_seed, settings)
    parts = [found[i][1] for i in identity]
    lengths = [len(p[0]) for p in parts]
    cat = [np.concatenate([p[k] for p in parts]).astype(np.float32) if parts
           else np.zeros(0, np.float32) for k in range(3)]
    out = CandidateSpectra(identity, [found[i][0] for i in identity], [origin[i] for i in identity],
                           np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), *cat)
    log.info("simulated spectra of %d candidates: %s; failed: %s", len(out),
             dict(Counter(out.origin)), dict(out.failures()) or "none")
    return out


def _compute(todo: dict[str, str], found: dict, origin: dict, cache_dir: str | Path,
             workers: int, progress: bool, conformer_seed: int,
             settings: SimulatorSettings) -> None:
    """Simulate `todo` (identity -> SMILES) into `found`, caching each molecule as it ends."""
    log.warning("simulating %d candidate spectra with %s (about 1 s per molecule per core; "
                "cached for later queries)", len(todo), settings.method)
    t0 = time.monotonic()

    def done(ident: str, result: tuple) -> None:
        status, sticks, seconds = result
        _write_cached(cache_file(cache_dir, ident, settings, conformer_seed), ident, status,
                      sticks, seconds)
        found[ident], origin[ident] = (status, sticks), COMPUTED
        bar.update(1)

    with Progress(len(todo), "simulating candidate spectra", progress=progress,
                  logger=log) as bar:
        if workers <= 1:
            limit_threads()
            for ident, smi in todo.items():
                done(ident, _simulate_smiles(smi, settings, conformer_seed))
            return
        # spawn (a forked child of a process that ran tblite's OpenMP runtime can hang), with
        # workers that ignore Ctrl-C: the parent stops the pool and keeps the cache
        pool = spawn_pool(workers, limit_threads)
        futures: dict = {}
        try:
            futures = {pool.submit(_simulate_smiles, smi, settings, conformer_seed): ident
                       for ident, smi in todo.items()}
            for fut in as_completed(futures):
                done(futures[fut], fut.result())
        except BaseException:  # Ctrl-C: drop the queue, stop the workers; the cache is whole
            stop_pool(pool, futures)
            raise
        pool.shutdown()
    log.info("simulated %d candidates in %.1f s on %d workers", len(todo),
             time.monotonic() - t0, workers)
