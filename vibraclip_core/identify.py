"""Identify a measured IR (and Raman) spectrum: rank the structures of a candidate library.

A library is either SMILES (featurised here: ETKDG with retries) or QM9 (the geometries of the
shared QM9 conformer cache of `qm9_candidates`, the ones the book embeds). It is embedded once per
(checkpoint weights, candidate set, conformer seed, mass statistics) and cached on disk
(safetensors + JSON, each written atomically); a query spectrum is embedded with the same
checkpoint and scored against every admissible candidate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from rdkit import Chem
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .generate import QM9_SIZE, qm9pack_csv_paths
from .mass import MassStats
from .model import VibraCLIP
from .molecules import (MoleculeGraph, canonical_identity, featurize_many,
                        molecular_formula, mol_from_smiles, radius_edges, triplets)
from .qm9_candidates import FORMAT_VERSION as QM9_CONFORMER_FORMAT
from .qm9_candidates import Structures, load_positions
from .retrieval import cosine_scorer, library_scorer, mass_filter_mask, topk_scored
from .spectra import Spectrum, spectrum_to_model_input

log = logging.getLogger(__name__)

LIBRARY_FORMAT_VERSION = 2  # 2: the metadata records the tensors file's size
# molecules per embedding batch: on CPU, batches of 32 embed ~1.7x faster per molecule than 256
# (the triplet tensors stay in cache)
LIBRARY_BATCH_SIZE = 32
QM9_CONFORMER_DIR = "qm9-conformers"  # under the cache dir, as build/cache/qm9-conformers
RESULT_COLUMNS = ("rank", "score", "smiles", "formula", "mass_da")
SMILES_SUFFIXES = (".smi", ".txt", ".csv")


class IdentifyError(ValueError):
    """A query or library that cannot be identified as given; the message says what to change."""


def hill_formula(formula: str) -> str:
    """Hill-order formula ('OC2H6' -> 'C2H6O') as RDKit's CalcMolFormula writes it: C, H, then
    alphabetical, H first also without carbon ('FH' -> 'HF')."""
    tokens = re.findall(r"([A-Z][a-z]?)(\d*)", formula.strip())
    if not tokens or "".join(e + n for e, n in tokens) != formula.strip():
        raise IdentifyError(f"formula {formula!r}: not a plain formula like 'C2H6O' "
                            "(element symbols and counts, no charges or brackets)")
    counts: Counter = Counter()
    for element, n in tokens:
        counts[element] += int(n) if n else 1
    order = [e for e in ("C", "H") if e in counts] + sorted(set(counts) - {"C", "H"})
    return "".join(e + (str(counts[e]) if counts[e] > 1 else "") for e in order)


def formula_mass_da(formula: str) -> float:
    """Average molecular mass in Da of a formula (RDKit atomic weights, as Descriptors.MolWt)."""
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    total = 0.0
    for element, n in re.findall(r"([A-Z][a-z]?)(\d*)", hill_formula(formula)):
        try:
            total += table.GetAtomicWeight(element) * (int(n) if n else 1)
        except RuntimeError as exc:
            raise IdentifyError(f"formula {formula!r}: unknown element {element!r}") from exc
    return total


@dataclass
class CandidateLibrary:
    """Featurised candidates: n SMILES with identity, mass, Hill formula and graph embeddings."""

    smiles: list[str]
    identity: list[str]
    mass_da: np.ndarray  # (n,) float64 Da
    formula: list[str]
    graph_emb: torch.Tensor  # (n, latent_dim) float32
    skipped: Counter = field(default_factory=Counter)  # failure reason -> count
    mass_stats: MassStats | None = None
    model_digest: str = ""

    def __len__(self) -> int:
        return len(self.smiles)


def model_digest(model: VibraCLIP) -> str:
    """sha256 hex of the model config and every state-dict tensor (name, dtype, shape, bytes)."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def hill_formulas(z: np.ndarray, atom_offsets: np.ndarray) -> list[str]:
    """Hill formula of each of n molecules from atomic numbers z (atoms,) grouped by atom_offsets
    (n + 1,), as `molecular_formula` writes it for a neutral molecule ('C2H6O')."""
    z = np.asarray(z, dtype=np.int64)
    n = len(atom_offsets) - 1
    width = int(z.max()) + 1 if len(z) else 1
    molecule = np.repeat(np.arange(n), np.diff(atom_offsets))
    counts = np.bincount(molecule * width + z, minlength=n * width).reshape(n, width)
    # QM9 holds a few thousand distinct compositions: format each once
    unique, inverse = np.unique(counts, axis=0, return_inverse=True)
    table = Chem.GetPeriodicTable()
    text = [hill_formula("".join(f"{table.GetElementSymbol(int(e))}{row[e]}"
                                 for e in np.flatnonzero(row))) for row in unique]
    return [text[i] for i in inverse.reshape(-1)]


