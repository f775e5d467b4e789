"""Re-ranking a model's shortlist by the physics of the candidates, and a confidence for rank 1.

The model ranks the whole library (after any mass or formula filter); its top `depth` candidates
are re-scored by fusing the model's score with the spectrum-match score (`spectral_match`):
each is standardised over the shortlist of its query (z-scores) and summed with the match's
`weight`; candidates without a simulated spectrum get a neutral match z of 0. The candidates below
the shortlist keep the model's order. The probability that rank 1 is right is a logistic function
of the fused margin between rank 1 and rank 2. The settings, the weight and the logistic's two
coefficients are chosen and fitted on validation queries of other theories (`vibraclip
calibrate-rerank`, never on measured spectra) and stored with the shipped model (`RERANK_FILE`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vibraclip_core.data.files import atomic_path
from vibraclip_core.retrieval.spectral_match import MatchSettings

RERANK_FILE = "rerank.json"
DEFAULT_DEPTH = 100


@dataclass
class Reranker:
    """Match settings, fusion weight and depth, and the confidence's logistic coefficients
    (intercept, slope on the fused margin), with how they were chosen."""

    settings: MatchSettings = field(default_factory=MatchSettings)
    weight: float = 1.0
    depth: int = DEFAULT_DEPTH
    confidence_coef: tuple[float, float] = (0.0, 1.0)
    provenance: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write as JSON, atomically."""
        path = Path(path)
        with atomic_path(path, mode=0o644) as tmp:
            tmp.write_text(json.dumps({"settings": self.settings.to_dict(), "weight": self.weight,
                                       "depth": self.depth,
                                       "confidence_coef": list(self.confidence_coef),
                                       "provenance": self.provenance}, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Reranker":
        """Read `save`'s JSON; ValueError naming the file when it does not fit this code."""
        try:
            raw = json.loads(Path(path).read_text())
            return cls(MatchSettings(**raw["settings"]), float(raw["weight"]), int(raw["depth"]),
                       tuple(float(c) for c in raw["confidence_coef"]), raw.get("provenance", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a re-ranking file this code can read ({exc}); "
                             "rewrite it with `vibraclip calibrate-rerank`") from exc

    def fuse(self, model_scores: np.ndarray, match: np.ndarray) -> np.ndarray:
        """`fuse` with this weight."""
        return fuse(model_scores, match, self.weight)

    def probability(self, fused: np.ndarray) -> np.ndarray:
        """(n_queries,) probability that rank 1 is right, from each row's fused scores."""
        return logistic(margin(fused), self.confidence_coef)


def zscore(x: np.ndarray) -> np.ndarray:
    """Each row standardised over its finite entries (NaN stays NaN); a constant row is 0."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    mean = np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=1, keepdims=True)
    std = np.nanstd(np.where(np.isfinite(x), x, np.nan), axis=1, keepdims=True)
    return (x - mean) / np.where(std > 1e-12, std, np.inf)


def fuse(model_scores: np.ndarray, match: np.ndarray, weight: float) -> np.ndarray:
    """(q, n) fused scores over shortlists: z(model) + weight * z(match), a missing match (NaN)
    counting as z 0; weight=inf ranks by the match alone (the model breaking ties)."""
    zm, zs = zscore(model_scores), np.nan_to_num(zscore(match), nan=0.0)
    if np.isinf(weight):
        return zs + 1e-6 * zm
    return zm + weight * zs


def margin(fused: np.ndarray) -> np.ndarray:
    """(q,) best minus second-best fused score of each row (0 for a single candidate)."""
    f = np.sort(np.atleast_2d(fused), axis=1)
    return f[:, -1] - f[:, -2] if f.shape[1] > 1 else np.zeros(len(f))


def logistic(x: np.ndarray, coef: tuple[float, float]) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(coef[0] + coef[1] * np.asarray(x, dtype=np.float64))))


def fit_logistic(x: np.ndarray, y: np.ndarray, iters: int = 50, ridge: float = 1e-6
                 ) -> tuple[float, float]:
    """(intercept, slope) of P(y=1 | x) = logistic by Newton's method (maximum likelihood)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or y.min() == y.max():
        raise ValueError(f"fit_logistic needs both outcomes among {len(x)} cases")
    design = np.stack([np.ones_like(x), x], axis=1)
    beta = np.zeros(2)
    for _ in range(iters):
        p = logistic(x, tuple(beta))
        grad = design.T @ (y - p) - ridge * beta
        hess = design.T @ (design * (p * (1 - p))[:, None]) + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return float(beta[0]), float(beta[1])


def reliability(prob: np.ndarray, correct: np.ndarray, bins: int = 5) -> pd.DataFrame:
    """Per bin of predicted probability (equal counts): mean predicted, observed accuracy, count."""
    prob, correct = np.asarray(prob, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    order = np.argsort(prob, kind="stable")
    rows = [{"predicted": prob[b].mean(), "observed": correct[b].mean(), "queries": len(b)}
            for b in np.array_split(order, bins) if len(b)]
    return pd.DataFrame(rows)


def reranked_ranks(model_scores: np.ndarray, match: np.ndarray, truth: np.ndarray,
                   weight: float, depth: int, admissible: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """((q,) 1-based ranks of the truth, (q,) fused margin) when each query's top `depth`
    admissible candidates by model score are re-ordered by `fuse`; model_scores, match,
    admissible: (q, n); truth: (q,) column of the right candidate (-1: not in the library)."""
    s = np.asarray(model_scores, dtype=np.float64)
    if admissible is not None:
        s = np.where(admissible, s, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")
    n_ok = np.isfinite(s).sum(axis=1)
    ranks, margins = np.zeros(len(s), dtype=np.int64), np.zeros(len(s))
    for q in range(len(s)):
        short = order[q, :max(1, min(depth, n_ok[q]))]
        fused = fuse(s[q, short][None], np.asarray(match)[q, short][None], weight)[0]
        new = short[np.argsort(-fused, kind="stable")]
        margins[q] = margin(fused[None])[0]
        hit = np.flatnonzero(new == truth[q])
        if hit.size:
            ranks[q] = hit[0] + 1
        elif truth[q] >= 0 and np.isfinite(s[q, truth[q]]):
            ranks[q] = int(np.flatnonzero(order[q] == truth[q])[0]) + 1
        else:  # filtered out, or absent: below every admissible candidate
            ranks[q] = n_ok[q] + 1
    return ranks, margins
