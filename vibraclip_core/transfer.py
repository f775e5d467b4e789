"""From simulated to measured spectra: candidate libraries, calibration and the levers of Chapter 6.

Three libraries a chemist would search, each holding every measured molecule once:
the measured molecules alone; those plus seeded QM9 distractors (QM9 molecules outside the
embedded data, in the book's distractor order); and, with the formula filter, every QM9 isomer of
each query's formula (what `vibraclip identify --candidates qm9 --formula ...` searches). Each
lever (augmented pretraining, frequency calibration, realignment) is scored on all of them, out of
fold: no molecule's own spectrum tunes anything that ranks it.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from rdkit import RDLogger

from . import augment as A
from . import realign as RA
from . import retrieval as R
from .augment import XH_THRESHOLD_CM1
from .datasets import PreparedData, pack_graphs, prepare
from .embedding import embed_rows
from .evaluate import evaluate, evaluate_ranks
from .experimental import MeasuredIR, fetch_jcamp_spectra, load_measured_ir
from .identify import hill_formulas
from .generate import load_qm9_source, qm9pack_csv_paths
from .model import SPECTRUM_POINTS, VibraCLIP
from .molecules import MoleculeError, mol_from_smiles, molecular_formula
from .qm9_candidates import (Structures, candidate_geometry, distractor_positions,
                             load_positions)
from .shipped import manifest
from .spectra import model_grid
from .train import load_model

FILTERS = ("none", "mass", "formula")
LIB_MEASURED = "measured molecules"
LIB_DISTRACTORS = "measured + QM9 distractors"
LIB_ISOMERS = "QM9 isomers + measured (formula filter)"
SAME_THEORY = "same theory (GFN2)"
CROSS_THEORY = "cross theory (B3LYP frequencies)"


def structures_data(s: Structures, mass_mean: float, mass_std: float, key: str) -> PreparedData:
    """Candidate structures as PreparedData (graphs, identities, masses; no spectra, no splits)."""
    empty = torch.zeros(0, dtype=torch.long)
    graphs = [SimpleNamespace(z=s.z[s.atom_offsets[m]:s.atom_offsets[m + 1]],
                              pos_ang=s.pos_ang[s.atom_offsets[m]:s.atom_offsets[m + 1]])
              for m in range(len(s))]
    return PreparedData(
        smiles=list(s.smiles), identity=list(s.identity), index=torch.from_numpy(s.index),
        ir=torch.zeros(len(s), SPECTRUM_POINTS), raman=torch.zeros(len(s), SPECTRUM_POINTS),
        mass_da=torch.from_numpy(np.asarray(s.mass_da, dtype=np.float32)),
        graphs=pack_graphs(graphs), splits={"train": empty, "val": empty, "test": empty},
        mass_mean=mass_mean, mass_std=mass_std, report={"structures": len(s)}, key=key)


@functools.lru_cache(maxsize=1)
def qm9_formulas() -> tuple[np.ndarray, tuple[str, ...]]:
    """(QM9 index (130,831,), Hill formula per molecule, '' where RDKit cannot read the SMILES)."""
    RDLogger.DisableLog("rdApp.*")
    index, formulas = [], []
    for p in qm9pack_csv_paths():
        table = pd.read_csv(p, usecols=["Index", "SMILES"])
        for i, smi in zip(table["Index"], table["SMILES"]):
            try:
                formulas.append(molecular_formula(mol_from_smiles(str(smi))))
            except MoleculeError:
                formulas.append("")
            index.append(int(i))
    return np.asarray(index, dtype=np.int64), tuple(formulas)


def isomer_structures(formulas: set[str], conformer_seed: int) -> Structures:
    """Every QM9 molecule whose formula is in `formulas`, with the geometry the shared QM9
    conformer cache would give it (`candidate_geometry`), in QM9 index order."""
    index, all_formulas = qm9_formulas()
    chosen = [int(i) for i, f in zip(index, all_formulas) if f in formulas]
    source = load_qm9_source(set(chosen))
    rows = [candidate_geometry(i, source[i].smiles, source[i].numbers, source[i].positions_ang,
                               conformer_seed) for i in chosen]
    zs = [r[3] for r in rows]
    return Structures(np.asarray(chosen, dtype=np.int64), [source[i].smiles for i in chosen],
                      [r[0] for r in rows], np.array([r[1] for r in rows]), [r[2] for r in rows],
                      np.concatenate([[0], np.cumsum([len(z) for z in zs])]).astype(np.int64),
                      np.concatenate(zs) if zs else np.zeros(0, np.int64),
                      np.concatenate([r[4] for r in rows]) if rows
                      else np.zeros((0, 3), np.float32))


Parts = list[tuple[PreparedData, torch.Tensor]]


def measured_libraries(qm9: PreparedData, measured: PreparedData, library_size: int,
                       build_dir: str | Path, conformer_seed: int, workers: int = 1
                       ) -> dict[str, Parts]:
    """The three libraries of the module docstring as `realign.embed_library` parts; the
    distractor library has `library_size` candidates (measured molecules first)."""
    own = RA.unique_rows(measured)
    ids = {measured.identity[int(i)] for i in own}
    test_index = qm9.index[qm9.splits["test"]].numpy()
    order = distractor_positions(qm9.index.numpy(), test_index)
    need = library_size - len(own)
    s = load_positions(order[:need + len(ids)], Path(build_dir) / "cache" / "qm9-conformers",
                       conformer_seed, workers, progress=False)
    keep = np.array([k for k in range(len(s)) if s.identity[k] not in ids][:need], dtype=np.int64)
    distractors = structures_data(s.take(keep), measured.mass_mean, measured.mass_std,
                                  f"qm9-distractors-{qm9.key}-{need}")
    formulas = set(query_formulas(measured))
    iso = isomer_structures(formulas, conformer_seed)
    iso = iso.take(np.array([k for k in range(len(iso)) if iso.identity[k] not in ids],
                            dtype=np.int64))
    isomers = structures_data(iso, measured.mass_mean, measured.mass_std,
                              f"qm9-isomers-{'.'.join(sorted(formulas))}")
    return {LIB_MEASURED: [(measured, own)],
            LIB_DISTRACTORS: [(measured, own), (distractors, torch.arange(len(distractors)))],
            LIB_ISOMERS: [(measured, own), (isomers, torch.arange(len(isomers)))]}


@dataclass
class EmbeddedLibrary:
    """Graph embeddings of a library's candidates with identity, mass (Da) and Hill formula."""

    emb: torch.Tensor
    identity: list[str]
    mass_da: torch.Tensor
    formula: list[str]


