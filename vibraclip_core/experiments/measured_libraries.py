"""The three candidate libraries Chapter 6 ranks measured spectra against.

Each holds every measured molecule once: the measured molecules alone; those plus seeded QM9
distractors (the pretraining data's held-out test molecules); and every
QM9 isomer of each query's formula plus the measured molecules, searched with the formula filter
(what `vibraclip identify --candidates qm9 --formula ...` searches). `measured_ranks` ranks IR
queries against each library with its filters (LIBRARY_FILTERS).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from vibraclip_core.config.query_modes import IR_RAMAN
from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.data.molecules import mol_from_smiles, molecular_formula
from vibraclip_core.data.qm9_candidates import (Structures, candidate_geometry,
                                                distractor_positions, load_positions)
from vibraclip_core.data.sources import load_qm9_source, qm9_formulas
from vibraclip_core.data.spectra import MODEL_POINTS
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval import scores as R
from vibraclip_core.retrieval.embedding import EmbeddingCache, embed_spectra
from vibraclip_core.retrieval.evaluate import evaluate_ranks
from vibraclip_core.retrieval.library import CandidateLibrary, unique_rows

LIB_MEASURED = "measured molecules"
LIB_DISTRACTORS = "measured + QM9 distractors"
LIB_ISOMERS = "QM9 isomers + measured (formula filter)"
FILTERS = ("none", "mass", "formula")
LIBRARY_FILTERS = {LIB_MEASURED: ("none", "mass"), LIB_DISTRACTORS: ("none", "mass"),
                   LIB_ISOMERS: ("formula",)}


def structures_data(s: Structures, mass_mean: float, mass_std: float, key: str) -> PreparedData:
    """Candidate structures as PreparedData (graphs, identities, float32 masses standardized with
    mass_mean / mass_std; no spectra, no splits), embedded like the measured molecules."""
    empty = torch.zeros(0, dtype=torch.long)
    graphs = {"z": torch.from_numpy(np.asarray(s.z)).long(),
              "pos": torch.from_numpy(np.asarray(s.pos_ang)).float(),
              "node_offsets": torch.from_numpy(np.asarray(s.atom_offsets, dtype=np.int64))}
    return PreparedData(
        smiles=list(s.smiles), identity=list(s.identity), index=torch.from_numpy(s.index),
        ir=torch.zeros(len(s), MODEL_POINTS), raman=torch.zeros(len(s), MODEL_POINTS),
        mass_da=torch.from_numpy(np.asarray(s.mass_da, dtype=np.float32)),
        graphs=graphs, splits={"train": empty, "val": empty, "test": empty},
        mass_mean=mass_mean, mass_std=mass_std, report={"structures": len(s)}, key=key)



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


def measured_libraries(qm9: PreparedData, measured: PreparedData, library_size: int,
                       build_dir: str | Path, conformer_seed: int, workers: int = 1,
                       seed: int = 0) -> dict[str, CandidateLibrary]:
    """The three libraries of the module docstring, not yet embedded; the distractor library has
    `library_size` candidates: the measured molecules first, then the pretraining data's test
    molecules (held out of every model; their GFN2 spectra are in the embedded set) in a seeded
    order, then, if more are needed, QM9 molecules outside the embedded data. Candidates' masses
    are standardized with the measured data's statistics (give it the pretrained ones:
    `realign.with_mass_stats`)."""
    own_rows = unique_rows(measured)
    own = CandidateLibrary.from_rows(measured, own_rows)
    ids = set(own.identity)
    test = qm9.splits["test"][torch.randperm(len(qm9.splits["test"]),
                                             generator=torch.Generator().manual_seed(seed))]
    test = test[[qm9.identity[int(r)] not in ids for r in test]][:library_size - len(own)]
    parts = [own, CandidateLibrary.from_rows(qm9, test)]
    need = library_size - len(own) - len(test)
    if need > 0:
        order = distractor_positions(qm9.index.numpy(), qm9.index[qm9.splits["test"]].numpy())
        s = load_positions(order[:need + len(ids)], Path(build_dir) / "cache" / "qm9-conformers",
                           conformer_seed, workers, progress=False)
        keep = np.array([k for k in range(len(s)) if s.identity[k] not in ids][:need],
                        dtype=np.int64)
        parts.append(CandidateLibrary.from_rows(structures_data(
            s.take(keep), measured.mass_mean, measured.mass_std,
            f"qm9-distractors-{qm9.key}-{need}")))
    formulas = set(query_formulas(measured))
    iso = isomer_structures(formulas, conformer_seed)
    iso = iso.take(np.array([k for k in range(len(iso)) if iso.identity[k] not in ids],
                            dtype=np.int64))
    isomers = structures_data(iso, measured.mass_mean, measured.mass_std,
                              f"qm9-isomers-{'.'.join(sorted(formulas))}")
    return {LIB_MEASURED: own, LIB_DISTRACTORS: CandidateLibrary.concat(parts),
            LIB_ISOMERS: CandidateLibrary.concat([own, CandidateLibrary.from_rows(isomers)])}


def query_formulas(data: PreparedData) -> list[str]:
    """Hill formula of each row's molecule (what a user passes as --formula)."""
    return [molecular_formula(mol_from_smiles(s)) for s in data.smiles]


