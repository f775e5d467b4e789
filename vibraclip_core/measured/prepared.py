"""Measured spectra as model data: a `PreparedData` of molecules whose spectra were measured.

`measured_prepared` turns SMILES and their model inputs into one (graphs from ETKDG conformers,
the set's own mass statistics, empty splits); `load_paired` reads a user's folder of paired IR
and Raman files into it. Realignment on the measured IR collection builds its data the same way.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from vibraclip_core.data.datasets import MASS_STD_FLOOR_DA, PreparedData, pack_graphs
from vibraclip_core.data.molecules import canonical_identity, featurize_many
from vibraclip_core.data.spectra import raman_intensity_to_activity, spectrum_to_model_input
from vibraclip_core.measured.readers import read_spectrum


def measured_prepared(smiles: Sequence[str], ir: np.ndarray, raman: np.ndarray, seed: int = 0,
                      workers: int = 1, key: str = "measured"
                      ) -> tuple[PreparedData, list[int], Counter]:
    """(PreparedData of the molecules whose SMILES featurise, rows dropped, failure counts).

    ir, raman: (n, 1750) float32 model inputs of the n SMILES (zeros for a missing spectrum).
    Splits are empty placeholders (set them per fold); report = {"records", "featurised"}.
    """
    graphs, failures = featurize_many(list(smiles), seed=seed, workers=workers, progress=False)
    keep = [i for i, g in enumerate(graphs) if g is not None]
    dropped = [i for i, g in enumerate(graphs) if g is None]
    mass = np.array([graphs[i].mass_da for i in keep], dtype=np.float32)
    empty = torch.zeros(0, dtype=torch.long)
    data = PreparedData(
        smiles=[smiles[i] for i in keep], identity=[canonical_identity(smiles[i]) for i in keep],
        index=torch.arange(len(keep)),
        ir=torch.from_numpy(np.asarray(ir, dtype=np.float32)[keep]),
        raman=torch.from_numpy(np.asarray(raman, dtype=np.float32)[keep]),
        mass_da=torch.from_numpy(mass), graphs=pack_graphs([graphs[i] for i in keep]),
        splits={"train": empty, "val": empty, "test": empty},
        mass_mean=float(mass.mean()), mass_std=float(mass.std() + MASS_STD_FLOOR_DA),
        report={"records": len(graphs), "featurised": len(keep)}, key=key)
    return data, dropped, failures


def load_paired(folder: str | Path, seed: int = 0, laser_nm: float = 532.0,
                temperature_k: float = 298.0) -> PreparedData:
    """A user's paired measured spectra as PreparedData: `molecules.csv` (name, smiles) and per
    name `<name>_ir.<ext>` and `<name>_raman.<ext>` (.jdx/.dx/.jcamp/.csv/.txt). Raman
    intensities are put on the activity scale the model was trained on for that laser line and
    temperature (`spectra.raman_intensity_to_activity`). Missing or unreadable files and SMILES
    without a 3-D structure raise an error naming them."""
    folder = Path(folder)
    table = pd.read_csv(folder / "molecules.csv", dtype=str)
    if not {"name", "smiles"} <= set(table.columns):
        raise ValueError(f"{folder / 'molecules.csv'}: needs columns name, smiles")

    def find(name: str, kind: str) -> Path:
        hits = [p for p in folder.glob(f"{name}_{kind}.*") if p.is_file()]
        if not hits:
            raise FileNotFoundError(f"{folder}: no {name}_{kind}.jdx/.csv for molecule {name!r}")
        return hits[0]

    ir = [spectrum_to_model_input(read_spectrum(find(n, "ir"))) for n in table.name]
    raman = [spectrum_to_model_input(raman_intensity_to_activity(
        read_spectrum(find(n, "raman"), raman=True), laser_nm, temperature_k)) for n in table.name]
    data, dropped, failures = measured_prepared(list(table.smiles), np.stack(ir), np.stack(raman),
                                                seed=seed, key=f"paired-{folder.name}")
    if dropped:
        raise ValueError(f"{folder}: no 3-D structure for {[table.name[i] for i in dropped]} "
                         f"({dict(failures)})")
    return dataclasses.replace(data, report={"pairs": len(table)})
