"""Physically motivated augmentation of stick spectra during pretraining, and cross-theory queries.

A model trained on one level of theory learns its exact band positions. GFN2-xTB bands sit a few
per cent below B3LYP's (median ratio 1.014 below 2,500 cm-1 on the embedded set, X-H stretches
another 1.5 % apart, per-mode scatter ~3 %), and measured fundamentals are anharmonic, broadened
by rotational envelopes and cut off where instruments stop. Augmentation perturbs each training
molecule's sticks *before* broadening, the way another theory or an instrument would, and
broadens them on the model grid in the training step (seeded: the same run draws the same
perturbations). The cross-theory test replaces the GFN2 frequencies of held-out molecules by
QM9's B3LYP ones (rank-paired, GFN2 intensities kept): a domain shift with no measured data.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from vibraclip_core.config.choices import AUGMENTATIONS, TRANSFER_AUGMENT
from vibraclip_core.data.augment_ranges import (XH_THRESHOLD_CM1, AugmentRanges,
                                                rank_paired_frequencies)
from vibraclip_core.data.datasets import PreparedData, StickSet, load_sticks
from vibraclip_core.data.spectra import MODEL_POINTS, model_grid, sticks_to_model_input

# Every transform (the choices of Config.augment, which names the ones a run uses) and those of
# the transfer model (Chapter 6, the shipped model; Config.transfer_augment)
TRANSFORMS, TRANSFER = AUGMENTATIONS, TRANSFER_AUGMENT
AUGMENTED_FRACTION = 0.8  # of each training batch; the rest keeps its clean GFN2 spectrum
# Position ranges: measured on the training split by augment_ranges.ranges_from_training; these
# defaults (DEFAULT_RANGES) serve callers without a training split
DEFAULT_RANGES = AugmentRanges()
FWHM_RANGE_CM1 = (8.0, 40.0)  # narrow condensed-phase bands to gas-phase rotational envelopes
# Strengths without an other-theory source in the training data (QM9 has no B3LYP intensities):
# each is multiplied by Config.augment_strength, chosen on the GFN1-xTB validation queries
LOG_INTENSITY_SD = 0.5  # "intensity": per-mode intensity factor exp(sd * N(0, 1))
BAND_LOG_SD = 0.5  # "band_intensity": one factor exp(sd * N(0, 1)) per region and spectrum
FINGERPRINT_MAX_CM1 = 1500.0  # "band_intensity" regions: < 1,500, 1,500-2,500, > 2,500 cm-1
WIDTH_SPREAD = 0.4  # "shape": a mode's share in a second, wider band: uniform in [0, spread]
BRANCH_SEP_RANGE_CM1 = (8.0, 25.0)  # "shape": P/R branch separation from the band centre
Q_FRACTION_RANGE = (0.2, 1.0)  # "shape": share of the central (Q) branch; 1: one Lorentzian
BASELINE_MAX = 0.1  # offset and end-to-end slope, as fractions of the spectrum's maximum
NOISE_MAX_SD = 0.02  # white noise sd drawn in [0, max], fraction of the maximum
CUTOFF_RANGE_CM1 = (500.0, 700.0)  # zeroed below a random wavenumber (instrument range)
CUTOFF_PROBABILITY = 0.5

def stick_rows(sticks: StickSet, index) -> np.ndarray:
    """(n,) rows of `sticks` holding these source indices; raises naming the missing ones."""
    row_of = {int(i): r for r, i in enumerate(sticks.index)}
    missing = [int(i) for i in index if int(i) not in row_of]
    if missing:
        raise ValueError(f"no stick spectra for source indices {missing[:5]} (of "
                         f"{len(missing)}) in the shards; augmentation and cross-theory queries "
                         "need the sticks of every molecule")
    return np.array([row_of[int(i)] for i in index], dtype=np.int64)


def padded_sticks(data: PreparedData, sticks: StickSet) -> dict[str, torch.Tensor]:
    """{"freqs_cm1", "ir", "raman"}: (len(data), max_modes) float32 sticks of data's rows, zero
    padded (frequency 0 marks padding), matched by source index."""
    rows = stick_rows(sticks, data.index)
    counts = np.array([sticks.offsets[r + 1] - sticks.offsets[r] for r in rows])
    width = int(counts.max()) if len(counts) else 0
    out = {k: torch.zeros(len(rows), width) for k in ("freqs_cm1", "ir", "raman")}
    for k, r in enumerate(rows):
        _put_sticks(out, "", k, sticks, r)
    return out


def _put_sticks(out: dict[str, torch.Tensor], prefix: str, k: int, sticks: StickSet, r: int
                ) -> None:
    """Write molecule r of `sticks` into row k of out[prefix + "freqs_cm1" / "ir" / "raman"]
    (imaginary frequencies become padding)."""
    f, ir, ra = sticks.sticks(r)
    out[prefix + "freqs_cm1"][k, :len(f)] = torch.from_numpy(np.clip(f, 0, None))
    out[prefix + "ir"][k, :len(f)] = torch.from_numpy(ir)
    out[prefix + "raman"][k, :len(f)] = torch.from_numpy(ra)


FFT_POINTS = 4096  # the model grid extended below and above, for circular convolution
FFT_LEAD = 256  # extended-grid points below 500 cm-1: tails of modes down to ~0 cm-1 reach in


def _offsets_cm1() -> torch.Tensor:
    """(FFT_POINTS,) signed circular offsets of the extended grid's points from point 0, cm-1."""
    k = torch.arange(FFT_POINTS, dtype=torch.float32)
    step = float(model_grid()[1] - model_grid()[0])
    return torch.where(k < FFT_POINTS // 2, k, k - FFT_POINTS) * step


def band_kernel(fwhm_cm1: torch.Tensor | float, branch_sep_cm1: torch.Tensor | float = 0.0,
                q_fraction: torch.Tensor | float = 1.0, asymmetry: torch.Tensor | float = 0.0
                ) -> torch.Tensor:
    """(B or 1, FFT_POINTS) band envelopes on the extended grid's circular offsets: a central
    Lorentzian of weight q_fraction and two side branches at -/+ branch_sep_cm1 sharing the
    rest, weighted (1 + asymmetry) / 2 and (1 - asymmetry) / 2 (a P/Q/R rotational contour);
    each argument a scalar or (B, 1). The defaults give one Lorentzian of peak height 1."""
    hw2 = (torch.as_tensor(fwhm_cm1, dtype=torch.float32).reshape(-1, 1) / 2) ** 2
    x = _offsets_cm1()
    sep = torch.as_tensor(branch_sep_cm1, dtype=torch.float32).reshape(-1, 1)
    q = torch.as_tensor(q_fraction, dtype=torch.float32).reshape(-1, 1)
    asym = torch.as_tensor(asymmetry, dtype=torch.float32).reshape(-1, 1)

    def lorentz(centre):
        return hw2 / ((x - centre) ** 2 + hw2)

    side = (1 - q) / 2
    return q * lorentz(0.0) + side * ((1 + asym) * lorentz(-sep) + (1 - asym) * lorentz(sep))


def broaden_on_model_grid(freqs_cm1: torch.Tensor, intensities: torch.Tensor,
                          fwhm_cm1: torch.Tensor | float,
                          kernel: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 1750) float32 Lorentzian spectra (peak height = intensity) of (B, M) sticks on the
    model grid; fwhm_cm1 scalar or (B, 1); `kernel` ((B or 1, FFT_POINTS) from `band_kernel`)
    replaces the Lorentzian of that width. Frequencies <= 0 are padding.

    Each stick is split between its two neighbouring points of an extended model grid (4,096
    points of ~2 cm-1), then every row is convolved with its band shape by FFT: milliseconds per
    batch where direct evaluation costs B * M * 1750 kernel values. Wrap-around reaches the
    model grid only from > 4,500 cm-1 away (relative height < 1e-5). Against exact per-stick
    evaluation (the naive twin in tests/test_augment.py) it agrees to a few per cent of the peak
    at the narrowest widths, better at wider ones.
    """
    b, _ = freqs_cm1.shape
    grid = model_grid()
    step = float(grid[1] - grid[0])
    pos = (freqs_cm1 - (grid[0] - FFT_LEAD * step)) / step
    weights = intensities * (freqs_cm1 > 0) * (pos >= 0) * (pos < FFT_POINTS - 1)
    pos = pos.clamp(0, FFT_POINTS - 1.001)
    lo = pos.floor()
    frac = pos - lo
    comb = torch.zeros(b, FFT_POINTS)
    comb.scatter_add_(1, lo.long(), weights * (1 - frac))
    comb.scatter_add_(1, lo.long() + 1, weights * frac)
    if kernel is None:
        kernel = band_kernel(fwhm_cm1)
    out = torch.fft.irfft(torch.fft.rfft(comb) * torch.fft.rfft(kernel), n=FFT_POINTS)
    return out[:, FFT_LEAD:FFT_LEAD + MODEL_POINTS]


def minmax_rows(x: torch.Tensor) -> torch.Tensor:
    """Each row mapped to [0, 1]; constant rows become zero (as spectra.minmax_scale)."""
    lo = x.min(dim=1, keepdim=True).values
    span = x.max(dim=1, keepdim=True).values - lo
    return torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), torch.zeros_like(x))


def _uniform(lo: float, hi: float, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=gen)


def _band_factors(freqs_cm1: torch.Tensor, sd: float, gen: torch.Generator) -> torch.Tensor:
    """(B, M) one log-normal factor per molecule and region (below 1,500, 1,500-2,500, above
    2,500 cm-1) for every mode in it."""
    b = freqs_cm1.shape[0]
    region = (freqs_cm1 >= FINGERPRINT_MAX_CM1).long() + (freqs_cm1 > XH_THRESHOLD_CM1).long()
    factors = torch.exp(sd * torch.randn((b, 3), generator=gen))
    return torch.gather(factors, 1, region)


def augment_sticks(freqs_cm1: torch.Tensor, ir: torch.Tensor, raman: torch.Tensor,
                   transforms: tuple[str, ...], fwhm_cm1: float, gen: torch.Generator,
                   ranges: AugmentRanges = DEFAULT_RANGES, strength: float = 1.0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(ir, raman) (B, 1750) model inputs in [0, 1] from (B, M) sticks perturbed by `transforms`
    (see TRANSFORMS): positions within `ranges`, intensity, band-shape, baseline and noise
    strengths times `strength`. Both spectra of a molecule share its band positions, widths and
    envelope; intensity factors, baseline and noise are drawn separately for each. (A relative
    IR / Raman intensity scale would change nothing: each spectrum is scaled to [0, 1] alone.)"""
    unknown = sorted(set(transforms) - set(TRANSFORMS))
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; choose from {TRANSFORMS}")
    b, m = freqs_cm1.shape
    f = freqs_cm1.clone()
    if "scale" in transforms:
        f = f * _uniform(*ranges.scale, (b, 1), gen)
    if "xh_scale" in transforms:
        f = torch.where(freqs_cm1 > XH_THRESHOLD_CM1, f * _uniform(*ranges.xh_scale, (b, 1), gen),
                        f)
    if "mode_jitter" in transforms:
        sd = _uniform(0.0, ranges.mode_jitter_max_sd, (b, 1), gen)
        f = f * (1 + sd * torch.randn((b, m), generator=gen))
    f = torch.where(freqs_cm1 > 0, f, torch.zeros_like(f))
    fwhm = _uniform(*FWHM_RANGE_CM1, (b, 1), gen) if "width" in transforms else fwhm_cm1
    kernels, wide_share = None, None
    if "shape" in transforms:  # rotational-contour envelopes; part of each band twice as wide
        sep = _uniform(*BRANCH_SEP_RANGE_CM1, (b, 1), gen)
        q = _uniform(*Q_FRACTION_RANGE, (b, 1), gen)
        asym = _uniform(-0.3, 0.3, (b, 1), gen)
        kernels = (band_kernel(fwhm, sep, q, asym), band_kernel(2 * torch.as_tensor(fwhm), sep,
                                                                q, asym))
        wide_share = _uniform(0.0, min(1.0, WIDTH_SPREAD * strength), (b, m), gen)
    grid01 = torch.linspace(0, 1, MODEL_POINTS)
    cutoff = None
    if "cutoff" in transforms:
        at = _uniform(*CUTOFF_RANGE_CM1, (b, 1), gen)
        on = torch.rand((b, 1), generator=gen) < CUTOFF_PROBABILITY
        cutoff = on & (torch.from_numpy(model_grid()).float() < at)
    out = []
    for intensities in (ir, raman):
        if "intensity" in transforms:
            intensities = intensities * torch.exp(
                LOG_INTENSITY_SD * strength * torch.randn((b, m), generator=gen))
        if "band_intensity" in transforms:
            intensities = intensities * _band_factors(freqs_cm1, BAND_LOG_SD * strength, gen)
        if kernels is None:
            y = broaden_on_model_grid(f, intensities, fwhm)
        else:
            y = (broaden_on_model_grid(f, intensities * (1 - wide_share), fwhm, kernels[0])
                 + broaden_on_model_grid(f, intensities * wide_share, fwhm, kernels[1]))
        y = y / y.amax(dim=1, keepdim=True).clamp_min(1e-12)
        if "baseline" in transforms:
            top = BASELINE_MAX * strength
            y = y + _uniform(0, top, (b, 1), gen) + _uniform(-top, top, (b, 1), gen) * grid01
        if "noise" in transforms:
            y = y + _uniform(0, NOISE_MAX_SD * strength, (b, 1), gen) * torch.randn(
                y.shape, generator=gen)
        if cutoff is not None:
            y = y.masked_fill(cutoff, 0.0)
        out.append(minmax_rows(y))
    return out[0], out[1]


def cross_theory_sticks(sticks: StickSet, scale_below: float = 1.0, scale_above: float = 1.0
                        ) -> StickSet:
    """`sticks` with every molecule's frequencies replaced by its rank-paired reference (B3LYP)
    frequencies times a calibration scale (below / above XH_THRESHOLD_CM1); intensities kept.
    A molecule without reference frequencies keeps its GFN2 ones (every ok molecule of the
    embedded set has them)."""
    freqs = sticks.freqs_cm1.copy()
    for m in range(len(sticks)):
        a, b = sticks.offsets[m], sticks.offsets[m + 1]
        f = rank_paired_frequencies(sticks.freqs_cm1[a:b], sticks.ref_freqs(m))
        freqs[a:b] = np.where(f > XH_THRESHOLD_CM1, f * scale_above, f * scale_below)
    return dataclasses.replace(sticks, freqs_cm1=freqs)


def fit_reference_scales(sticks: StickSet) -> tuple[float, float]:
    """(below, above) least-squares factors s minimising sum (s * f_ref - f_gfn2)^2 over the
    rank-paired modes >= 500 cm-1 of `sticks` (fit them on training molecules only): what
    takes reference frequencies onto the GFN2 scale, below and above XH_THRESHOLD_CM1."""
    num, den = np.zeros(2), np.zeros(2)
    for m in range(len(sticks)):
        f, _, _ = sticks.sticks(m)
        r = rank_paired_frequencies(f, sticks.ref_freqs(m)).astype(np.float64)
        keep = f >= 500
        upper = (r > XH_THRESHOLD_CM1)[keep]
        for k, sel in enumerate((~upper, upper)):
            num[k] += float((r[keep][sel] * f[keep][sel]).sum())
            den[k] += float((r[keep][sel] ** 2).sum())
    if not (den > 0).all():
        raise ValueError("no rank-paired modes on one side of the X-H threshold to fit")
    return float(num[0] / den[0]), float(num[1] / den[1])


def cross_theory_data(data: PreparedData, sticks: StickSet, fwhm_cm1: float,
                      scales: tuple[float, float] = (1.0, 1.0), key: str = "b3lyp"
                      ) -> PreparedData:
    """`data` whose IR and Raman inputs are rebuilt from reference (B3LYP) frequencies with
    GFN2 intensities (`cross_theory_sticks`), matched by source index; graphs and splits kept."""
    sel = sticks.select(stick_rows(sticks, data.index))
    moved = cross_theory_sticks(sel, *scales)
    ir = sticks_to_model_input(moved.freqs_cm1, moved.ir_km_mol, moved.offsets, fwhm_cm1)
    raman = sticks_to_model_input(moved.freqs_cm1, moved.raman_a4_amu, moved.offsets, fwhm_cm1)
    return dataclasses.replace(data, ir=torch.from_numpy(ir), raman=torch.from_numpy(raman),
                               key=f"{data.key}-{key}-{scales[0]:.4f}-{scales[1]:.4f}")


def other_theory_data(data: PreparedData, other: StickSet, fwhm_cm1: float, key: str = "gfn1"
                      ) -> PreparedData:
    """`data` whose IR and Raman inputs are those of another level of theory's sticks (for
    instance GFN1-xTB, `second_theory`), matched by source index, with the validation and test
    splits cut to the molecules `other` holds (the training split is kept: it is never queried).
    Rows outside `other` keep their GFN2 inputs."""
    ok = other.ok()
    row_of = {int(i): r for r, i in enumerate(ok.index)}
    have = torch.tensor([int(i) in row_of for i in data.index])
    rows = torch.nonzero(have).flatten()
    ir, raman = data.ir.clone(), data.raman.clone()
    if len(rows):
        sel = ok.select(np.array([row_of[int(data.index[r])] for r in rows]))
        ir[rows] = torch.from_numpy(sticks_to_model_input(sel.freqs_cm1, sel.ir_km_mol,
                                                          sel.offsets, fwhm_cm1))
        raman[rows] = torch.from_numpy(sticks_to_model_input(sel.freqs_cm1, sel.raman_a4_amu,
                                                             sel.offsets, fwhm_cm1))
    splits = {s: (idx if s == "train" else idx[have[idx]]) for s, idx in data.splits.items()}
    return dataclasses.replace(data, ir=ir, raman=raman, splits=splits, key=f"{data.key}-{key}")


def stick_source(data_dir: str | Path) -> StickSet:
    """The stick spectra (status ok) of a shard folder, for augmentation and cross-theory data."""
    return load_sticks(Path(data_dir)).ok()


def second_theory_sticks(data: PreparedData, other: StickSet, rows: torch.Tensor, width: int
                         ) -> dict[str, torch.Tensor]:
    """{"second_freqs_cm1", "second_ir", "second_raman"}: (len(data), width) zero-padded sticks of
    another level of theory for data's `rows` (the training split) that `other` holds (status ok),
    and "has_second": (len(data), 1) 1.0 where they exist. Other rows, validation and test rows
    included, get none: a second theory may only ever show the model its training molecules."""
    ok = other.ok()
    row_of = {int(i): r for r, i in enumerate(ok.index)}
    out = {k: torch.zeros(len(data), width) for k in ("second_freqs_cm1", "second_ir",
                                                       "second_raman")}
    out["has_second"] = torch.zeros(len(data), 1)
    for k in rows.tolist():
        r = row_of.get(int(data.index[k]))
        if r is None:
            continue
        n_modes = ok.offsets[r + 1] - ok.offsets[r]
        if n_modes > width:
            raise ValueError(f"source index {int(data.index[k])}: {n_modes} modes in the second "
                             f"theory's sticks, more than the {width} of any first-theory row")
        _put_sticks(out, "second_", k, ok, r)
        out["has_second"][k] = 1.0
    return out
