"""GFN2-xTB IR + Raman spectra of the measured molecules, for the domain-gap figure and the
library-search baseline, and of every QM9 isomer of their formulas (the candidates of Chapter 6's
isomer library, whose simulated spectra the re-ranking compares with the measured ones): our own
simulation, so it is committed (data/experimental_ir/gfn2, data/experimental_ir/qm9_isomers_gfn2).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from vibraclip_core.config.profiles import EMBEDDED_DATA_DIR
from vibraclip_core.data.datasets import load_sticks
from vibraclip_core.data.generate import generate
from vibraclip_core.data.molecules import mol_from_smiles, molecular_formula
from vibraclip_core.data.ood import candidates_source
from vibraclip_core.data.sources import load_qm9_source, qm9_formulas, qm9_index_of
from vibraclip_core.measured.experimental import GFN2_DIR, ISOMERS_GFN2_DIR, load_mapping

ISOMER_SHARD_SIZE = 100

log = logging.getLogger(__name__)


def simulate_mapped(out_dir: str | Path = GFN2_DIR, workers: int = 1) -> list[Path]:
    """GFN2-xTB IR + Raman of every distinct mapped molecule (one shard, index = row of the
    unique-SMILES list in table order). Molecules in QM9 start from QM9's B3LYP geometry, like
    the embedded set; the others from an ETKDG + MMFF conformer."""
    table = load_mapping()
    unique = pd.DataFrame({"smiles": list(dict.fromkeys(s for s in table.smiles if s))})
    in_qm9 = qm9_index_of(list(unique.smiles))
    log.info("%d of %d measured molecules are in QM9", len(in_qm9), len(unique))
    qm9 = load_qm9_source(set(in_qm9.values()))
    from_smiles = candidates_source(unique)

    def load(indices: set[int]) -> dict:
        out = from_smiles({i for i in indices if unique.smiles[i] not in in_qm9})
        for i in indices:
            smi = unique.smiles[i]
            if smi in in_qm9:  # QM9 geometry, our SMILES and row index
                out[i] = dataclasses.replace(qm9[in_qm9[smi]], index=i, smiles=smi)
        return out

    return generate(Path(out_dir), np.arange(len(unique)), load, 1, workers=workers,
                    shard_size=len(unique))


def isomer_indices(data_dir: Path = EMBEDDED_DATA_DIR) -> np.ndarray:
    """QM9 indices (ascending) of every QM9 molecule with the formula of a mapped measured
    molecule, less those whose spectra `data_dir` already holds."""
    formulas = {molecular_formula(mol_from_smiles(s)) for s in load_mapping().smiles if s}
    index, all_formulas = qm9_formulas()
    have = set(int(i) for i in load_sticks(Path(data_dir)).index)
    return np.array([int(i) for i, f in zip(index, all_formulas) if f in formulas
                     and int(i) not in have], dtype=np.int64)


def simulate_isomers(out_dir: str | Path = ISOMERS_GFN2_DIR, workers: int = 2) -> list[Path]:
    """GFN2-xTB IR + Raman of `isomer_indices`, from QM9's B3LYP geometries like the embedded
    set, in shards of ISOMER_SHARD_SIZE (resumable)."""
    order = isomer_indices()
    n = -(-len(order) // ISOMER_SHARD_SIZE)
    log.info("%d QM9 isomers of the measured formulas outside the embedded set", len(order))
    return generate(Path(out_dir), order, load_qm9_source, n, workers=workers,
                    shard_size=ISOMER_SHARD_SIZE)
