"""How far augmentation moves band positions: measured on the training split, never on held-out.

QM9 ships B3LYP harmonic frequencies beside the geometries; their ratio to GFN2-xTB's on the same
molecules (modes rank-paired, >= 500 cm-1) is the only other-theory information the training
split holds. `ranges_from_training` turns the training molecules' ratios into the ranges the
position transforms draw from; the intensity, band-shape, baseline and noise strengths have no
such source (QM9 has no B3LYP intensities) and are scaled by `Config.augment_strength`, which is
chosen on the GFN1-xTB validation queries (`benchmarks/augmentation_choice.py`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from vibraclip_core.data.datasets import StickSet

XH_THRESHOLD_CM1 = 2500.0  # X-H stretches lie above, everything else below
MIN_MODE_CM1 = 500.0  # modes below the model grid do not count
QUANTILES = (0.05, 0.95)  # of the molecule-wise ratios that set a range
MIN_MOLECULES = 20  # with reference frequencies, to measure ranges on
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class AugmentRanges:
    """Ranges of the position transforms. `scale` and `xh_scale` are (low, high) factors on
    the frequencies (X-H stretches above XH_THRESHOLD_CM1 get both); each molecule draws a
    per-mode scatter sd in [0, mode_jitter_max_sd]."""

    scale: tuple[float, float] = (0.97, 1.05)
    xh_scale: tuple[float, float] = (0.97, 1.04)
    mode_jitter_max_sd: float = 0.03
    molecules: int = 0  # training molecules they were measured on (0: the fixed defaults)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def _symmetric(ratios: np.ndarray) -> tuple[float, float]:
    """(low, high) covering the 5-95 % range of `ratios` and its mirror image about 1:
    another theory, or a measurement, may lie on either side of GFN2."""
    lo, hi = (float(np.quantile(ratios, q)) for q in QUANTILES)
    return round(min(lo, 2 - hi), 4), round(max(hi, 2 - lo), 4)


def rank_paired_frequencies(gfn2_cm1: np.ndarray, reference_cm1: np.ndarray) -> np.ndarray:
    """(n_modes,) the reference frequencies assigned to the GFN2 modes by rank (the k-th lowest
    GFN2 mode gets the k-th lowest reference one), in the GFN2 modes' order. With unequal counts
    the lowest modes of the longer list are the ones left unpaired: unpaired GFN2 modes keep
    their own frequency."""
    order = np.argsort(gfn2_cm1, kind="stable")
    ref = np.sort(np.asarray(reference_cm1, dtype=np.float64))
    n = min(len(order), len(ref))
    out = np.asarray(gfn2_cm1, dtype=np.float64).copy()
    if n:
        out[order[len(order) - n:]] = ref[len(ref) - n:]
    return out.astype(np.float32)


def molecule_ratios(sticks: StickSet) -> dict[str, np.ndarray]:
    """Per molecule with reference frequencies on both sides of the X-H threshold:
    "scale" (median reference/GFN2 ratio of the modes below it), "xh_scale" (median ratio
    above it over the one below) and "scatter" (robust sd of each mode's ratio about its
    region's median: 1.4826 MAD)."""
    out: dict[str, list[float]] = {"scale": [], "xh_scale": [], "scatter": []}
    for m in range(len(sticks)):
        f, _, _ = sticks.sticks(m)
        ref = sticks.ref_freqs(m)
        if len(ref) == 0:
            continue
        r = rank_paired_frequencies(f, ref).astype(np.float64)
        keep = (f >= MIN_MODE_CM1) & (r > 0)
        ratio, upper = r[keep] / f[keep], f[keep] > XH_THRESHOLD_CM1
        if upper.sum() == 0 or (~upper).sum() == 0:
            continue
        below, above = np.median(ratio[~upper]), np.median(ratio[upper])
        resid = np.where(upper, ratio / above, ratio / below) - 1
        out["scale"].append(float(below))
        out["xh_scale"].append(float(above / below))
        out["scatter"].append(float(1.4826 * np.median(np.abs(resid - np.median(resid)))))
    return {k: np.asarray(v) for k, v in out.items()}


def ranges_from_training(train_sticks: StickSet) -> AugmentRanges:
    """The position ranges measured on `train_sticks` (the training split's molecules only):
    symmetric 5-95 % ranges of the molecule-wise scale and X-H ratios, and the 95th percentile
    of the per-molecule mode scatter as the largest jitter sd. Without enough reference
    frequencies (a data folder of your own): the defaults, with a warning."""
    r = molecule_ratios(train_sticks)
    if len(r["scale"]) < MIN_MOLECULES:
        log.warning("only %d training molecules carry reference (B3LYP) frequencies on both "
                    "sides of 2,500 cm-1 (at least %d needed): augmenting with the default "
                    "position ranges %s", len(r["scale"]), MIN_MOLECULES, AugmentRanges())
        return AugmentRanges()
    return AugmentRanges(scale=_symmetric(r["scale"]), xh_scale=_symmetric(r["xh_scale"]),
                         mode_jitter_max_sd=round(float(np.quantile(r["scatter"], 0.95)), 4),
                         molecules=len(r["scale"]))
