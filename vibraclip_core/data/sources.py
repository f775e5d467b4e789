"""The molecules the simulator starts from: QM9's records (from the `qm9pack` wheel) or SMILES.

A QM9 record brings its B3LYP geometry and harmonic frequencies; a SMILES gets an ETKDG
conformer relaxed with MMFF (`molecules.embed_conformer`). Either becomes a `SourceMolecule`,
what `generate` hands to the simulator. QM9 is also sampled here: the embedded dataset grows
along one seeded order of all QM9 indices (`qm9_order`).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, RDLogger

from vibraclip_core.data.formulas import ATOMIC_NUMBER
from vibraclip_core.data.molecules import (MoleculeError, canonical_identity, embed_conformer,
                                           mol_from_smiles, molecular_formula)

log = logging.getLogger(__name__)

QM9_SIZE = 130_831
QM9_SAMPLE_SEED = 20250401


@dataclass(frozen=True)
class SourceMolecule:
    """One input molecule: an index in its source set, SMILES, atomic numbers, geometry (A)."""

    index: int
    smiles: str
    numbers: np.ndarray
    positions_ang: np.ndarray
    ref_freqs_cm1: np.ndarray  # reference (e.g. B3LYP) harmonic frequencies; may be empty
    problem: str = ""  # why the source record is unusable, if it is


def qm9pack_csv_paths() -> list[Path]:
    """The three QM9 tables shipped in the `qm9pack` wheel (read directly: its module needs
    pkg_resources, which recent setuptools dropped)."""
    spec = importlib.util.find_spec("qm9pack")  # locate without importing its __init__
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package 'qm9pack' is not installed: pip install qm9pack")
    root = Path(list(spec.submodule_search_locations)[0]) / "data"
    return [root / f"qm9_part{i}.csv" for i in (1, 2, 3)]


def _parse_list(text: str) -> list:
    # Python-literal lists ("0." is valid there, not in JSON); "*^" is QM9's Mathematica exponent.
    return ast.literal_eval(text.replace("*^", "e"))


def load_qm9_source(indices: set[int] | None = None) -> dict[int, SourceMolecule]:
    """QM9 molecules by QM9 index (1-based), optionally only those in `indices`."""
    cols = ["Index", "SMILES", "Elements", "XYZ_Ang", "Harmonic_Freq_cmi"]
    out: dict[int, SourceMolecule] = {}
    for path in qm9pack_csv_paths():
        df = pd.read_csv(path, usecols=cols)
        if indices is not None:
            df = df[df["Index"].isin(indices)]
        for row in df.itertuples(index=False):
            try:
                elements = _parse_list(row.Elements)
                # 0 marks an element outside ELEMENTS: the simulator job rejects it
                numbers = np.array([ATOMIC_NUMBER.get(s, 0) for s in elements], dtype=np.int32)
                pos = np.array(_parse_list(row.XYZ_Ang), dtype=float).reshape(len(numbers), 3)
                ref = np.array(_parse_list(row.Harmonic_Freq_cmi), dtype=np.float32)
                problem = ""
            except (ValueError, SyntaxError) as exc:
                numbers, pos, ref = np.zeros(0, np.int32), np.zeros((0, 3)), np.zeros(0, np.float32)
                problem = f"unparseable QM9 record: {exc}"
            out[int(row.Index)] = SourceMolecule(
                index=int(row.Index), smiles=str(row.SMILES), numbers=numbers,
                positions_ang=pos, ref_freqs_cm1=ref, problem=problem)
    return out


@functools.lru_cache(maxsize=1)
def qm9_indices() -> np.ndarray:
    """Sorted QM9 indices present in qm9pack (1-based, with gaps: QM9 dropped 3,054 of 133,885);
    read once per process, returned read-only."""
    parts = [pd.read_csv(p, usecols=["Index"])["Index"].to_numpy() for p in qm9pack_csv_paths()]
    out = np.sort(np.concatenate(parts)).astype(np.int64)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=4)
def qm9_order(seed: int = QM9_SAMPLE_SEED) -> np.ndarray:
    """Seeded permutation of all QM9 indices (read-only); the dataset grows along it. Libraries
    ask for it many times, so it is computed once per process and seed."""
    indices = qm9_indices()
    if len(indices) != QM9_SIZE:
        log.warning("qm9pack holds %d molecules, expected %d", len(indices), QM9_SIZE)
    out = np.random.default_rng(seed).permutation(indices)
    out.setflags(write=False)
    return out


def qm9_index_of(smiles: list[str]) -> dict[str, int]:
    """QM9 index of each SMILES whose canonical identity is in QM9 (qm9pack), others absent."""
    wanted = {canonical_identity(s): s for s in smiles}
    found = {}
    for path in qm9pack_csv_paths():
        df = pd.read_csv(path, usecols=["Index", "SMILES"])
        for index, smi in zip(df.Index, df.SMILES):
            try:
                ident = canonical_identity(smi)
            except Exception:  # a QM9 SMILES RDKit cannot parse is simply not a match
                continue
            if ident in wanted:
                found[wanted[ident]] = int(index)
    return found


def source_from_smiles(smiles: list[str], seed: int = 0) -> dict[int, SourceMolecule]:
    """Source records for SMILES without a reference geometry (index = list position): an ETKDG
    conformer refined with MMFF is the simulator's starting point. Unusable SMILES get a problem."""
    out: dict[int, SourceMolecule] = {}
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi)
        numbers, pos, problem = np.zeros(0, np.int32), np.zeros((0, 3)), ""
        if mol is None:
            problem = f"unparseable SMILES {smi!r}"
        else:
            mol = Chem.AddHs(mol)
            try:  # RDKit's default attempts and MMFF steps, as the committed shards were made
                pos = embed_conformer(mol, seed=seed, optimize=True, retry=False)
                numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int32)
            except MoleculeError:
                problem = f"no conformer for {smi!r}"
        out[i] = SourceMolecule(i, smi, numbers, pos, np.zeros(0, np.float32), problem)
    return out


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