def embed_measured_library(model: VibraCLIP, parts: Parts, build_dir: str) -> EmbeddedLibrary:
    """`realign.embed_library` plus each candidate's Hill formula, from its atoms."""
    emb, ids, mass = RA.embed_library(model, parts, build_dir)
    formulas = [f for part, rows in parts for f in np.asarray(
        hill_formulas(part.graphs["z"].numpy(), part.graphs["node_offsets"].numpy()))[rows.numpy()]]
    return EmbeddedLibrary(emb, ids, mass, [str(f) for f in formulas])


def filtered_ranks(query_emb: torch.Tensor, query_ids: Sequence[str], query_mass_da: torch.Tensor,
                   query_formula: Sequence[str], library: EmbeddedLibrary, how: str,
                   mass_tol_da: float = 0.5) -> torch.Tensor:
    """(q,) ranks of the truth by cosine against the library, after a filter in FILTERS."""
    if how not in FILTERS:
        raise ValueError(f"filter {how!r}: choose one of {FILTERS}")
    mask = None
    if how == "mass":
        mask = R.mass_filter(query_mass_da, library.mass_da, mass_tol_da)
    elif how == "formula":
        mask = R.formula_filter_mask(query_formula, library.formula)
    return R.rank_of_truth(query_emb, library.emb, list(query_ids), library.identity, mask=mask)


def fit_region_scales(records: Sequence[MeasuredIR], simulated: dict[str, np.ndarray],
                      factors: np.ndarray = RA.DEFAULT_FACTORS) -> tuple[float, float]:
    """(below, above): the wavenumber factors below / above XH_THRESHOLD_CM1 that make the
    measured spectra most similar (cosine, on that region of the model grid) to the simulated
    spectra of the same molecules. Fit on training molecules only."""
    paired = [r for r in records if r.identity in simulated]
    if not paired:
        raise ValueError("no measured record has a simulated spectrum to fit against")
    upper = torch.from_numpy(model_grid() > XH_THRESHOLD_CM1)
    target = torch.from_numpy(np.stack([simulated[r.identity] for r in paired]))
    best = []
    for region in (~upper, upper):
        t = torch.nn.functional.normalize(target[:, region], dim=1)
        scores = [float((torch.nn.functional.normalize(RA.scaled_inputs(paired, f)[:, region],
                                                       dim=1) * t).sum(1).mean())
                  for f in factors]
        best.append(float(factors[int(np.argmax(scores))]))
    return best[0], best[1]


