"""The spectrum-to-spectrum score: a query spectrum against each candidate's simulated sticks.

The classical library search against computed spectra, made robust to what separates a
measurement (or another level of theory) from GFN2-xTB harmonic sticks:

- **baselines**: with `baseline` "arpls" a smooth baseline (arPLS, as `identify --baseline
  arpls`) is first fitted under the query's measured range and subtracted (a sloped or curved
  baseline otherwise dominates a compressed spectrum); then the query's `baseline_quantile` over
  its measured range is subtracted (a constant offset changes nothing), negatives clipped, the
  maximum scaled to 1;
- **band widths**: the candidate's sticks are broadened with `fwhm_cm1` (gas-phase rotational
  contours are 20-40 cm-1 wide);
- **rough intensities**: both spectra are compressed (`compression`: sqrt or log), optionally
  differentiated along the wavenumber axis (`derivative`);
- **band positions**: the query's wavenumber axis is divided by every factor of a grid (a factor
  is measured / simulated wavenumber) and the best cosine kept (`alignment`: one global factor, or one factor below and one above
  `augment.XH_THRESHOLD_CM1`), per (query, candidate): it needs no truth.

Only the query's measured range takes part (its coverage mask, warped with it). Everything is on
the model grid (500-4000 cm-1, 1750 points). `match_scores` is vectorised (one matrix product per
region); `match_score_naive` is its loop twin for the tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from vibraclip_core.data.augment import XH_THRESHOLD_CM1
from vibraclip_core.data.spectra import Spectrum, broaden_sticks, model_grid, resample

Compression = Literal["none", "sqrt", "log"]
Alignment = Literal["none", "global", "regions"]
COMPRESSIONS: tuple[str, ...] = ("none", "sqrt", "log")
ALIGNMENTS: tuple[str, ...] = ("none", "global", "regions")
BASELINES: tuple[str, ...] = ("quantile", "arpls")
# arPLS smoothness on the model grid (2 cm-1 steps): stiff enough to pass under bands tens of
# cm-1 wide, as measured.baseline's 1e4 at 1 cm-1 spacing scaled by spacing^-4
MATCH_ARPLS_LAM = 1e4 * 2.0 ** -4
LOG_GAIN = 100.0  # log1p(100 y) / log1p(100): a band at 1 % of the maximum keeps ~15 %


@dataclass(frozen=True)
class MatchSettings:
    """How a query is compared with a candidate's sticks (see the module docstring)."""

    fwhm_cm1: float = 30.0
    compression: str = "sqrt"
    derivative: bool = False
    alignment: str = "global"
    scale_min: float = 0.96
    scale_max: float = 1.065
    scale_step: float = 0.005
    baseline_quantile: float = 0.05
    baseline: str = "quantile"

    def __post_init__(self) -> None:
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline {self.baseline!r}: choose one of {BASELINES}")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression {self.compression!r}: choose one of {COMPRESSIONS}")
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment {self.alignment!r}: choose one of {ALIGNMENTS}")
        if not (self.fwhm_cm1 > 0 and 0 < self.scale_min <= 1 <= self.scale_max
                and self.scale_step > 0 and 0 <= self.baseline_quantile < 1):
            raise ValueError(f"match settings out of range: {self}")

    def scales(self) -> np.ndarray:
        """(S,) wavenumber factors tried (1 alone without alignment)."""
        if self.alignment == "none":
            return np.ones(1)
        n = int(round((self.scale_max - self.scale_min) / self.scale_step)) + 1
        return np.round(np.linspace(self.scale_min, self.scale_max, n), 6)

    def to_dict(self) -> dict:
        return asdict(self)


def coverage_mask(spectrum: Spectrum) -> np.ndarray:
    """(1750,) bool: model-grid points inside the measured range of `spectrum`."""
    x = np.asarray(spectrum.wavenumbers_cm1, dtype=np.float64)
    grid = model_grid()
    return (grid >= np.nanmin(x)) & (grid <= np.nanmax(x))


def _compress(y: np.ndarray, how: str) -> np.ndarray:
    if how == "sqrt":
        return np.sqrt(y)
    if how == "log":
        return np.log1p(LOG_GAIN * y) / np.log1p(LOG_GAIN)
    return y


def _finish(y: np.ndarray, settings: MatchSettings) -> np.ndarray:
    """Compression, then the derivative along the grid if asked; rows of (n, 1750)."""
    y = _compress(y, settings.compression)
    return np.gradient(y, axis=-1) if settings.derivative else y


