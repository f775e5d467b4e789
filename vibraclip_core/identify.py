"""Identify a measured IR (and Raman) spectrum: rank the structures of a candidate library.

A library of SMILES is featurised once per (checkpoint weights, SMILES list, conformer seed, mass
statistics) and its graph embeddings are cached on disk (safetensors + JSON); a query spectrum is
embedded with the same checkpoint and scored against every admissible candidate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .model import VibraCLIP
from .molecules import (MoleculeGraph, canonical_identity, featurize_many,
                        molecular_formula, mol_from_smiles, radius_edges, triplets)
from .retrieval import cosine_scorer, library_scorer, mass_filter_mask, topk_scored
from .spectra import Spectrum, spectrum_to_model_input

log = logging.getLogger(__name__)

LIBRARY_FORMAT_VERSION = 1
MASS_STATS_FILE = "mass_stats.json"
RESULT_COLUMNS = ("rank", "score", "smiles", "formula", "mass_da")
SMILES_SUFFIXES = (".smi", ".txt", ".csv")


class IdentifyError(ValueError):
    """A query or library that cannot be identified as given; the message says what to change."""


@dataclass(frozen=True)
class MassStats:
    """Training-split molecular mass statistics in Da that standardize the model's mass input."""

    mean_da: float
    std_da: float

    def standardize(self, mass_da: np.ndarray | float) -> torch.Tensor:
        """(n,) float32 (mass_da - mean_da) / std_da."""
        return torch.as_tensor((np.atleast_1d(mass_da) - self.mean_da) / self.std_da,
                               dtype=torch.float32)


def write_mass_stats(run_dir: str | Path, data: object) -> Path:
    """Write run_dir/mass_stats.json from a PreparedData's mass_mean / mass_std (Da); returns it."""
    stats = MassStats(float(getattr(data, "mass_mean")), float(getattr(data, "mass_std")))
    path = Path(run_dir) / MASS_STATS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"mass_mean_da": stats.mean_da, "mass_std_da": stats.std_da,
                                "data_key": str(getattr(data, "key", ""))}, indent=2))
    return path