LIBRARY_FILTERS = {LIB_MEASURED: ("none", "mass"), LIB_DISTRACTORS: ("none", "mass"),
                   LIB_ISOMERS: ("formula",)}


def query_formulas(data: PreparedData) -> list[str]:
    """Hill formula of each row's molecule (what a user passes as --formula)."""
    return [molecular_formula(mol_from_smiles(s)) for s in data.smiles]


def measured_ranks(model: VibraCLIP, measured: PreparedData, query_ir: torch.Tensor,
                   rows: torch.Tensor, libraries: dict[str, EmbeddedLibrary], build_dir: str,
                   mass_tol_da: float = 0.5) -> dict[tuple[str, str], torch.Tensor]:
    """{(library, filter): (len(rows),) ranks} of IR queries `query_ir` (n, 1750) of `measured`'s
    rows, each library with its filters (LIBRARY_FILTERS)."""
    queries = dataclasses.replace(measured, ir=query_ir)
    emb = embed_rows(model, queries, rows, build_dir)["ir"]
    ids = [measured.identity[int(i)] for i in rows]
    every = query_formulas(measured)
    formulas = [every[int(i)] for i in rows]
    return {(name, how): filtered_ranks(emb, ids, measured.mass_da[rows], formulas, lib, how,
                                        mass_tol_da)
            for name, lib in libraries.items() for how in LIBRARY_FILTERS[name]}


def out_of_fold_scales(records: Sequence[MeasuredIR], folds: Sequence[dict[str, torch.Tensor]],
                       simulated: dict[str, np.ndarray]) -> tuple[torch.Tensor, list[tuple]]:
    """((n, 1750) calibrated model inputs, factors per fold): each fold's test spectra scaled by
    region factors fitted on its training and validation folds only."""
    out, factors = torch.zeros(len(records), SPECTRUM_POINTS), []
    for split in folds:
        fit_rows = torch.cat([split["train"], split["val"]])
        f = fit_region_scales([records[int(i)] for i in fit_rows], simulated)
        factors.append(f)
        out[split["test"]] = RA.scaled_inputs([records[int(i)] for i in split["test"]], f)
    return out, factors


REALIGN_GRID = (("last_layer", 1e-5), ("last_layer", 1e-3))


def realigned_out_of_fold(config, checkpoint: str | Path, measured: PreparedData,
                          folds: Sequence[dict[str, torch.Tensor]],
                          libraries: dict[str, Parts], build_dir: str, epochs: int,
                          trainer_kwargs: dict | None = None,
                          grid: Sequence[tuple[str, float]] = REALIGN_GRID, tag: str = "exp",
                          records: Sequence[MeasuredIR] | None = None,
                          fold_factors: Sequence[tuple[float, float]] | None = None
                          ) -> tuple[dict[tuple[str, str], torch.Tensor], list[str]]:
    """({(library, filter): (n,) out-of-fold ranks}, setting chosen per fold, as text). Per
    fold, each (trainable, lr) of `grid` realigns on the training folds (Raman masked); the one whose
    validation fold ranks best (mean rank, distractor library, no filter) ranks the test fold.
    With `fold_factors`, fold f's spectra (all of them: training, validation and test) are
    calibrated by its own factors, fitted without its test fold (`out_of_fold_scales`)."""
    out: dict[tuple[str, str], torch.Tensor] = {}
    chosen = []
    no_raman = torch.zeros(len(measured), dtype=torch.bool)
    for f, split in enumerate(folds):
        fold = RA.with_splits(measured, split, f"fold{f}-of-{len(folds)}")
        if fold_factors is not None:
            below, above = fold_factors[f]
            fold = dataclasses.replace(fold, ir=RA.scaled_inputs(records, fold_factors[f]),
                                       key=f"{fold.key}-scaled-{below:.4f}-{above:.4f}")
        best = None
        for trainable, lr in grid:
            run = RA.realign(config, checkpoint, fold, tag=f"realign-{tag}-{f}-{trainable}-{lr:g}",
                             epochs=epochs, lr=lr, trainable=trainable,
                             trainer_kwargs=trainer_kwargs, has_raman=no_raman)
            model = load_model(run.best_checkpoint)
            libs = {n: embed_measured_library(model, p, build_dir) for n, p in libraries.items()}
            val = measured_ranks(model, fold, fold.ir, split["val"], libs, build_dir)
            score = float(val[(LIB_DISTRACTORS, "none")].float().mean())
            if best is None or score < best[0]:
                best = (score, (trainable, lr), model, libs)
        _, setting, model, libs = best
        chosen.append(f"{setting[0].replace('_', ' ')}, lr {setting[1]:g}")
        for key, r in measured_ranks(model, fold, fold.ir, split["test"], libs,
                                     build_dir).items():
            out.setdefault(key, torch.zeros(len(measured), dtype=torch.long))[split["test"]] = r
    return out, chosen