def prepare_queries(values: np.ndarray, masks: np.ndarray, settings: MatchSettings
                    ) -> np.ndarray:
    """(n, 1750) float32 queries on the model grid: baseline removed over each row's mask,
    clipped at 0, max 1, zero outside the mask (not yet compressed: that follows the warp)."""
    y = np.atleast_2d(np.asarray(values, dtype=np.float64)).copy()
    m = np.atleast_2d(np.asarray(masks, dtype=bool))
    if y.shape != m.shape:
        raise ValueError(f"query values {y.shape} and masks {m.shape} differ in shape")
    if not m.any(axis=1).all():
        raise ValueError("a query has no point inside 500-4000 cm-1")
    for k in range(len(y)):
        if settings.baseline == "arpls":
            y[k][m[k]] -= arpls_baseline(y[k][m[k]])
        y[k] -= np.quantile(y[k][m[k]], settings.baseline_quantile)
    y = np.where(m, np.clip(y, 0, None), 0.0)
    top = y.max(axis=1, keepdims=True)
    return (y / np.where(top > 0, top, 1.0)).astype(np.float32)


def arpls_baseline(y: np.ndarray, lam: float = MATCH_ARPLS_LAM) -> np.ndarray:
    """(n,) arPLS baseline (pybaselines) of one contiguous run of model-grid values."""
    from pybaselines import Baseline

    base, _ = Baseline(x_data=np.arange(len(y), dtype=np.float64)).arpls(y, lam=lam)
    return base


def candidate_matrix(offsets: np.ndarray, freqs_cm1: np.ndarray, intensities: np.ndarray,
                     settings: MatchSettings) -> np.ndarray:
    """(n, 1750) float32 candidates: sticks broadened with settings.fwhm_cm1 on the model grid,
    max 1, compressed (and differentiated); a candidate without sticks is a zero row."""
    y = broaden_sticks(freqs_cm1, intensities, offsets, settings.fwhm_cm1, model_grid())
    top = y.max(axis=1, keepdims=True)
    y = y / np.where(top > 0, top, 1.0)
    return _finish(y, settings).astype(np.float32)


def _warped(queries: np.ndarray, masks: np.ndarray, settings: MatchSettings
            ) -> tuple[np.ndarray, np.ndarray]:
    """((n, S, 1750) finished queries, (n, S, 1750) float masks) with the query axis rescaled:
    at factor s the value at grid point v is the query's at s * v (its bands move by 1/s)."""
    grid = model_grid()
    scales = settings.scales()
    qs = np.stack([resample(queries, grid, s * grid) for s in scales], axis=1)
    ms = np.stack([resample(masks.astype(np.float32), grid, s * grid) > 0.999 for s in scales],
                  axis=1)
    qs = _finish(qs, settings) * ms
    return qs.astype(np.float32), ms.astype(np.float32)


def factor_pairs(settings: MatchSettings) -> np.ndarray:
    """(A, 2) the (below, above) wavenumber factors tried, in the order `_cosines` returns."""
    s = settings.scales()
    if settings.alignment != "regions":
        return np.stack([s, s], axis=1)
    return np.array([(a, b) for a in s for b in s])


