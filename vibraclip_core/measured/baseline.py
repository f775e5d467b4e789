"""Baseline correction of measured spectra (`vibraclip identify --baseline arpls`).

A constant offset never changes the model's input (`spectra.spectrum_to_model_input` fills and
scales offset-invariantly); a sloped or curved baseline does. `correct_baseline` subtracts a
baseline fitted by asymmetrically reweighted penalized least squares (arPLS, Baek et al.,
Analyst 2015, 140, 250) as `pybaselines` implements it. It is off by default: whether it helps
measured spectra has not been measured out of fold. Torch-free.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vibraclip_core.config.choices import BASELINE_METHODS
from vibraclip_core.data.spectra import Spectrum, SpectrumError

# arPLS smoothness: 1e4 at 1 cm-1 point spacing, scaled by (1 cm-1 / spacing)^4 (the penalty is
# on second differences per point), so that coarse and fine files get the same stiffness in
# cm-1: stiff enough to pass under bands a few tens of cm-1 wide (tests/test_baseline.py)
ARPLS_LAM_AT_1CM1 = 1e4


def correct_baseline(spectrum: Spectrum, method: str = "arpls") -> Spectrum:
    """`spectrum` minus its fitted baseline (`method` "none" returns it unchanged), with a note
    saying what was subtracted."""
    if method not in BASELINE_METHODS:
        raise SpectrumError(f"{spectrum.source}: unknown baseline method {method!r}; choose "
                            f"from {', '.join(BASELINE_METHODS)}")
    if method == "none":
        return spectrum
    from pybaselines import Baseline

    x = np.asarray(spectrum.wavenumbers_cm1, dtype=np.float64)
    y = np.asarray(spectrum.intensity, dtype=np.float64)
    spacing = float(np.median(np.diff(x))) if len(x) > 1 else 1.0
    lam = float(np.clip(ARPLS_LAM_AT_1CM1 * spacing ** -4, 1e-2, 1e12))
    base, _ = Baseline(x_data=x).arpls(y, lam=lam)
    span = float(np.ptp(y)) or 1.0
    note = (f"baseline subtracted (arPLS, lam {lam:.3g}): it spanned "
            f"{float(np.ptp(base)) / span:.0%} of the y range")
    return dataclasses.replace(spectrum, intensity=(y - base).astype(spectrum.intensity.dtype),
                               notes=[*spectrum.notes, note])