def lever_table(ranks: dict[str, dict[tuple[str, str], torch.Tensor]], seed: int = 0,
                ks: tuple[int, ...] = (1, 10)) -> pd.DataFrame:
    """Top-k % per lever (rows) and (library, filter, top-k) (columns) from out-of-fold ranks."""
    flat = {f"{lever}|{lib}|{how}": r for lever, d in ranks.items() for (lib, how), r in d.items()}
    table = evaluate_ranks(flat, seed=seed).table
    cols = {}
    for key in flat:
        lever, lib, how = key.split("|")
        for k in ks:
            cols.setdefault((lib, how, f"top{k}"), {})[lever] = float(table.loc[key, f"top{k}"])
    out = pd.DataFrame(cols).reindex(index=list(ranks))
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["library", "filter", "top-k %"])
    return out.round(1)


def cross_theory_table(models: dict[str, VibraCLIP], data: PreparedData, sticks: A.StickSet,
                       fwhm_cm1: float,
                       build_dir: str, split: str = "test", seed: int = 0) -> pd.DataFrame:
    """Top-1 / top-10 % of each model on `split` with GFN2 queries (same theory), B3LYP
    frequencies with GFN2 intensities (cross theory), and B3LYP frequencies calibrated onto the
    GFN2 scale by region factors fitted on the training split (`augment.fit_reference_scales`)."""
    train_rows = A.stick_rows(sticks, data.index[data.splits["train"]])
    scales = A.fit_reference_scales(sticks.select(train_rows))
    queries = {SAME_THEORY: data, CROSS_THEORY: A.cross_theory_data(data, sticks, fwhm_cm1),
               f"cross theory, calibrated ({scales[0]:.3f} / {scales[1]:.3f})":
                   A.cross_theory_data(data, sticks, fwhm_cm1, scales)}
    cols = {}
    for model_name, model in models.items():
        for q_name, q in queries.items():
            t = evaluate(model, q, split, build_dir, seed=seed).table
            for mode in ("ir", "ir+raman library"):
                for k in ("top1", "top10"):
                    cols.setdefault((q_name, mode, k), {})[model_name] = float(t.loc[mode, k])
    out = pd.DataFrame(cols)
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["queries", "query", "top-k %"])
    return out.round(1)


def lever_row(ranks: dict[str, dict[tuple[str, str], torch.Tensor]], lever: str, library: str,
              how: str, seed: int = 0) -> pd.Series:
    """The evaluation row (top1 ... top25 %) of one lever on one library and filter."""
    return evaluate_ranks({"x": ranks[lever][(library, how)]}, seed=seed).table.loc["x"]