def _cosines(queries: np.ndarray, masks: np.ndarray, candidates: np.ndarray,
             settings: MatchSettings) -> np.ndarray:
    """(n_q, A, n_candidates) cosines for every factor pair of `factor_pairs`; -inf where a
    candidate has nothing inside the query's range."""
    q0 = prepare_queries(queries, masks, settings)
    m0 = np.atleast_2d(np.asarray(masks, dtype=bool))
    c = np.asarray(candidates, dtype=np.float32)
    c2 = c * c
    upper = model_grid() > XH_THRESHOLD_CM1
    regions = [np.ones_like(upper)] if settings.alignment != "regions" else [~upper, upper]
    qs, ms = _warped(q0, m0, settings)
    n, s, _ = qs.shape
    parts = []
    for r in regions:
        qr, mr = qs[..., r].reshape(n * s, -1), ms[..., r].reshape(n * s, -1)
        parts.append(((qr @ c[:, r].T).reshape(n, s, -1), (qr * qr).sum(1).reshape(n, s, 1),
                      (mr @ c2[:, r].T).reshape(n, s, -1)))
    if len(parts) == 1:
        num, qq, cc = parts[0]
    else:  # every (below, above) pair of factors
        (nl, ql, cl), (nh, qh, ch) = parts
        num = (nl[:, :, None] + nh[:, None, :]).reshape(n, s * s, -1)
        qq = (ql[:, :, None] + qh[:, None, :]).reshape(n, s * s, 1)
        cc = (cl[:, :, None] + ch[:, None, :]).reshape(n, s * s, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = num / np.sqrt(qq * cc)
    return np.where(cc > 0, cos, -np.inf)


def match_scores(queries: np.ndarray, masks: np.ndarray, candidates: np.ndarray,
                 settings: MatchSettings, chunk: int = 32) -> np.ndarray:
    """(n_queries, n_candidates) float32 best cosine over the alignment grid, in [-1, 1]; NaN
    for an all-zero candidate (no simulated spectrum). queries/masks: (n_q, 1750) model-grid
    values and coverage (`prepare_queries` is applied here); candidates: `candidate_matrix`."""
    queries, masks = np.atleast_2d(queries), np.atleast_2d(masks)
    out = np.empty((len(queries), len(candidates)), dtype=np.float32)
    for a in range(0, len(queries), chunk):
        best = _cosines(queries[a:a + chunk], masks[a:a + chunk], candidates, settings).max(1)
        out[a:a + chunk] = np.where(np.isfinite(best), best, np.nan)
    return out


def best_factors(query: np.ndarray, mask: np.ndarray, candidates: np.ndarray,
                 settings: MatchSettings) -> np.ndarray:
    """(n_candidates, 2) the (below, above) factors at which one query best matches each
    candidate (for drawing the aligned query over the candidate)."""
    cos = _cosines(query, mask, candidates, settings)[0]
    return factor_pairs(settings)[np.argmax(cos, axis=0)]


def aligned_query(query: np.ndarray, mask: np.ndarray, factors: tuple[float, float],
                  settings: MatchSettings) -> np.ndarray:
    """(1750,) the query as it is compared (baseline removed, compressed), its axis rescaled by
    (below, above) factors; NaN outside its range."""
    grid = model_grid()
    q0 = prepare_queries(query, mask, settings)
    upper = grid > XH_THRESHOLD_CM1
    out = np.empty(grid.size)
    for part, s in ((~upper, factors[0]), (upper, factors[1])):
        q = _compress(resample(q0, grid, s * grid)[0], settings.compression)
        m = resample(np.atleast_2d(mask).astype(np.float32), grid, s * grid)[0] > 0.999
        out[part] = np.where(m, q, np.nan)[part]
    return out


def match_score_naive(query: np.ndarray, mask: np.ndarray, freqs_cm1: np.ndarray,
                      intensities: np.ndarray, settings: MatchSettings) -> float:
    """The best cosine of one query (1750,) and one candidate's sticks: loops over factors,
    sticks and grid points; the twin of `match_scores` for the tests."""
    grid = model_grid()
    hw = settings.fwhm_cm1 / 2
    cand = np.zeros(grid.size)
    for f, i in zip(freqs_cm1, intensities):
        if f > 0:
            cand += i * hw**2 / ((grid - f) ** 2 + hw**2)
    if cand.max() <= 0:
        return float("nan")
    cand = _finish(cand / cand.max(), settings)
    y = np.asarray(query, dtype=np.float64).copy()
    if settings.baseline == "arpls":
        y[mask] -= arpls_baseline(y[mask])
    y = y - np.quantile(y[mask], settings.baseline_quantile)
    y = np.where(mask, np.clip(y, 0, None), 0.0)
    y = y / y.max()
    upper = grid > XH_THRESHOLD_CM1

    def warp(s: float) -> tuple[np.ndarray, np.ndarray]:
        q, m = np.zeros(grid.size), np.zeros(grid.size, dtype=bool)
        for k, v in enumerate(grid):
            x = s * v
            if grid[0] <= x <= grid[-1]:
                j = min(int(np.searchsorted(grid, x, side="right")) - 1, grid.size - 2)
                w = (x - grid[j]) / (grid[j + 1] - grid[j])
                q[k] = y[j] * (1 - w) + y[j + 1] * w
                m[k] = mask[j] * (1 - w) + mask[j + 1] * w > 0.999
        return _finish(q, settings) * m, m

    scales = settings.scales()
    pairs = ([(s, s) for s in scales] if settings.alignment != "regions"
             else [(a, b) for a in scales for b in scales])
    best = -np.inf
    for below, above in pairs:
        (ql, ml), (qh, mh) = warp(below), warp(above)
        q, m = np.where(upper, qh, ql), np.where(upper, mh, ml)
        num = float((q * cand).sum())
        den = float(np.sqrt((q * q).sum() * ((m * cand) ** 2).sum()))
        if den > 0:
            best = max(best, num / den)
    return best