@dataclass(eq=False)
class QM9Candidates:
    """QM9's structures at these `generate.qm9_order()` positions (default: all 130,831), with
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


def _encode_batch(model: VibraCLIP, z: np.ndarray, pos_ang: np.ndarray, n_atoms: np.ndarray,
                  mass_da: np.ndarray, mass_stats: MassStats | None) -> torch.Tensor:
    """(len(n_atoms), latent_dim) float32 graph embeddings of one batch (atoms concatenated)."""
    z_t = torch.from_numpy(np.asarray(z)).long()
    pos = torch.from_numpy(np.asarray(pos_ang)).float()
    batch = torch.repeat_interleave(torch.arange(len(n_atoms)),
                                    torch.as_tensor(n_atoms, dtype=torch.long))
    edges = radius_edges(pos, model.config.cutoff_ang, batch)
    mass = mass_stats.standardize(np.asarray(mass_da)) if model.config.mass else None
    return model.encode_graph(z_t, pos, batch, mass, edges, triplets(edges, len(z_t)),
                              len(n_atoms)).float()


def _quiet(progress: bool) -> bool | None:
    # an explicit disable= overrides tqdm's own TQDM_DISABLE handling, so honour it here
    off = not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    return True if off else None


def embed_graphs(model: VibraCLIP, graphs: Sequence[MoleculeGraph], mass_stats: MassStats | None,
                 batch_size: int = 256, progress: bool = True) -> torch.Tensor:
    """(n, latent_dim) float32 graph embeddings of featurised molecules, in batches."""
    model.eval()
    out = []
    with torch.inference_mode():
        for a in tqdm(range(0, len(graphs), batch_size), disable=_quiet(progress), desc="embed",
                      unit="batch"):
            chunk = graphs[a:a + batch_size]
            out.append(_encode_batch(model, np.concatenate([g.z for g in chunk]),
                                     np.concatenate([g.pos_ang for g in chunk]),
                                     np.array([len(g.z) for g in chunk]),
                                     np.array([g.mass_da for g in chunk]), mass_stats))
    return torch.cat(out) if out else torch.zeros(0, model.config.latent_dim)


def embed_structures(model: VibraCLIP, s: Structures, mass_stats: MassStats | None,
                     batch_size: int = LIBRARY_BATCH_SIZE, progress: bool = True) -> torch.Tensor:
    """(n, latent_dim) float32 graph embeddings of packed structures (z, pos_ang, mass_da), in
    batches sliced from the packed arrays; the same rows as `embed_graphs` of their graphs."""
    model.eval()
    out, n, offsets = [], len(s), s.atom_offsets
    with torch.inference_mode(), tqdm(total=n, disable=_quiet(progress), desc="embed",
                                      unit="mol") as bar:
        for a in range(0, n, batch_size):
            b = min(a + batch_size, n)
            lo, hi = offsets[a], offsets[b]
            out.append(_encode_batch(model, s.z[lo:hi], s.pos_ang[lo:hi],
                                     np.diff(offsets[a:b + 1]), s.mass_da[a:b], mass_stats))
            bar.update(b - a)
    return torch.cat(out) if out else torch.zeros(0, model.config.latent_dim)


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
    qm9 = isinstance(candidates, QM9Candidates)
    stats = [mass_stats.mean_da, mass_stats.std_da] if mass_stats else None
    key = hashlib.sha256(json.dumps([LIBRARY_FORMAT_VERSION, digest, candidates.key() if qm9
                                     else list(candidates), seed, stats]).encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"library-{key}.safetensors"
    library = load_library(path, model, mass_stats, digest)
    if library is not None:
        return library
    if qm9:
        library = _qm9_library(model, candidates, mass_stats, Path(cache_dir) / QM9_CONFORMER_DIR,
                               workers, batch_size, progress)
    else:
        library = _smiles_library(model, list(candidates), mass_stats, workers, batch_size,
                                  progress)
    library.model_digest = digest
    save_library(path, library, len(candidates))
    return library


def _smiles_library(model: VibraCLIP, smiles: list[str], mass_stats: MassStats | None,
                    workers: int, batch_size: int, progress: bool) -> CandidateLibrary:
    graphs, skipped = featurize_many(smiles, seed=model.config.conformer_seed, workers=workers,
                                     progress=progress)
    kept = [g for g in graphs if g is not None]
    log.info("candidate library: %d of %d SMILES featurised, skipped %s", len(kept), len(smiles),
             dict(skipped) or "none")
    kept_smiles = [g.smiles for g in kept]
    return CandidateLibrary(
        kept_smiles, [canonical_identity(s) for s in kept_smiles],
        np.array([g.mass_da for g in kept], dtype=np.float64),
        [molecular_formula(mol_from_smiles(s)) for s in kept_smiles],
        embed_graphs(model, kept, mass_stats, batch_size, progress), Counter(skipped),
        mass_stats)


def _qm9_library(model: VibraCLIP, candidates: QM9Candidates, mass_stats: MassStats | None,
                 conformer_dir: Path, workers: int, batch_size: int,
                 progress: bool) -> CandidateLibrary:
    """Every structure is kept: one RDKit cannot parse still has QM9's B3LYP geometry, its
    formula comes from its atoms and its identity "qm9:<index>" matches no query."""
    t0 = time.perf_counter()
    s = load_positions(candidates.positions, conformer_dir, model.config.conformer_seed, workers,
                       progress)
    t1 = time.perf_counter()
    emb = embed_structures(model, s, mass_stats, batch_size, progress)
    log.info("QM9 library: %d structures (%s), conformers %.1f s, embedding %.1f s", len(s),
             dict(s.routes()), t1 - t0, time.perf_counter() - t1)
    return CandidateLibrary(list(s.smiles), list(s.identity),
                            np.asarray(s.mass_da, dtype=np.float64),
                            hill_formulas(s.z, s.atom_offsets), emb, Counter(), mass_stats)


def save_library(tensors_path: Path, library: CandidateLibrary, n_input: int) -> None:
    """The library as tensors_path (.safetensors: graph_emb, mass_da), then its metadata (.json
    beside it: strings, skip counts, the tensors file's size), each written to a temporary file
    and renamed: a reader sees whole files or none, and the metadata vouches for the tensors."""
    meta_path = tensors_path.with_suffix(".json")
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tensors_path.with_name(f"{tensors_path.name}.{os.getpid()}.tmp")
    tmp_meta = meta_path.with_name(f"{meta_path.name}.{os.getpid()}.tmp")
    try:
        save_file({"graph_emb": library.graph_emb.contiguous(),
                   "mass_da": torch.from_numpy(library.mass_da)}, tmp)
        size = tmp.stat().st_size
        os.replace(tmp, tensors_path)
        tmp_meta.write_text(json.dumps({
            "version": LIBRARY_FORMAT_VERSION, "n_input": n_input, "tensors_bytes": size,
            "smiles": library.smiles, "identity": library.identity, "formula": library.formula,
            "skipped": dict(library.skipped)}))
        os.replace(tmp_meta, meta_path)
    finally:  # a write that failed half-way leaves nothing behind
        tmp.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)


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
        library = CandidateLibrary(meta["smiles"], meta["identity"],
                                   tensors["mass_da"].numpy(), meta["formula"],
                                   tensors["graph_emb"], Counter(meta["skipped"]), mass_stats,
                                   digest)
        n = len(library.smiles)
        if not (len(library.identity) == len(library.formula) == len(library.mass_da) == n
                and tuple(library.graph_emb.shape) == (n, model.config.latent_dim)):
            raise ValueError(f"{n} SMILES, {len(library.identity)} identities, "
                             f"{len(library.formula)} formulas, {len(library.mass_da)} masses "
                             f"and embeddings of shape {tuple(library.graph_emb.shape)}")
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        log.warning("%s: damaged candidate library cache (%s); rebuilding it", tensors_path, exc)
        return None
    log.info("candidate library from cache %s", tensors_path)
    return library


def check_query(model: VibraCLIP, ir: Spectrum | None, raman: Spectrum | None,
                mass_da: float | None = None, formula: str | None = None,
                top: int | None = None) -> None:
    """Raise IdentifyError when the spectra/mass/formula given cannot be used with this model."""
    cfg = model.config
    if ir is None and raman is None:
        raise IdentifyError("no query spectrum: give an IR spectrum (--ir) and/or a Raman "
                            "spectrum (--raman)")
    if raman is not None and cfg.loss == "graph_ir":
        raise IdentifyError(f"{raman.source}: this checkpoint's config has loss='graph_ir', so its "
                            "Raman encoder was never trained; drop --raman or use a checkpoint "
                            "trained with loss 'graph_centred' or 'all_pairs'")
    if formula is not None:
        hill_formula(formula)
    if cfg.mass and mass_da is None and formula is None:
        raise IdentifyError("this checkpoint was trained with mass anchoring (config.mass=True), "
                            "so the query needs its molecular mass: give --mass in Da, or "
                            "--formula from which the mass is computed")
    if top is not None and top < 1:
        raise IdentifyError(f"top={top}: must be at least 1")
    if mass_da is not None and not (math.isfinite(mass_da) and mass_da > 0):
        raise IdentifyError(f"mass {mass_da!r}: must be a positive number in Da")


def identify(model: VibraCLIP, library: CandidateLibrary, ir: Spectrum | None,
             raman: Spectrum | None, mass_da: float | None = None, mass_tol_da: float = 0.5,
             formula: str | None = None, top: int = 25) -> pd.DataFrame:
    """Top candidates (rank, score, smiles, formula, mass_da) for one measured spectrum query.

    Score: IR + Raman -> library_scorer in [0, 1]; one spectrum -> cosine in [-1, 1]. mass_da
    keeps candidates within ±mass_tol_da, formula those of the same Hill formula; the counts are
    in df.attrs ("n_library", "n_candidates").
    """
    check_query(model, ir, raman, mass_da, formula, top)
    if library.model_digest and library.model_digest != model_digest(model):
        raise IdentifyError("the candidate library was embedded with another checkpoint; rebuild "
                            "it with build_library(model, ...) for this model")
    if len(library) == 0:
        raise IdentifyError(f"the candidate library is empty (skipped: {dict(library.skipped)})")
    hill = hill_formula(formula) if formula is not None else None
    query_mass = mass_da if mass_da is not None else (formula_mass_da(hill) if hill else None)
    mass = None
    if model.config.mass:
        if library.mass_stats is None:
            raise IdentifyError("the library has no mass statistics but the checkpoint uses mass "
                                "anchoring; rebuild it with mass_stats_for(checkpoint)")
        mass = library.mass_stats.standardize(query_mass)
    model.eval()
    with torch.inference_mode():
        def embed(spectrum: Spectrum, encoder) -> torch.Tensor:
            x = torch.from_numpy(spectrum_to_model_input(spectrum)).reshape(1, -1)
            return encoder(x, mass).float()
        ir_q = embed(ir, model.encode_ir) if ir is not None else None
        ra_q = embed(raman, model.encode_raman) if raman is not None else None
    if ir_q is not None and ra_q is not None:
        score_fn = library_scorer(library.graph_emb, ir_q, ra_q)
    else:
        score_fn = cosine_scorer(ir_q if ir_q is not None else ra_q, library.graph_emb)
    keep = torch.ones(1, len(library), dtype=torch.bool)
    filters = []
    if mass_da is not None:
        keep &= mass_filter_mask(torch.tensor([mass_da]), torch.from_numpy(library.mass_da),
                                 mass_tol_da)
        filters.append(f"mass {mass_da:g} ± {mass_tol_da:g} Da")
    if hill is not None:
        keep &= torch.tensor([[f == hill for f in library.formula]])
        filters.append(f"formula {hill}")
    n_ok = int(keep.sum())
    if n_ok == 0:
        near = library.mass_da[np.argsort(np.abs(library.mass_da - query_mass))[:3]]
        raise IdentifyError(f"no candidate of {len(library)} passes the filter "
                            f"({' and '.join(filters)}); the nearest candidate masses are "
                            f"{', '.join(f'{m:.3f}' for m in near)} Da: widen --mass-tol, check "
                            "--mass/--formula, or use a larger --candidates library")
    if filters:
        log.info("%s: %d of %d candidates pass", " and ".join(filters), n_ok, len(library))
    scores, idx = topk_scored(score_fn, 1, min(top, n_ok), mask=keep)
    rows = idx[0].tolist()
    df = pd.DataFrame({"rank": np.arange(1, len(rows) + 1), "score": scores[0].numpy(),
                       "smiles": [library.smiles[i] for i in rows],
                       "formula": [library.formula[i] for i in rows],
                       "mass_da": library.mass_da[rows]}, columns=list(RESULT_COLUMNS))
    df.attrs.update(n_library=len(library), n_candidates=n_ok, filters=filters)
    return df


def write_results(df: pd.DataFrame, path: str | Path) -> Path:
    """Write the ranked table as .csv or .json (a list of records) by the suffix of path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix.lower() == ".json":
        path.write_text(df.to_json(orient="records", indent=2))
    else:
        raise IdentifyError(f"{path}: unknown output suffix {path.suffix!r}; use .csv or .json")
    return path


def draw_grid(df: pd.DataFrame, path: str | Path, n: int = 12, per_row: int = 4) -> Path:
    """PNG grid of the top n structures, each labelled 'rank. score'."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    rows = df.head(n)
    if rows.empty:
        raise IdentifyError(f"{path}: no candidates to draw")
    mols = [Chem.MolFromSmiles(s) for s in rows["smiles"]]
    legends = [f"{r}. {s:.3f}" for r, s in zip(rows["rank"], rows["score"])]
    img = Draw.MolsToGridImage(mols, molsPerRow=min(per_row, len(mols)), subImgSize=(250, 250),
                               legends=legends)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(img, "save"):
        img.save(path, format="PNG")
    else:  # inside IPython RDKit may hand back an IPython.display.Image holding PNG bytes
        path.write_bytes(img.data)
    return path


def format_table(df: pd.DataFrame) -> str:
    """The ranked table as aligned text: rank, score (4 decimals), SMILES, formula, mass in Da."""
    shown = df.assign(score=df["score"].map(lambda s: f"{s:.4f}"),
                      mass_da=df["mass_da"].map(lambda m: f"{m:.3f}"))
    return shown.to_string(index=False)
