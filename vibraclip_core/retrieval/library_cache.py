"""`vibraclip identify`'s candidate libraries, embedded once and cached on disk.

A library is embedded once per (checkpoint weights, candidate set, conformer seed, mass
statistics) and stored as safetensors + JSON, each written atomically; a later query with the same
four reads it back. A damaged cache file is reported and rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vibraclip_core.data.files import atomic_path
from vibraclip_core.data.mass import MassStats
from vibraclip_core.data.qm9_candidates import load_positions
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.candidates import IdentifyError, QM9Candidates
from vibraclip_core.retrieval.embedding import model_digest
from vibraclip_core.retrieval.library import CandidateLibrary

log = logging.getLogger(__name__)

LIBRARY_FORMAT_VERSION = 3  # 2: the metadata records the tensors file's size; 3: SMILES
# lists skip charged, radical, mixture and isotope candidates and duplicates
# SMILES lists only (QM9's embedding is costly and unchanged): 2 counts stereoisomers apart
SMILES_SKIP_VERSION = 2
# molecules per embedding batch: on CPU, batches of 32 embed ~1.7x faster per molecule than 256
# (the triplet tensors stay in cache)
LIBRARY_BATCH_SIZE = 32
QM9_CONFORMER_DIR = "qm9-conformers"  # under the cache dir, as build/cache/qm9-conformers


def library_path(cache_dir: str | Path, digest: str, candidates: Sequence[str] | QM9Candidates,
                 conformer_seed: int, mass_stats: MassStats | None) -> Path:
    """The cache file of one (weights, candidate set, conformer seed, mass statistics)."""
    stats = [mass_stats.mean_da, mass_stats.std_da] if mass_stats else None
    names = (candidates.key() if isinstance(candidates, QM9Candidates)
             else [f"smiles-skip-{SMILES_SKIP_VERSION}", *candidates])
    key = hashlib.sha256(json.dumps([LIBRARY_FORMAT_VERSION, digest, names, conformer_seed,
                                     stats]).encode()).hexdigest()[:24]
    return Path(cache_dir) / f"library-{key}.safetensors"


def build_library(model: VibraCLIP, candidates: Sequence[str] | QM9Candidates,
                  mass_stats: MassStats | None, cache_dir: str | Path, workers: int = 1,
                  batch_size: int = LIBRARY_BATCH_SIZE, progress: bool = True) -> CandidateLibrary:
    """Embed a candidate set, cached in cache_dir: SMILES are featurised (failures skipped and
    counted); QM9Candidates take their geometries from cache_dir/qm9-conformers (missing shards
    computed with `workers` processes)."""
    if model.config.mass and mass_stats is None:
        raise IdentifyError("this checkpoint uses mass anchoring: pass the training mass_stats "
                            "(mass_stats_for(checkpoint)) to build_library")
    digest = model_digest(model)
    seed = model.config.conformer_seed
    path = library_path(cache_dir, digest, candidates, seed, mass_stats)
    library = load_library(path, model, mass_stats, digest)
    if library is not None:
        return library
    t0 = time.perf_counter()
    if isinstance(candidates, QM9Candidates):
        s = load_positions(candidates.positions, Path(cache_dir) / QM9_CONFORMER_DIR, seed,
                           workers, progress)
        library = CandidateLibrary.from_structures(s, mass_stats)
        log.info("QM9 library: %d structures (%s)", len(s), dict(s.routes()))
    else:
        library = CandidateLibrary.from_smiles(candidates, seed, workers, progress, mass_stats)
    t1 = time.perf_counter()
    library = library.embed(model, batch_size=batch_size, progress=progress)
    log.info("candidate library: structures %.1f s, embedding %.1f s", t1 - t0,
             time.perf_counter() - t1)
    library.model_digest = digest
    save_library(path, library, len(candidates))
    return library


def save_library(tensors_path: Path, library: CandidateLibrary, n_input: int) -> None:
    """The library as tensors_path (.safetensors: graph_emb, mass_da), then its metadata (.json
    beside it: strings, skip counts, the tensors file's size), each written to a temporary file
    and renamed: a reader sees whole files or none, and the metadata vouches for the tensors."""
    meta_path = tensors_path.with_suffix(".json")
    with atomic_path(tensors_path) as tmp:
        save_file({"graph_emb": library.graph_emb.contiguous(),
                   "mass_da": torch.from_numpy(np.asarray(library.mass_da))}, tmp)
        size = tmp.stat().st_size
    with atomic_path(meta_path) as tmp:
        tmp.write_text(json.dumps({
            "version": LIBRARY_FORMAT_VERSION, "n_input": n_input, "tensors_bytes": size,
            "smiles": library.smiles, "identity": library.identity, "formula": library.formula,
            "skipped": dict(library.skipped)}))


def load_library(tensors_path: Path, model: VibraCLIP, mass_stats: MassStats | None,
                 digest: str) -> CandidateLibrary | None:
    """The library `save_library` wrote, or None when absent; a damaged one (truncated,
    mismatched) is reported as a warning and None returned, so the caller rebuilds it."""
    meta_path = tensors_path.with_suffix(".json")
    if not (tensors_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("version") != LIBRARY_FORMAT_VERSION:
            raise ValueError(f"format version {meta.get('version')}, expected "
                             f"{LIBRARY_FORMAT_VERSION}")
        size = tensors_path.stat().st_size
        if size != meta["tensors_bytes"]:
            raise ValueError(f"{tensors_path.name} holds {size} bytes, {meta_path.name} says "
                             f"{meta['tensors_bytes']}")
        tensors = load_file(tensors_path)
        library = CandidateLibrary(meta["smiles"], meta["identity"], tensors["mass_da"].numpy(),
                                   meta["formula"], mass_stats=mass_stats,
                                   graph_emb=tensors["graph_emb"],
                                   skipped=Counter(meta["skipped"]), model_digest=digest)
        if not torch.isfinite(library.graph_emb).all():  # bytes damaged in place
            raise ValueError("embeddings hold NaN or inf")
        if library.graph_emb.shape[1:] != (model.config.latent_dim,):
            raise ValueError(f"embeddings of shape {tuple(library.graph_emb.shape)} for a model "
                             f"of latent_dim {model.config.latent_dim}")
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        log.warning("%s: damaged candidate library cache (%s); rebuilding it", tensors_path, exc)
        return None
    log.info("candidate library from cache %s", tensors_path)
    return library