def measured_levers(models: dict[str, tuple[VibraCLIP, str | Path]], config, measured: PreparedData,
                    records: Sequence[MeasuredIR], folds: Sequence[dict[str, torch.Tensor]],
                    simulated: dict[str, np.ndarray], parts: dict[str, Parts], build_dir: str,
                    realign_epochs: int, trainer_kwargs: dict | None = None
                    ) -> tuple[dict[str, dict[tuple[str, str], torch.Tensor]], dict[str, list]]:
    """Out-of-fold ranks of every lever alone and together, for each model (name -> (model,
    checkpoint)): zero-shot, + calibration (region factors fitted per fold), + realignment
    (settings chosen per fold on its validation fold; for the first model on raw queries, i.e.
    realignment alone, for the others after calibration); and the settings and factors chosen."""
    rows = torch.arange(len(measured))
    calibrated, factors = out_of_fold_scales(records, folds, simulated)
    ranks, chosen = {}, {"calibration factors (below / above 2,500 cm⁻¹)":
                         [f"{a:.4f} / {b:.4f}" for a, b in factors]}
    for k, (name, (model, checkpoint)) in enumerate(models.items()):
        libs = {n: embed_measured_library(model, p, build_dir) for n, p in parts.items()}
        ranks[f"{name}: zero-shot"] = measured_ranks(model, measured, measured.ir, rows, libs,
                                                     build_dir)
        ranks[f"{name} + calibration"] = measured_ranks(model, measured, calibrated, rows, libs,
                                                        build_dir)
        cal = None if k == 0 else factors
        label = f"{name} + realignment" if k == 0 else f"{name} + calibration + realignment"
        ranks[label], chosen[label] = realigned_out_of_fold(
            config, checkpoint, measured, folds, parts, build_dir, realign_epochs,
            trainer_kwargs, tag=f"lever{k}", records=records, fold_factors=cal)
    return ranks, chosen


def model_card(model: VibraCLIP, stats, folder: str | Path, build_dir: str,
               experimental_dir: str | Path | None = None, library_size: int = 1090
               ) -> tuple[dict[str, str], dict[str, str]]:
    """(provenance, {title: Markdown table}) of an exported model for its card: the simulated test
    split (same and cross theory) and measured IR zero-shot at the three libraries."""
    config = model.config
    info = manifest(folder)
    data = prepare(config)
    n_params = sum(p.numel() for p in model.parameters())
    provenance = {
        "command": f"`{info.get('command') or 'not recorded'}`",
        "commit": f"`{info['commit']}`", "run folder": f"`{info.get('run', '')}`",
        "data key": f"`{data.key}` ({len(data)} molecules)",
        "profile": config.profile, "loss": config.loss, "mass anchoring": str(config.mass),
        "augmentation": ", ".join(config.augment) or "none",
        "parameters": f"{n_params:,}",
        "weights sha256": f"`{info['sha256']['vibraclip.safetensors']}`"}
    cross = cross_theory_table({"shipped model": model}, data, A.stick_source(config.data_path),
                               config.fwhm_cm1, build_dir, seed=config.seed)
    sim = cross.T.reset_index().rename(columns={"shipped model": "%"})
    records, _ = load_measured_ir(experimental_dir or fetch_jcamp_spectra())
    measured, dropped = RA.measured_data(records, seed=config.conformer_seed)
    measured = dataclasses.replace(measured, mass_mean=stats.mean_da, mass_std=stats.std_da) \
        if stats is not None else measured
    parts = measured_libraries(data, measured, library_size, build_dir, config.conformer_seed,
                               config.workers)
    libs = {n: embed_measured_library(model, p, build_dir) for n, p in parts.items()}
    ranks = {"zero-shot": measured_ranks(model, measured, measured.ir,
                                         torch.arange(len(measured)), libs, build_dir)}
    meas = lever_table(ranks, seed=config.seed).T.reset_index().rename(columns={"zero-shot": "%"})
    sizes = ", ".join(f"{n}: {sum(len(r) for _, r in p)}" for n, p in parts.items())
    return provenance, {
        f"Simulated test split ({len(data.splits['test'])} candidates)":
            sim.to_markdown(index=False),
        f"Measured gas-phase IR, zero-shot ({len(measured)} spectra; candidates: {sizes})":
            meas.to_markdown(index=False)}


def lever_summary(ranks: dict[str, dict[tuple[str, str], torch.Tensor]], library: str,
                  how: str = "none", seed: int = 0) -> pd.DataFrame:
    """Every lever's evaluation row (top1 ... top25 %, intervals) on one library and filter,
    indexed (library, lever): the table the book's summary reads."""
    t = evaluate_ranks({lever: r[(library, how)] for lever, r in ranks.items()}, seed=seed).table
    t.index = pd.MultiIndex.from_tuples([(library, lever) for lever in t.index],
                                        names=["library", "method"])
    return t
