"""Pseudo-measured IR spectra: stick spectra rendered the way a gas-phase FTIR records them.

The transfer choices of this project (match settings, fusion weight, confidence, augmentation)
are judged on validation molecules whose spectra come from another theory than the training
data. Broadening those sticks with one fixed width does not look like a measurement. Here each
band becomes what a gas-phase spectrometer shows at room temperature:

- **a rotational contour** from the molecule's own geometry. The rotational constants A >= B >= C
  come from the inertia tensor (`rotational_constants_cm1`). A band whose transition dipole lies
  along principal axis a, b or c rotates about the other two axes, so its envelope is that of a
  linear rotor with the effective constant (B+C)/2, (A+C)/2 or (A+B)/2: P and R branches whose
  maxima are sqrt(8 B kT / hc) = 2.358 sqrt(B T) cm-1 apart (B in cm-1, T in K), and a Q branch
  for a- and c-type bands (weights `Q_FRACTION`). The shards do not store each mode's transition
  dipole, so a band's type is drawn (seeded) with equal probability: a documented mix, not a
  fitted one.
- **the instrument**: a Gaussian line shape of the resolution (FWHM drawn from `resolution_cm1`),
  a sloped and curved baseline, white noise at a fraction of the strongest band, and, with a
  probability, residual water vapour and CO2 bands (imperfect background subtraction) rendered
  with their own rotational constants.
- **the measured range**: the low edge of the recorded range is drawn from `low_edge_cm1`.

The result is an absorbance `Spectrum` on a 0.5 cm-1 grid; `pseudo_measured_inputs` then sends
it through `spectrum_to_model_input`, the path every measured file takes. Nothing here is fitted
on measured spectra: the parameters are instrument and physics values (`PseudoMeasuredSettings`,
datasheet `DATASHEET`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vibraclip_core.data.formulas import atomic_masses
from vibraclip_core.data.spectra import MODEL_POINTS, Spectrum, model_grid, spectrum_to_model_input

# hc/k in cm K inverted: k T / (h c) = K_OVER_HC_CM1 * T cm-1
K_OVER_HC_CM1 = 0.69503476
# B (cm-1) = h / (8 pi^2 c I) with I in amu A^2
ROT_CONST_AMU_A2_CM1 = 16.857629
FINE_STEP_CM1 = 0.5
RENDER_RANGE_CM1 = (400.0, 4100.0)
BAND_TYPES = ("a", "b", "c")
# share of a band's intensity in its Q branch: a-type bands of near-prolate tops have a moderate
# Q branch, b-type none, c-type a strong one (Herzberg's asymmetric-top band contours)
Q_FRACTION = {"a": 0.25, "b": 0.0, "c": 0.5}
Q_FWHM_OF_PR = 0.2  # Q-branch width as a fraction of the band's P-R separation (unresolved J)
DATASHEET = Path(__file__).resolve().parents[2] / "data" / "pseudo_measured.md"

# residual atmosphere: (band centre cm-1, relative intensity, band type); constants in cm-1
WATER_ROT_CM1 = (27.88, 14.51, 9.28)
WATER_BANDS = ((1594.7, 1.0, "b"), (3657.1, 0.07, "b"), (3755.9, 0.7, "a"))
CO2_ROT_CM1 = (np.inf, 0.3902, 0.3902)
CO2_BANDS = ((667.4, 0.09, "c"), (2349.1, 1.0, "a"))


@dataclass(frozen=True)
class PseudoMeasuredSettings:
    """How a stick spectrum is rendered as a gas-phase FTIR measurement; each query draws one
    value per tuple (seeded) and uniform amounts up to each maximum (fractions of the strongest
    band's peak absorbance)."""

    temperature_k: float = 298.15
    resolution_cm1: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    baseline_slope_max: float = 0.10
    baseline_curvature_max: float = 0.05
    noise_fraction: tuple[float, ...] = (0.002, 0.005, 0.01, 0.02)
    atmosphere_probability: float = 0.5
    atmosphere_max: float = 0.10
    low_edge_cm1: tuple[float, ...] = (450.0, 500.0, 550.0, 600.0, 650.0)
    high_edge_cm1: float = 4000.0

    def to_dict(self) -> dict:
        return asdict(self)


def rotational_constants_cm1(numbers: np.ndarray, positions_ang: np.ndarray) -> np.ndarray:
    """(3,) A >= B >= C in cm-1 from the principal moments of inertia (atomic masses in amu,
    positions in A); a zero moment (a linear molecule's A, a single atom) gives inf."""
    m = atomic_masses(np.asarray(numbers))
    x = np.asarray(positions_ang, dtype=np.float64)
    if x.shape != (len(m), 3):
        raise ValueError(f"positions {x.shape} do not match {len(m)} atoms")
    x = x - (m[:, None] * x).sum(0) / m.sum()
    r2 = (x * x).sum(1)
    inertia = (m[:, None, None] * (r2[:, None, None] * np.eye(3) - x[:, :, None] * x[:, None, :])
               ).sum(0)
    moments = np.sort(np.linalg.eigvalsh(inertia))
    with np.errstate(divide="ignore"):
        return np.where(moments > 1e-6, ROT_CONST_AMU_A2_CM1 / np.maximum(moments, 1e-300),
                        np.inf)


def effective_constant_cm1(rot_cm1: np.ndarray, band_type: str) -> float:
    """The linear-rotor constant of a band polarised along axis a, b or c: the mean of the two
    other constants (a linear molecule's inf A is dropped)."""
    a, b, c = (float(v) for v in rot_cm1)
    pair = {"a": (b, c), "b": (a, c), "c": (a, b)}[band_type]
    finite = [v for v in pair if np.isfinite(v)]
    if not finite:
        raise ValueError(f"rotational constants {rot_cm1}: no finite constant for a {band_type}-"
                         "type band")
    return float(np.mean(finite))


def pr_separation_cm1(b_cm1: float, temperature_k: float) -> float:
    """Distance between the P- and R-branch maxima of a linear-rotor band: sqrt(8 B kT/hc)."""
    return float(np.sqrt(8.0 * b_cm1 * K_OVER_HC_CM1 * temperature_k))


def band_contour(offsets_cm1: np.ndarray, b_cm1: float, temperature_k: float,
                 q_fraction: float) -> np.ndarray:
    """Unit-area envelope of one band at offsets (cm-1) from its centre: P and R branches
    |x| exp(-x^2 hc / (4 B kT)) (maxima at +-sqrt(2 B kT/hc)) and a Gaussian Q branch of width
    Q_FWHM_OF_PR times the P-R separation holding `q_fraction` of the area."""
    x = np.asarray(offsets_cm1, dtype=np.float64)
    kt = K_OVER_HC_CM1 * temperature_k
    pr = np.abs(x) * np.exp(-x * x / (4.0 * b_cm1 * kt))
    out = (1.0 - q_fraction) * pr / max(pr.sum(), 1e-300)
    if q_fraction > 0:
        sigma = max(Q_FWHM_OF_PR * pr_separation_cm1(b_cm1, temperature_k), FINE_STEP_CM1) / 2.3548
        q = np.exp(-0.5 * (x / sigma) ** 2)
        out += q_fraction * q / q.sum()
    return out / FINE_STEP_CM1


def render_grid() -> np.ndarray:
    """(7401,) the 0.5 cm-1 grid the contours are drawn on, 400-4100 cm-1."""
    lo, hi = RENDER_RANGE_CM1
    return np.linspace(lo, hi, int(round((hi - lo) / FINE_STEP_CM1)) + 1)


def _deposit(grid: np.ndarray, freqs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sticks spread linearly onto the two nearest grid points (area kept)."""
    out = np.zeros(grid.size)
    pos = (np.asarray(freqs) - grid[0]) / FINE_STEP_CM1
    keep = (pos >= 0) & (pos < grid.size - 1)
    j, w = np.floor(pos[keep]).astype(np.int64), pos[keep] - np.floor(pos[keep])
    np.add.at(out, j, weights[keep] * (1 - w))
    np.add.at(out, j + 1, weights[keep] * w)
    return out


def contour_spectrum(freqs_cm1: np.ndarray, intensities: np.ndarray, band_types: np.ndarray,
                     rot_cm1: np.ndarray, temperature_k: float, grid: np.ndarray | None = None
                     ) -> np.ndarray:
    """(len(grid),) the sticks (intensity = band area) with the rotational contour of each band
    type; sticks at or below 0 cm-1 (imaginary modes) are dropped."""
    grid = render_grid() if grid is None else grid
    freqs = np.asarray(freqs_cm1, dtype=np.float64)
    ints = np.asarray(intensities, dtype=np.float64)
    types = np.asarray(band_types)
    out = np.zeros(grid.size)
    for t in BAND_TYPES:
        sel = (types == t) & (freqs > 0)
        if not sel.any():
            continue
        b = effective_constant_cm1(rot_cm1, t)
        half = int(np.ceil(4.0 * pr_separation_cm1(b, temperature_k) / FINE_STEP_CM1)) + 4
        kernel = band_contour(np.arange(-half, half + 1) * FINE_STEP_CM1, b, temperature_k,
                              Q_FRACTION[t])
        out += np.convolve(_deposit(grid, freqs[sel], ints[sel]), kernel, mode="same")
    return out


def _gaussian_blur(y: np.ndarray, fwhm_cm1: float) -> np.ndarray:
    sigma = fwhm_cm1 / 2.3548 / FINE_STEP_CM1
    if sigma < 0.3:
        return y
    half = int(np.ceil(4 * sigma))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    return np.convolve(y, k / k.sum(), mode="same")


def atmosphere(grid: np.ndarray, temperature_k: float) -> tuple[np.ndarray, np.ndarray]:
    """(water, CO2) contours on `grid`, each scaled to a peak of 1."""
    out = []
    for rot, bands in ((WATER_ROT_CM1, WATER_BANDS), (CO2_ROT_CM1, CO2_BANDS)):
        f, i, t = zip(*bands)
        y = contour_spectrum(np.array(f), np.array(i), np.array(t), np.array(rot),
                             temperature_k, grid)
        out.append(y / y.max())
    return out[0], out[1]


def render(freqs_cm1: np.ndarray, ir_km_mol: np.ndarray, rot_cm1: np.ndarray,
           rng: np.random.Generator, settings: PseudoMeasuredSettings = PseudoMeasuredSettings(),
           source: str = "pseudo-measured") -> Spectrum:
    """One pseudo-measured absorbance spectrum (0.5 cm-1 steps over the drawn measured range)
    of one molecule's IR sticks; the draws are listed in its notes."""
    grid = render_grid()
    types = rng.choice(np.array(BAND_TYPES), size=len(freqs_cm1))
    y = contour_spectrum(freqs_cm1, ir_km_mol, types, rot_cm1, settings.temperature_k, grid)
    resolution = float(rng.choice(settings.resolution_cm1))
    y = _gaussian_blur(y, resolution)
    peak = y.max() if y.max() > 0 else 1.0
    y = y / peak
    u = (grid - grid.mean()) / (grid[-1] - grid.mean())
    slope = rng.uniform(-1, 1) * settings.baseline_slope_max
    curve = rng.uniform(-1, 1) * settings.baseline_curvature_max
    y = y + slope * u + curve * (u * u - 1.0 / 3.0)
    notes = [f"resolution {resolution:g} cm-1", f"baseline slope {slope:+.3f}, "
             f"curvature {curve:+.3f}"]
    if rng.random() < settings.atmosphere_probability:
        water, co2 = atmosphere(grid, settings.temperature_k)
        a_w, a_c = rng.uniform(-1, 1, size=2) * settings.atmosphere_max
        y = y + a_w * _gaussian_blur(water, resolution) + a_c * _gaussian_blur(co2, resolution)
        notes.append(f"water {a_w:+.3f}, CO2 {a_c:+.3f}")
    noise = float(rng.choice(settings.noise_fraction))
    y = y + rng.normal(0.0, noise, size=grid.size)
    notes.append(f"noise {noise:g}")
    low = float(rng.choice(settings.low_edge_cm1))
    keep = (grid >= low) & (grid <= settings.high_edge_cm1)
    return Spectrum(grid[keep], y[keep], "absorbance", source, notes)


def pseudo_measured_inputs(offsets: np.ndarray, freqs_cm1: np.ndarray, ir_km_mol: np.ndarray,
                           rot_cm1: np.ndarray, seed: int, keys: np.ndarray | None = None,
                           settings: PseudoMeasuredSettings = PseudoMeasuredSettings()
                           ) -> tuple[np.ndarray, np.ndarray]:
    """((n, 1750) float32 model inputs, (n, 1750) bool coverage masks) of n molecules' ragged IR
    sticks rendered by `render` (rot_cm1: (n, 3)); molecule m draws from the seed (seed,
    keys[m]) (keys: e.g. QM9 indices; default 0..n-1), so a molecule's query does not change
    with the set around it."""
    n = len(offsets) - 1
    keys = np.arange(n) if keys is None else np.asarray(keys, dtype=np.int64)
    x = np.zeros((n, MODEL_POINTS), dtype=np.float32)
    masks = np.zeros((n, MODEL_POINTS), dtype=bool)
    grid = model_grid()
    for m in range(n):
        s = slice(offsets[m], offsets[m + 1])
        rng = np.random.default_rng([seed, int(keys[m])])
        sp = render(freqs_cm1[s], ir_km_mol[s], rot_cm1[m], rng, settings,
                    source=f"pseudo-measured molecule {m}")
        x[m] = spectrum_to_model_input(sp)
        masks[m] = (grid >= sp.wavenumbers_cm1[0]) & (grid <= sp.wavenumbers_cm1[-1])
    return x, masks


# where each parameter's value comes from, for the datasheet
PARAMETER_SOURCES = {
    "temperature_k": "room temperature of a gas cell (the NIST and Coblentz gas-phase spectra "
                     "are recorded near 25 °C)",
    "resolution_cm1": "FTIR gas-phase work records at 0.5-4 cm⁻¹; older grating spectra are "
                      "nearer 4-8 cm⁻¹",
    "baseline_slope_max": "assumed: a drift of a tenth of the strongest band across the range "
                          "(window and background mismatch); not measured here",
    "baseline_curvature_max": "assumed, as the slope",
    "noise_fraction": "peak signal-to-noise 50-500, typical of a dilute gas sample",
    "atmosphere_probability": "assumed: half the spectra carry residual water vapour and CO₂ "
                              "from an imperfect purge or background",
    "atmosphere_max": "assumed: up to a tenth of the strongest band, either sign",
    "low_edge_cm1": "cell windows and detectors: NaCl cuts near 650 cm⁻¹, KBr and CsI below "
                    "450 cm⁻¹",
    "high_edge_cm1": "the model grid's upper end",
}


def datasheet_markdown(settings: PseudoMeasuredSettings, rot_cm1: np.ndarray,
                       where: str) -> str:
    """The datasheet of the pseudo-measured queries: what they are, every parameter with its
    source, and the rotational constants and P-R separations of the `rot_cm1` (n, 3) molecules
    they were rendered for (`where` names them)."""
    seps = {t: np.array([pr_separation_cm1(effective_constant_cm1(r, t), settings.temperature_k)
                         for r in rot_cm1]) for t in BAND_TYPES}
    qs = (5, 50, 95)

    def pct(x: np.ndarray) -> str:
        return " / ".join(f"{v:.3g}" for v in np.percentile(x, qs))

    rows = [f"| `{k}` | {v} | {PARAMETER_SOURCES[k]} |" for k, v in settings.to_dict().items()]
    stats = [f"| {name} | {pct(x)} |" for name, x in (
        ("A / cm⁻¹", rot_cm1[:, 0][np.isfinite(rot_cm1[:, 0])]), ("B / cm⁻¹", rot_cm1[:, 1]),
        ("C / cm⁻¹", rot_cm1[:, 2]),
        *((f"P–R separation, {t}-type band / cm⁻¹", seps[t]) for t in BAND_TYPES))]
    return "\n".join([
        "# Pseudo-measured IR queries (datasheet)",
        "",
        "Generated by `vibraclip calibrate-rerank` (`vibraclip_core/data/pseudo_measured.py`); "
        "do not edit by hand.",
        "",
        "Stick spectra of another level of theory (GFN1-xTB; B3LYP frequencies with GFN2-xTB "
        "intensities), rendered as a gas-phase FTIR spectrometer records them, so that the "
        "choices aimed at measured spectra are judged on queries that look like measurements. "
        "They are made on the fly from the embedded data (seeded per molecule), not stored. "
        "Nothing here is fitted on measured spectra.",
        "",
        "Each band becomes a rotational contour from the molecule's own geometry: a band "
        "polarised along principal axis a, b or c has the P–R envelope of a linear rotor with "
        "constant (B+C)/2, (A+C)/2 or (A+B)/2, branch maxima sqrt(8 B kT/hc) = 2.358 sqrt(B T) "
        "cm⁻¹ apart, and a Q branch holding "
        + ", ".join(f"{Q_FRACTION[t]:.0%} ({t})" for t in BAND_TYPES)
        + " of the band. The shards do not store each mode's transition dipole, so each band's "
        "type is drawn with equal probability (a documented mix). Then the instrument: a "
        "Gaussian line of the drawn resolution, a sloped and curved baseline, white noise, "
        "and sometimes residual water vapour (constants "
        + " / ".join(f"{v:g}" for v in WATER_ROT_CM1) + " cm⁻¹) and CO₂ (B "
        f"{CO2_ROT_CM1[1]:g} cm⁻¹) bands; the spectrum then takes the path of every measured "
        "file (`spectrum_to_model_input`).",
        "",
        "## Parameters",
        "",
        "| parameter | value (one drawn per query; amounts uniform up to the maximum, as "
        "fractions of the strongest band) | source |",
        "|---|---|---|",
        *rows,
        "",
        f"## The molecules ({where}; {len(rot_cm1)} molecules, QM9 B3LYP geometries)",
        "",
        "| quantity | 5th / 50th / 95th percentile |",
        "|---|---|",
        *stats,
        "",
    ])
