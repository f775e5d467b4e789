"""Warnings about a measured spectrum that can change the answer without a word: a sloped
baseline, noise, and the bands of atmospheric CO2 and water vapour.

Each warning says what was measured, the level it warns at and what to do (`--baseline arpls`
for a slope). The measures, on x ascending in cm-1 and y with bands pointing up (absorbance or
Raman intensity), inside 500-4000 cm-1:

- slope: a straight line through the lower envelope (the 10th percentile of y in 16 equal x
  bins, fitted by Theil-Sen, robust to the bins a band fills); its rise over the range, as a
  fraction of y's range;
- noise: sigma from the second differences y[i-1] - 2 y[i] + y[i+1] (their median absolute
  deviation * 1.4826 / sqrt(6) for white noise; smooth bands sampled finer than their width
  add little to a median), as a fraction of the tallest band above the lower envelope;
- CO2: the band at 2320-2375 cm-1 above (or below) the straight line between its sides
  (2280-2310 and 2390-2420 cm-1), its mean over the band, as a fraction of y's range;
- water vapour: its rotation lines make 1400-1900 and 3550-3950 cm-1 rough; the noise measure
  there against the same measure in 2000-2300 and 2400-2700 cm-1, where few molecules absorb.

Torch-free.
"""

from __future__ import annotations

import numpy as np

from vibraclip_core.data.spectra import GRID_MAX_CM1, GRID_MIN_CM1, Spectrum

SLOPE_WARN_FRACTION = 0.25  # baseline rise over 500-4000 cm-1, of y's range
NOISE_WARN_FRACTION = 0.02  # noise sigma, of the tallest band
CO2_WARN_FRACTION = 0.05  # CO2 band's mean height over 2320-2375 cm-1, of y's range
WATER_ROUGHNESS_RATIO = 4.0  # noise measure in the water windows / elsewhere
WATER_MIN_FRACTION = 0.003  # ... and at least this fraction of y's range
WATER_MAX_SPACING_CM1 = 4.0  # coarser sampling cannot show the lines
CO2_BAND, CO2_SIDES = (2320.0, 2375.0), ((2280.0, 2310.0), (2390.0, 2420.0))
WATER_WINDOWS = ((1400.0, 1900.0), (3550.0, 3950.0))
QUIET_WINDOWS = ((2000.0, 2300.0), (2400.0, 2700.0))
_MAD_TO_SIGMA = 1.4826


def _inside(x: np.ndarray, windows: tuple[tuple[float, float], ...]) -> np.ndarray:
    return np.any([(x >= lo) & (x <= hi) for lo, hi in windows], axis=0)


def noise_sigma(y: np.ndarray) -> float:
    """White-noise sigma of y (in y's units) from its second differences; 0 for < 5 points."""
    if y.size < 5:
        return 0.0
    d2 = y[:-2] - 2.0 * y[1:-1] + y[2:]
    return float(_MAD_TO_SIGMA * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6.0))


def baseline_rise(x: np.ndarray, y: np.ndarray, bins: int = 16) -> float:
    """Rise (y units, signed) over x[0]..x[-1] of a Theil-Sen line through the lower envelope."""
    edges = np.linspace(x[0], x[-1], bins + 1)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    centres, lows = [], []
    for b in range(bins):
        part = y[which == b]
        if part.size:
            centres.append(0.5 * (edges[b] + edges[b + 1]))
            lows.append(np.percentile(part, 10))
    if len(centres) < 3:
        return 0.0
    c, v = np.asarray(centres), np.asarray(lows)
    i, j = np.triu_indices(c.size, 1)
    return float(np.median((v[j] - v[i]) / (c[j] - c[i])) * (x[-1] - x[0]))