def filtered_ranks(query_emb: torch.Tensor, query_ids: Sequence[str], query_mass_da: torch.Tensor,
                   query_formula: Sequence[str], library: CandidateLibrary, how: str,
                   mass_tol_da: float = 0.5) -> torch.Tensor:
    """(q,) ranks of the truth by cosine against an embedded library, after a filter in
    FILTERS."""
    if how not in FILTERS:
        raise ValueError(f"filter {how!r}: choose one of {FILTERS}")
    mask = None
    if how == "mass":
        mask = R.mass_filter(query_mass_da, library.mass_da, mass_tol_da)
    elif how == "formula":
        mask = R.formula_filter_mask(query_formula, library.formula)
    return R.rank_of_truth(query_emb, library.graph_emb, list(query_ids), library.identity,
                           mask=mask)


def measured_ranks(model: VibraCLIP, measured: PreparedData, query_ir: torch.Tensor,
                   rows: torch.Tensor, libraries: dict[str, CandidateLibrary],
                   mass_tol_da: float = 0.5) -> dict[tuple[str, str], torch.Tensor]:
    """{(library, filter): (len(rows),) ranks} of IR queries `query_ir` (n, 1750) of `measured`'s
    rows against libraries embedded by `model`, each with its filters (LIBRARY_FILTERS)."""
    emb = embed_spectra(model, dataclasses.replace(measured, ir=query_ir), rows)["ir"]
    ids = [measured.identity[int(i)] for i in rows]
    every = query_formulas(measured)
    formulas = [every[int(i)] for i in rows]
    return {(name, how): filtered_ranks(emb, ids, measured.mass_da[rows], formulas, lib, how,
                                        mass_tol_da)
            for name, lib in libraries.items() for how in LIBRARY_FILTERS[name]}


def paired_identification(model: VibraCLIP, paired: PreparedData, library: CandidateLibrary,
                          build_dir: str, cache: EmbeddingCache | None = None) -> pd.DataFrame:
    """Top-k table of IR-only and IR + Raman (library score) queries of paired measured spectra
    against `library` (candidates' structures only)."""
    q = embed_spectra(model, paired, torch.arange(len(paired)))
    lib = library.embed(model, build_dir, cache=cache)
    ranks = {"ir": R.rank_of_truth(q["ir"], lib.graph_emb, paired.identity, lib.identity),
             IR_RAMAN: R.rank_of_truth_scored(
                 R.library_scorer(lib.graph_emb, q["ir"], q["raman"]), paired.identity,
                 lib.identity)}
    return evaluate_ranks(ranks).table
