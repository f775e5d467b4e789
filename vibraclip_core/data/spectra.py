"""Spectral grids, Lorentzian broadening, normalisation, measured spectra onto the grid, Raman scales.

Model input: intensities on MODEL_POINTS wavenumbers spanning 500-4000 cm-1, min-max scaled per
spectrum. Stick spectra are broadened on the 1 cm-1 fine grid first, then resampled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.constants as const
import scipy.sparse as sp

log = logging.getLogger(__name__)

GRID_MIN_CM1 = 500.0
GRID_MAX_CM1 = 4000.0
FINE_POINTS = 3501
MODEL_POINTS = 1750
# y below 0 by more than this fraction of its range earns a note (noise dips far less)
NEGATIVE_NOTE_FRACTION = 0.05


class SpectrumError(ValueError):
    """A spectrum that cannot be turned into model input; the message names the file."""


def fine_grid() -> np.ndarray:
    """(3501,) float64 wavenumbers in cm-1, 1 cm-1 steps over 500-4000."""
    return np.linspace(GRID_MIN_CM1, GRID_MAX_CM1, FINE_POINTS)


def model_grid() -> np.ndarray:
    """(1750,) float64 wavenumbers in cm-1 over 500-4000 (~2.0 cm-1 steps), the model input grid."""
    return np.linspace(GRID_MIN_CM1, GRID_MAX_CM1, MODEL_POINTS)


def _check_sticks(freqs_cm1, intensities, offsets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    freqs = np.asarray(freqs_cm1, dtype=np.float64).ravel()
    ints = np.asarray(intensities, dtype=np.float64).ravel()
    offs = np.asarray(offsets)
    if freqs.shape != ints.shape:
        raise ValueError(f"freqs_cm1 has {freqs.size} sticks but intensities has {ints.size}")
    if offs.ndim != 1 or offs.size < 1 or not np.issubdtype(offs.dtype, np.integer):
        raise ValueError("offsets must be a 1-D integer array of length n_molecules + 1")
    if offs[0] != 0 or offs[-1] != freqs.size or np.any(np.diff(offs) < 0):
        raise ValueError(f"offsets must rise from 0 to the number of sticks ({freqs.size}), "
                         f"got {offs[0]}..{offs[-1]}")
    return freqs, ints, offs.astype(np.int64)


def broaden_sticks(freqs_cm1: np.ndarray, intensities: np.ndarray, offsets: np.ndarray,
                   fwhm_cm1: float = 15.0, grid: np.ndarray | None = None,
                   chunk_sticks: int = 1024) -> np.ndarray:
    """(n_molecules, len(grid)) float32 Lorentzian-broadened spectra from ragged sticks (cm-1).

    Each stick with frequency > 0 (imaginary modes are stored negative) adds
    I * hw^2 / ((x - f)^2 + hw^2), hw = fwhm_cm1 / 2: peak-normalised, so a lone stick's peak
    height equals its intensity. Area normalisation would only rescale a molecule's spectrum by a
    constant, which min-max scaling removes anyway. Molecule m owns sticks offsets[m]:offsets[m+1].
    Sticks are evaluated in float32 chunks as a (chunk_sticks, n_grid) kernel matrix, then summed
    per molecule by a sparse (molecules x sticks) weight matrix; extra memory is
    chunk_sticks * n_grid * 4 bytes.
    """
    freqs, ints, offs = _check_sticks(freqs_cm1, intensities, offsets)
    if fwhm_cm1 <= 0 or chunk_sticks < 1:
        raise ValueError(f"need fwhm_cm1 > 0 and chunk_sticks >= 1, "
                         f"got {fwhm_cm1} and {chunk_sticks}")
    grid = fine_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    n_mol = offs.size - 1
    out = np.zeros((n_mol, grid.size), dtype=np.float32)
    hw2 = (0.5 * fwhm_cm1) ** 2
    keep = freqs > 0
    mol_of_stick = np.repeat(np.arange(n_mol), np.diff(offs))[keep]
    freqs32, weights32 = freqs[keep].astype(np.float32), (ints[keep] * hw2).astype(np.float32)
    grid32 = grid.astype(np.float32)
    kernel_buf = np.empty((min(chunk_sticks, freqs32.size), grid.size), dtype=np.float32)
    for start in range(0, freqs32.size, chunk_sticks):
        stop = min(start + chunk_sticks, freqs32.size)
        kernel = kernel_buf[: stop - start]
        np.subtract(grid32[None, :], freqs32[start:stop, None], out=kernel)
        np.square(kernel, out=kernel)
        np.add(kernel, np.float32(hw2), out=kernel)
        np.reciprocal(kernel, out=kernel)
        # sticks are grouped by molecule, so each molecule is one run of consecutive rows
        mols = mol_of_stick[start:stop]
        indptr = np.concatenate([[0], np.flatnonzero(mols[1:] != mols[:-1]) + 1, [stop - start]])
        segment = sp.csr_matrix((weights32[start:stop], np.arange(stop - start), indptr),
                                shape=(indptr.size - 1, stop - start))
        out[mols[indptr[:-1]]] += segment @ kernel
    return out


def broaden_sticks_naive(freqs_cm1: np.ndarray, intensities: np.ndarray, offsets: np.ndarray,
                         fwhm_cm1: float = 15.0, grid: np.ndarray | None = None,
                         chunk_sticks: int = 1024) -> np.ndarray:
    """(n_molecules, len(grid)) float32; per-molecule, per-stick loop twin of broaden_sticks.

    chunk_sticks is unused; it keeps the two signatures identical.
    """
    freqs, ints, offs = _check_sticks(freqs_cm1, intensities, offsets)
    grid = fine_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    hw = 0.5 * fwhm_cm1
    out = np.zeros((offs.size - 1, grid.size), dtype=np.float64)
    for m in range(offs.size - 1):
        for s in range(offs[m], offs[m + 1]):
            if freqs[s] > 0:
                out[m] += ints[s] * hw**2 / ((grid - freqs[s]) ** 2 + hw**2)
    return out.astype(np.float32)


def resample(spectra: np.ndarray, src_grid: np.ndarray, dst_grid: np.ndarray) -> np.ndarray:
    """(n, len(dst_grid)) float32, linear interpolation of (n, len(src_grid)) rows; 0 outside."""
    x = np.asarray(src_grid, dtype=np.float64)
    xq = np.asarray(dst_grid, dtype=np.float64)
    y = np.asarray(spectra)
    squeeze, y = y.ndim == 1, np.atleast_2d(y)
    if y.ndim != 2 or y.shape[1] != x.size:
        raise ValueError(f"spectra of shape {np.shape(spectra)} do not match "
                         f"src_grid of {x.size} points")
    if x.size < 2 or np.any(np.diff(x) <= 0):
        raise ValueError("src_grid must hold at least 2 strictly increasing wavenumbers")
    left = np.clip(np.searchsorted(x, xq, side="right") - 1, 0, x.size - 2)
    w = ((xq - x[left]) / (x[left + 1] - x[left])).astype(np.result_type(y.dtype, np.float32))
    out = y[:, left] * (1 - w) + y[:, left + 1] * w
    out[:, (xq < x[0]) | (xq > x[-1])] = 0
    return out[0].astype(np.float32) if squeeze else out.astype(np.float32, copy=False)


def minmax_scale(spectra: np.ndarray) -> np.ndarray:
    """Same shape, float32: each row (last axis) mapped to [0, 1]; constant rows become all zero."""
    y = np.asarray(spectra, dtype=np.float32)
    lo = y.min(axis=-1, keepdims=True)
    span = y.max(axis=-1, keepdims=True) - lo
    return np.where(span > 0, (y - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def sticks_to_model_input(freqs_cm1: np.ndarray, intensities: np.ndarray, offsets: np.ndarray,
                          fwhm_cm1: float = 15.0, batch_molecules: int = 4096) -> np.ndarray:
    """(n_molecules, 1750) float32 model input: broaden on fine grid, resample, min-max scale."""
    freqs, ints, offs = _check_sticks(freqs_cm1, intensities, offsets)
    n_mol = offs.size - 1
    out = np.empty((n_mol, MODEL_POINTS), dtype=np.float32)
    fine, model = fine_grid(), model_grid()
    for a in range(0, n_mol, batch_molecules):  # bounds memory to batch_molecules fine rows
        b = min(a + batch_molecules, n_mol)
        s0, s1 = offs[a], offs[b]
        rows = broaden_sticks(freqs[s0:s1], ints[s0:s1], offs[a : b + 1] - s0, fwhm_cm1, fine)
        out[a:b] = minmax_scale(resample(rows, fine, model))
    return out


def fine_to_model_input(spectra_fine: np.ndarray) -> np.ndarray:
    """(n, 1750) float32 model input from (n, 3501) spectra on fine_grid() (e.g. QM9S tables)."""
    return minmax_scale(resample(spectra_fine, fine_grid(), model_grid()))


@dataclass
class Spectrum:
    """A measured spectrum: (n_points,) ascending wavenumbers in cm-1, intensities, provenance."""

    wavenumbers_cm1: np.ndarray
    intensity: np.ndarray
    y_kind: str  # "absorbance" (native or from transmittance), "raman_activity" or "unknown"
    source: str
    notes: list[str] = field(default_factory=list)


def _note(spectrum: Spectrum, msg: str) -> None:
    """Append msg to spectrum.notes once: the same spectrum is put on the grid more than once
    (its notes printed first, then embedded, then drawn)."""
    if msg not in spectrum.notes:
        spectrum.notes.append(msg)


def spectrum_to_model_input(spectrum: Spectrum) -> np.ndarray:
    """(1750,) float32 model input: onto model_grid(), min-max scaled, 0 outside the data.

    Spectra sampled more than twice as finely as the model grid are averaged over each
    model-grid bin (boxcar of one grid step, ~2 cm-1) instead of point-sampled, so noise and
    aliasing do not decide the value; coarser spectra are linearly interpolated. No baseline is
    subtracted; the parts of 500-4000 cm-1 outside the data are filled with the minimum of the
    covered values before scaling, so the input does not change with a constant offset. They are
    logged and appended to spectrum.notes (once, however often it is called), as is y far
    below 0.
    """
    x = np.asarray(spectrum.wavenumbers_cm1, dtype=np.float64)
    y = np.asarray(spectrum.intensity, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if x.size < 2 or not np.all(np.isfinite(x) & np.isfinite(y)):
        raise SpectrumError(f"{spectrum.source}: need at least 2 finite points, got {x.size}")
    grid = model_grid()
    step = grid[1] - grid[0]
    values = np.interp(grid, x, y)
    if np.median(np.diff(x)) < 0.5 * step:
        edges = np.concatenate([[grid[0] - step / 2], 0.5 * (grid[1:] + grid[:-1]),
                                [grid[-1] + step / 2]])
        lo = np.searchsorted(x, edges[:-1], side="left")
        hi = np.searchsorted(x, edges[1:], side="left")
        csum = np.concatenate([[0.0], np.cumsum(y)])
        filled = hi > lo
        values[filled] = (csum[hi] - csum[lo])[filled] / (hi - lo)[filled]
    outside = (grid < x[0]) | (grid > x[-1])
    # the covered minimum, not 0: min-max scaling then maps the fill to 0 whatever the baseline,
    # so a constant offset (0.2 absorbance, a 90 % T baseline) cannot become a step at the edges
    values[outside] = values[~outside].min() if np.any(~outside) else 0.0
    gaps = [f"{GRID_MIN_CM1:.0f}-{x[0]:.1f} cm-1"] if grid[0] < x[0] else []
    gaps += [f"{x[-1]:.1f}-{GRID_MAX_CM1:.0f} cm-1"] if grid[-1] > x[-1] else []
    if gaps:
        msg = (f"filled {' and '.join(gaps)} (outside the measured range) with the spectrum's "
               "minimum, 0 after min-max scaling")
        _note(spectrum, msg)
        log.info("%s: %s", spectrum.source, msg)  # routine for measured data: a note, not a warning
    lo, span = values.min(), values.max() - values.min()
    if not (np.isfinite(span) and span > 0):
        raise SpectrumError(f"{spectrum.source}: the spectrum on {GRID_MIN_CM1:.0f}-"
                            f"{GRID_MAX_CM1:.0f} cm-1 is constant or its range overflows "
                            f"({values.min():g} to {values.max():g}); not usable as input")
    if lo < -NEGATIVE_NOTE_FRACTION * span:
        msg = (f"y goes down to {lo:.3g}, below 0 by {-lo / span:.0%} of its range: a baseline "
               "offset? min-max scaling removes a constant one, not a sloped one; subtract the "
               "baseline first if it is not flat")
        _note(spectrum, msg)
        log.info("%s: %s", spectrum.source, msg)  # printed by identify with the other notes
    with np.errstate(over="ignore", invalid="ignore"):
        # float32, as the library; the offset comes off in float64 first, so that y of ~1000
        # does not lose the float32 digits its bands live in
        out = minmax_scale(values - lo)
    if not np.all(np.isfinite(out)):  # |y| beyond float32 (3e38): scale in float64 instead
        out = ((values - lo) / span).astype(np.float32)
    return out


# Raman: GFN2-xTB gives activities S_i (A^4/amu); a Stokes spectrum measures intensities
# I_i ~ (nu0 - nu_i)^4 / nu_i / (1 - exp(-c2 nu_i / T)) * S_i.
C2_CM_K = const.h * const.c * 100 / const.k  # second radiation constant hc/k_B, 1.438777 cm K
RAMAN_MIN_SHIFT_CM1 = 50.0  # below this, Rayleigh line and notch filter dominate measured data
# excitation lines of Raman spectrometers (UV 244-266 nm to NIR 1064 nm); a value outside is a
# typing slip, such as a wavenumber (18797 cm-1 for 532 nm) typed as nm
LASER_RANGE_NM = (200.0, 1100.0)


def check_laser_nm(laser_nm: float, where: str) -> None:
    """Refuse a laser line outside LASER_RANGE_NM (nm); `where` starts the message (file, flag)."""
    lo, hi = LASER_RANGE_NM
    if not (np.isfinite(laser_nm) and lo <= laser_nm <= hi):
        hint = (f" ({laser_nm:g} reads as a wavenumber: 1e7/{laser_nm:g} = "
                f"{1e7 / laser_nm:.0f} nm)" if np.isfinite(laser_nm) and laser_nm > 0
                and lo <= 1e7 / laser_nm <= hi else "")
        raise SpectrumError(f"{where}: laser line {laser_nm:g} nm is outside {lo:.0f}-{hi:.0f} "
                            f"nm, where Raman lasers lie{hint}; give --laser-nm as the "
                            "excitation wavelength in nm, e.g. 532, 785 or 1064")


def raman_intensity_factor(wavenumbers_cm1: np.ndarray, laser_nm: float = 532.0,
                           temperature_k: float = 298.0) -> np.ndarray:
    """Same shape, float64 in cm-3: (nu0 - nu)^4 / nu / (1 - exp(-c2 nu / T)), nu0 = 1e7/laser_nm.

    Zero where there is no Stokes line (nu <= 0, e.g. imaginary modes, or nu >= nu0). Unscaled
    (~1e14 at 1000 cm-1 and 532 nm): only its shape matters once spectra are min-max scaled.
    """
    for name, value in (("laser_nm", laser_nm), ("temperature_k", temperature_k)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    nu = np.asarray(wavenumbers_cm1, dtype=np.float64)
    if not np.all(np.isfinite(nu)):
        raise ValueError(f"wavenumbers_cm1 holds {np.count_nonzero(~np.isfinite(nu))} "
                         "NaN/inf values; remove them first")
    nu0 = 1e7 / laser_nm
    stokes = (nu > 0) & (nu < nu0)
    v = np.where(stokes, nu, 1.0)  # placeholder keeps the masked-out arithmetic finite
    factor = (nu0 - v) ** 4 / v / -np.expm1(-C2_CM_K * v / temperature_k)
    return np.where(stokes, factor, 0.0)


def raman_activity_to_intensity(freqs_cm1: np.ndarray, activity: np.ndarray,
                                laser_nm: float = 532.0, temperature_k: float = 298.0
                                ) -> np.ndarray:
    """Same shape, float64: Stokes intensities (arb. units) of sticks with activities (A^4/amu)."""
    freqs = np.asarray(freqs_cm1, dtype=np.float64)
    act = np.asarray(activity, dtype=np.float64)
    if freqs.shape != act.shape:
        raise ValueError(f"freqs_cm1 has shape {freqs.shape} but activity has {act.shape}")
    return act * raman_intensity_factor(freqs, laser_nm, temperature_k)


def raman_intensity_to_activity(spectrum: Spectrum, laser_nm: float = 532.0,
                                temperature_k: float = 298.0) -> Spectrum:
    """New Spectrum on the activity scale: measured Stokes intensity / raman_intensity_factor.

    wavenumbers_cm1 are Raman shifts. Points below RAMAN_MIN_SHIFT_CM1 (50 cm-1) become 0; a
    laser line outside LASER_RANGE_NM, or shifts reaching the laser's wavenumber nu0 = 1e7 /
    laser_nm (no Stokes line there: the laser or the x units are wrong), raise SpectrumError.
    The input is left unchanged.
    """
    x = np.asarray(spectrum.wavenumbers_cm1, dtype=np.float64)
    y = np.asarray(spectrum.intensity, dtype=np.float64)
    if spectrum.y_kind == "raman_activity":
        raise SpectrumError(f"{spectrum.source}: already on the Raman activity scale")
    if x.shape != y.shape or not np.all(np.isfinite(x) & np.isfinite(y)):
        raise SpectrumError(f"{spectrum.source}: need finite wavenumbers and intensities of one "
                            f"shape, got {x.shape} and {y.shape}")
    check_laser_nm(laser_nm, spectrum.source)
    nu0 = 1e7 / laser_nm
    if x.size and x.max() >= nu0:
        raise SpectrumError(
            f"{spectrum.source}: Raman shifts up to {x.max():.0f} cm-1 reach the laser's "
            f"wavenumber (1e7 / {laser_nm:g} nm = {nu0:.0f} cm-1), where no Stokes line can be; "
            "check --laser-nm (the excitation wavelength in nm) and that x holds Raman shifts "
            "in cm-1, not absolute wavenumbers")
    factor = raman_intensity_factor(x, laser_nm, temperature_k)
    usable = (factor > 0) & (x >= RAMAN_MIN_SHIFT_CM1)
    activity = np.where(usable, y / np.where(usable, factor, 1.0), 0.0)
    note = f"Raman intensity converted to activity scale ({laser_nm:g} nm, {temperature_k:g} K)"
    return replace(spectrum, intensity=activity, y_kind="raman_activity",
                   notes=[*spectrum.notes, note])