def mass_stats_for(checkpoint: str | Path) -> MassStats:
    """The training mass statistics stored as mass_stats.json beside `checkpoint`."""
    path = Path(checkpoint).parent / MASS_STATS_FILE
    if not path.is_file():
        raise IdentifyError(
            f"{path}: missing. {checkpoint} was trained with mass anchoring, which needs the "
            "training mass mean/std; re-save them with vibraclip_core.identify."
            f"write_mass_stats('{Path(checkpoint).parent}', prepare(config)), config from the "
            "run's config.json, or retrain")
    try:
        raw = json.loads(path.read_text())
        stats = MassStats(float(raw["mass_mean_da"]), float(raw["mass_std_da"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise IdentifyError(f"{path}: unreadable ({exc}); expected JSON with mass_mean_da and "
                            "mass_std_da; rewrite it with write_mass_stats") from exc
    if not (math.isfinite(stats.mean_da) and math.isfinite(stats.std_da) and stats.std_da > 0):
        raise IdentifyError(f"{path}: mass_std_da must be finite and > 0, got {stats}")
    return stats


def hill_formula(formula: str) -> str:
    """Hill-order formula ('OC2H6' -> 'C2H6O'), the form RDKit's CalcMolFormula writes."""
    tokens = re.findall(r"([A-Z][a-z]?)(\d*)", formula.strip())
    if not tokens or "".join(e + n for e, n in tokens) != formula.strip():
        raise IdentifyError(f"formula {formula!r}: not a plain formula like 'C2H6O' "
                            "(element symbols and counts, no charges or brackets)")
    counts: Counter = Counter()
    for element, n in tokens:
        counts[element] += int(n) if n else 1
    if "C" in counts:  # Hill order: C, H, then alphabetical; without carbon all alphabetical
        order = ["C"] + ["H"] * ("H" in counts) + sorted(set(counts) - {"C", "H"})
    else:
        order = sorted(counts)
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


def load_candidates(spec: str | Path) -> list[str]:
    """Library SMILES: 'qm9' (all 130,831 of QM9) or a .smi/.txt/.csv file's first column."""
    if str(spec).lower() == "qm9":
        from .generate import qm9pack_csv_paths

        return [str(s) for p in qm9pack_csv_paths()
                for s in pd.read_csv(p, usecols=["SMILES"])["SMILES"]]
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


def embed_graphs(model: VibraCLIP, graphs: Sequence[MoleculeGraph], mass_stats: MassStats | None,
                 batch_size: int = 256, progress: bool = True) -> torch.Tensor:
    """(n, latent_dim) float32 graph embeddings of featurised molecules, in batches."""
    model.eval()
    out = []
    cutoff = model.config.cutoff_ang
    with torch.inference_mode():
        for a in tqdm(range(0, len(graphs), batch_size), disable=not progress, desc="embed",
                      unit="batch"):
            chunk = graphs[a:a + batch_size]
            z = torch.from_numpy(np.concatenate([g.z for g in chunk])).long()
            pos = torch.from_numpy(np.concatenate([g.pos_ang for g in chunk])).float()
            batch = torch.repeat_interleave(torch.arange(len(chunk)),
                                            torch.tensor([len(g.z) for g in chunk]))
            edges = radius_edges(pos, cutoff, batch)
            mass = (mass_stats.standardize(np.array([g.mass_da for g in chunk]))
                    if model.config.mass else None)
            out.append(model.encode_graph(z, pos, batch, mass, edges, triplets(edges, len(z)),
                                          len(chunk)).float())
    width = model.config.latent_dim
    return torch.cat(out) if out else torch.zeros(0, width)


def build_library(model: VibraCLIP, smiles: Sequence[str], mass_stats: MassStats | None,
                  cache_dir: str | Path, workers: int = 1, batch_size: int = 256,
                  progress: bool = True) -> CandidateLibrary:
    """Featurise and embed candidate SMILES (failures skipped and counted), cached in cache_dir."""
    if model.config.mass and mass_stats is None:
        raise IdentifyError("this checkpoint uses mass anchoring: pass the training mass_stats "
                            "(mass_stats_for(checkpoint)) to build_library")
    digest = model_digest(model)
    seed = model.config.conformer_seed
    stats = [mass_stats.mean_da, mass_stats.std_da] if mass_stats else None
    key = hashlib.sha256(json.dumps([LIBRARY_FORMAT_VERSION, digest, list(smiles), seed, stats])
                         .encode()).hexdigest()[:24]
    tensors_path = Path(cache_dir) / f"library-{key}.safetensors"
    meta_path = tensors_path.with_suffix(".json")
    if tensors_path.is_file() and meta_path.is_file():  # meta is written last: both = complete
        log.info("candidate library from cache %s", tensors_path)
        meta, tensors = json.loads(meta_path.read_text()), load_file(tensors_path)
        return CandidateLibrary(meta["smiles"], meta["identity"], tensors["mass_da"].numpy(),
                                meta["formula"], tensors["graph_emb"], Counter(meta["skipped"]),
                                mass_stats, digest)
    graphs, skipped = featurize_many(list(smiles), seed=seed, workers=workers, progress=progress)
    kept = [g for g in graphs if g is not None]
    log.info("candidate library: %d of %d SMILES featurised, skipped %s", len(kept), len(smiles),
             dict(skipped) or "none")
    kept_smiles = [g.smiles for g in kept]
    formulas = [molecular_formula(mol_from_smiles(s)) for s in kept_smiles]
    library = CandidateLibrary(
        kept_smiles, [canonical_identity(s) for s in kept_smiles],
        np.array([g.mass_da for g in kept], dtype=np.float64), formulas,
        embed_graphs(model, kept, mass_stats, batch_size, progress), Counter(skipped),
        mass_stats, digest)
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"graph_emb": library.graph_emb.contiguous(),
               "mass_da": torch.from_numpy(library.mass_da)}, tensors_path)
    tmp = meta_path.with_name(f"{meta_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"version": LIBRARY_FORMAT_VERSION, "n_input": len(smiles),
                               "smiles": library.smiles, "identity": library.identity,
                               "formula": library.formula, "skipped": dict(skipped)}))
    tmp.replace(meta_path)
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