def co2_band(x: np.ndarray, y: np.ndarray) -> float:
    """Signed mean height of the CO2 band (2320-2375 cm-1) above the line between its sides,
    or 0 when the data do not cover band and sides."""
    band = (x >= CO2_BAND[0]) & (x <= CO2_BAND[1])
    sides = [(x >= lo) & (x <= hi) for lo, hi in CO2_SIDES]
    if band.sum() < 3 or any(s.sum() < 2 for s in sides):
        return 0.0
    (x1, y1), (x2, y2) = [(float(np.median(x[s])), float(np.median(y[s]))) for s in sides]
    line = y1 + (x[band] - x1) * (y2 - y1) / (x2 - x1)
    # the mean over the band, not its maximum: noise averages out over ~30 points
    return float(np.mean(y[band] - line))


def water_roughness(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(noise measure in the water-vapour windows, the same in the quiet windows), y units;
    (0, 0) when either is not covered."""
    wet, quiet = _inside(x, WATER_WINDOWS), _inside(x, QUIET_WINDOWS)
    if wet.sum() < 20 or quiet.sum() < 20:
        return 0.0, 0.0
    return noise_sigma(y[wet]), noise_sigma(y[quiet])


def quality_warnings(spectrum: Spectrum, baseline: str = "none", flag: str = "--ir"
                     ) -> list[str]:
    """WARNING notes for a slope (when `baseline` is "none"), noise, CO2 and water-vapour bands
    in `spectrum` (x ascending in cm-1, bands up); `flag` names the spectrum's flag."""
    x = np.asarray(spectrum.wavenumbers_cm1, dtype=np.float64)
    y = np.asarray(spectrum.intensity, dtype=np.float64)
    keep = (x >= GRID_MIN_CM1) & (x <= GRID_MAX_CM1) & np.isfinite(y)
    x, y = x[keep], y[keep]
    span = float(np.ptp(y)) if y.size else 0.0
    if y.size < 20 or not span > 0:
        return []
    out = []
    rise = baseline_rise(x, y)
    if baseline == "none" and abs(rise) >= SLOPE_WARN_FRACTION * span:
        out.append(f"WARNING: the baseline {'rises' if rise > 0 else 'falls'} by "
                   f"{abs(rise) / span:.0%} of the y range from {x[0]:.0f} to {x[-1]:.0f} cm-1 "
                   f"(warned above {SLOPE_WARN_FRACTION:.0%}): a sloped baseline changes the "
                   f"model's input and can change the answer; pass --baseline arpls to "
                   "subtract it")
    floor = float(np.percentile(y, 5))
    height = float(y.max()) - floor
    sigma = noise_sigma(y)
    if height > 0 and sigma >= NOISE_WARN_FRACTION * height:
        out.append(f"WARNING: {flag} noise is ~{sigma / height:.1%} of the tallest band (warned "
                   f"above {NOISE_WARN_FRACTION:.0%}; sigma {sigma:.3g} from point-to-point "
                   "differences): bands weaker than a few times that are lost and the answer "
                   "can change; average more scans or smooth the spectrum first")
    co2 = co2_band(x, y)
    if abs(co2) >= CO2_WARN_FRACTION * span:
        out.append(f"WARNING: a CO2 band at 2320-2375 cm-1 "
                   f"{'above' if co2 > 0 else 'below'} its surroundings by {abs(co2) / span:.0%} "
                   f"of the y range (warned above {CO2_WARN_FRACTION:.0%}): atmospheric CO2 not "
                   "cancelled by the background; record a fresh background (or purge) and "
                   "measure again, or check the ranking against a spectrum without it")
    spacing = float(np.median(np.diff(x)))
    wet, quiet = water_roughness(x, y)
    if (spacing <= WATER_MAX_SPACING_CM1 and wet >= WATER_MIN_FRACTION * span
            and wet >= WATER_ROUGHNESS_RATIO * max(quiet, 1e-12 * span)):
        out.append("WARNING: sharp lines of water vapour in 1400-1900 and 3550-3950 cm-1 "
                   f"(point-to-point roughness there {wet / max(quiet, 1e-12 * span):.0f}x the "
                   f"rest; warned above {WATER_ROUGHNESS_RATIO:g}x): the spectrometer was not "
                   "purged or the background is old; record a fresh background (or purge) and "
                   "measure again")
    return out
