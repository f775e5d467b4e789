"""Frequency calibration of measured spectra: two wavenumber factors fitted against simulation.

A measured IR spectrum's bands sit away from the GFN2-xTB harmonic ones (anharmonicity, and a
different shift for X-H stretches). Scaling its wavenumbers below and above XH_THRESHOLD_CM1 by
the factors that make measured spectra most similar to their molecules' simulated spectra (on
the model grid) narrows that gap; Chapter 6 fits them out of fold, never on a ranked molecule.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from vibraclip_core.data.augment import XH_THRESHOLD_CM1
from vibraclip_core.data.datasets import load_sticks
from vibraclip_core.data.molecules import canonical_identity
from vibraclip_core.data.spectra import (MODEL_POINTS, model_grid, spectrum_to_model_input,
                                         sticks_to_model_input)
from vibraclip_core.measured.experimental import MeasuredIR

DEFAULT_FACTORS = np.round(np.arange(0.94, 1.0601, 0.0025), 4)


def scaled_wavenumbers(wavenumbers_cm1: np.ndarray, factor: float | tuple[float, float]
                       ) -> np.ndarray:
    """Wavenumbers times `factor`, or times factor[0] below XH_THRESHOLD_CM1 and factor[1]
    above it."""
    below, above = (factor, factor) if np.isscalar(factor) else factor
    x = np.asarray(wavenumbers_cm1, dtype=np.float64)
    return np.where(x > XH_THRESHOLD_CM1, x * above, x * below)


def scaled_inputs(records: Sequence[MeasuredIR], factor: float | tuple[float, float]
                  ) -> torch.Tensor:
    """(n, 1750) model inputs of measured spectra with wavenumbers scaled (`scaled_wavenumbers`)."""
    out = []
    for r in records:
        s = dataclasses.replace(r.spectrum, notes=[],
                                wavenumbers_cm1=scaled_wavenumbers(r.spectrum.wavenumbers_cm1,
                                                                   factor))
        out.append(spectrum_to_model_input(s))  # it sorts the (possibly reordered) axis itself
    return torch.from_numpy(np.stack(out).astype(np.float32))


def simulated_inputs(data_dir: str | Path, fwhm_cm1: float = 15.0) -> dict[str, np.ndarray]:
    """identity -> (1750,) IR model input from a folder of simulated stick shards (status ok)."""
    sticks = load_sticks(Path(data_dir)).ok()
    ir = sticks_to_model_input(sticks.freqs_cm1, sticks.ir_km_mol, sticks.offsets, fwhm_cm1)
    return {canonical_identity(s): ir[i] for i, s in enumerate(sticks.smiles)}


def fit_region_scales(records: Sequence[MeasuredIR], simulated: dict[str, np.ndarray],
                      factors: np.ndarray = DEFAULT_FACTORS) -> tuple[float, float]:
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
        scores = [float((torch.nn.functional.normalize(scaled_inputs(paired, f)[:, region],
                                                       dim=1) * t).sum(1).mean())
                  for f in factors]
        best.append(float(factors[int(np.argmax(scores))]))
    return best[0], best[1]


def out_of_fold_scales(records: Sequence[MeasuredIR], folds: Sequence[dict[str, torch.Tensor]],
                       simulated: dict[str, np.ndarray]) -> tuple[torch.Tensor, list[tuple]]:
    """((n, 1750) calibrated model inputs, factors per fold): each fold's test spectra scaled by
    region factors fitted on its training and validation folds only."""
    out, factors = torch.zeros(len(records), MODEL_POINTS), []
    for split in folds:
        fit_rows = torch.cat([split["train"], split["val"]])
        f = fit_region_scales([records[int(i)] for i in fit_rows], simulated)
        factors.append(f)
        out[split["test"]] = scaled_inputs([records[int(i)] for i in split["test"]], f)
    return out, factors
