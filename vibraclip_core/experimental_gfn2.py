"""GFN2-xTB IR + Raman spectra of the measured molecules, for the domain-gap figure and the
library-search baseline: our own simulation, so it is committed (data/experimental_ir/gfn2)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .experimental import GFN2_DIR, load_mapping
from .generate import generate
from .ood import candidates_source
from .sources import load_qm9_source, qm9_index_of

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
