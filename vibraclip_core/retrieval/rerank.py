"""Re-ranking a model's shortlist by the physics of the candidates, and a confidence for rank 1.

The model ranks the whole library (after any mass or formula filter); the candidates that take
part are re-scored by fusing the model's score with the spectrum-match score (`spectral_match`):
each is standardised over the candidates taking part (z-scores) and summed with the match's
`weight`; candidates without a simulated spectrum get a neutral match z of 0. Which candidates
take part is the shortlist rule: the model's top `depth`, or with `depth` 0 every admissible
candidate (a simulated spectrum already on disk costs one matrix product; `identify` then
simulates only the model's top candidates that have none). The rest keep the model's order.

The confidence has absolute evidence, not only the gap between candidates: a logistic function of
`CONFIDENCE_FEATURES` (the fused margin between rank 1 and rank 2, rank 1's match cosine, and the
log of the number of candidates). It is fitted on validation queries whose molecule is in the
library and on the same queries with it removed (open set), so a query that fits nothing gets a
low probability. A second logistic of the same features estimates that the molecule is among the
candidates at all; below `present_threshold` (set so that at most `MAX_FALSE_NONE` of the
queries whose molecule is present are flagged) identify says that no candidate fits. All of it is
chosen and fitted on pseudo-measured validation queries of other theories (`vibraclip
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
ALL_CANDIDATES = 0  # depth 0: every admissible candidate takes part in the fusion
SIMULATE_TOP = DEFAULT_DEPTH  # of the candidates without sticks on disk, identify simulates the
# model's top SIMULATE_TOP per query (about 1 s per molecule per core, then cached)
CONFIDENCE_FEATURES = ("fused margin", "rank-1 match", "log candidates")
MAX_FALSE_NONE = 0.10  # share of present-truth validation queries "no candidate fits" may flag


@dataclass
class Reranker:
    """Match settings, fusion weight and shortlist depth (0: all candidates), the confidence's
    logistic coefficients (intercept, then one per CONFIDENCE_FEATURES; an older file's two:
    intercept and fused margin), the "molecule present" logistic and its threshold (None: never
    says that nothing fits), with how they were chosen."""

    settings: MatchSettings = field(default_factory=MatchSettings)
    weight: float = 1.0
    depth: int = DEFAULT_DEPTH
    confidence_coef: tuple[float, ...] = (0.0, 1.0)
    provenance: dict = field(default_factory=dict)
    present_coef: tuple[float, ...] | None = None
    present_threshold: float | None = None

    def save(self, path: str | Path) -> Path:
        """Write as JSON, atomically."""
        path = Path(path)
        with atomic_path(path, mode=0o644) as tmp:
            tmp.write_text(json.dumps({"settings": self.settings.to_dict(), "weight": self.weight,
                                       "depth": self.depth,
                                       "confidence_coef": list(self.confidence_coef),
                                       "present_coef": (None if self.present_coef is None
                                                        else list(self.present_coef)),
                                       "present_threshold": self.present_threshold,
                                       "provenance": self.provenance}, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Reranker":
        """Read `save`'s JSON; ValueError naming the file when it does not fit this code."""
        try:
            raw = json.loads(Path(path).read_text())
            present = raw.get("present_coef")
            out = cls(MatchSettings(**raw["settings"]), float(raw["weight"]), int(raw["depth"]),
                      tuple(float(c) for c in raw["confidence_coef"]), raw.get("provenance", {}),
                      None if present is None else tuple(float(c) for c in present),
                      None if raw.get("present_threshold") is None
                      else float(raw["present_threshold"]))
            if len(out.confidence_coef) not in (2, 1 + len(CONFIDENCE_FEATURES)):
                raise ValueError(f"{len(out.confidence_coef)} confidence coefficients")
            return out
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a re-ranking file this code can read ({exc}); "
                             "rewrite it with `vibraclip calibrate-rerank`") from exc

    def fuse(self, model_scores: np.ndarray, match: np.ndarray) -> np.ndarray:
        """`fuse` with this weight."""
        return fuse(model_scores, match, self.weight)

    def probability(self, features: np.ndarray) -> np.ndarray:
        """(n_queries,) probability that rank 1 is right from (n_queries, 3) `confidence_features`
        (an older two-coefficient file reads the fused margin alone)."""
        f = np.atleast_2d(features)
        return logistic(f[:, :len(self.confidence_coef) - 1], self.confidence_coef)

    def present(self, features: np.ndarray) -> np.ndarray | None:
        """(n_queries,) probability that the query's molecule is among the candidates; None when
        this file has no such model."""
        if self.present_coef is None:
            return None
        return logistic(np.atleast_2d(features), self.present_coef)

    def none_fits(self, features: np.ndarray) -> np.ndarray | None:
        """(n_queries,) bool: no candidate fits (present() below present_threshold); None when
        this file cannot say."""
        p = self.present(features)
        if p is None or self.present_threshold is None:
            return None
        return p < self.present_threshold


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


def confidence_features(fused: np.ndarray, match_top: np.ndarray, n_candidates: np.ndarray
                        ) -> np.ndarray:
    """(q, 3) CONFIDENCE_FEATURES: fused margin of each row of `fused` (q, n; NaN/-inf outside
    the candidates taking part), rank 1's match cosine (NaN: 0), log number of candidates."""
    return _features(margin(fused), match_top, n_candidates)


def _features(margins: np.ndarray, match_top: np.ndarray, n_candidates: np.ndarray
              ) -> np.ndarray:
    return np.stack([np.asarray(margins, dtype=np.float64),
                     np.nan_to_num(np.asarray(match_top, dtype=np.float64)),
                     np.log(np.maximum(np.asarray(n_candidates, dtype=np.float64), 1.0))],
                    axis=1)


def logistic(x: np.ndarray, coef: tuple[float, ...]) -> np.ndarray:
    """logistic(coef[0] + x @ coef[1:]); x (n,) for one feature or (n, k)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    return 1.0 / (1.0 + np.exp(-(coef[0] + x @ np.asarray(coef[1:], dtype=np.float64))))


def fit_logistic(x: np.ndarray, y: np.ndarray, iters: int = 50, ridge: float = 1e-6
                 ) -> tuple[float, ...]:
    """(intercept, slope per feature) of P(y=1 | x) = logistic by Newton's method (maximum
    likelihood); x (n,) or (n, k)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if len(x) < 2 or y.min() == y.max():
        raise ValueError(f"fit_logistic needs both outcomes among {len(x)} cases")
    design = np.concatenate([np.ones((len(x), 1)), x], axis=1)
    beta = np.zeros(design.shape[1])
    for _ in range(iters):
        p = logistic(x, tuple(beta))
        grad = design.T @ (y - p) - ridge * beta
        hess = design.T @ (design * (p * (1 - p))[:, None]) + ridge * np.eye(len(beta))
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return tuple(float(b) for b in beta)


def reliability(prob: np.ndarray, correct: np.ndarray, bins: int = 5) -> pd.DataFrame:
    """Per bin of predicted probability (equal counts): mean predicted, observed accuracy, count."""
    prob, correct = np.asarray(prob, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    order = np.argsort(prob, kind="stable")
    rows = [{"predicted": prob[b].mean(), "observed": correct[b].mean(), "queries": len(b)}
            for b in np.array_split(order, bins) if len(b)]
    return pd.DataFrame(rows)


@dataclass
class FusedRanks:
    """Per query: the truth's 1-based rank after fusion, and the confidence features' inputs."""

    ranks: np.ndarray  # (q,) int64; n_candidates + 1 where the truth is filtered out or absent
    margin: np.ndarray  # (q,) fused rank 1 minus rank 2
    top_match: np.ndarray  # (q,) rank 1's match cosine (NaN: no simulated spectrum)
    n_candidates: np.ndarray  # (q,) admissible candidates

    def features(self) -> np.ndarray:
        """(q, 3) CONFIDENCE_FEATURES."""
        return _features(self.margin, self.top_match, self.n_candidates)


def fused_ranks(model_scores: np.ndarray, match: np.ndarray, truth: np.ndarray, weight: float,
                depth: int, admissible: np.ndarray | None = None) -> FusedRanks:
    """Each query's admissible candidates taking part (its top `depth` by model score; depth 0:
    all) re-ordered by `fuse`, the rest in model order below them. model_scores, match,
    admissible: (q, n); truth: (q,) column of the right candidate (-1: not in the library)."""
    s = np.asarray(model_scores, dtype=np.float64)
    if admissible is not None:
        s = np.where(admissible, s, -np.inf)
    match = np.asarray(match)
    order = np.argsort(-s, axis=1, kind="stable")
    n_ok = np.isfinite(s).sum(axis=1)
    q_all = len(s)
    ranks, margins = np.zeros(q_all, dtype=np.int64), np.zeros(q_all)
    top_match = np.full(q_all, np.nan)
    for q in range(q_all):
        keep = n_ok[q] if depth <= ALL_CANDIDATES else min(depth, n_ok[q])
        short = order[q, :max(1, keep)]
        fused = fuse(s[q, short][None], match[q, short][None], weight)[0]
        new = short[np.argsort(-fused, kind="stable")]
        margins[q] = margin(fused[None])[0]
        top_match[q] = match[q, new[0]]
        hit = np.flatnonzero(new == truth[q])
        if hit.size:
            ranks[q] = hit[0] + 1
        elif truth[q] >= 0 and np.isfinite(s[q, truth[q]]):
            ranks[q] = int(np.flatnonzero(order[q] == truth[q])[0]) + 1
        else:  # filtered out, or absent: below every admissible candidate
            ranks[q] = n_ok[q] + 1
    return FusedRanks(ranks, margins, top_match, n_ok.astype(np.float64))


def expected_calibration_error(prob: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Mean |predicted - observed| over `bins` equal-width probability bins, weighted by their
    counts (the usual ECE); NaN for no cases."""
    prob, correct = np.asarray(prob, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    if prob.size == 0:
        return float("nan")
    which = np.minimum((prob * bins).astype(np.int64), bins - 1)
    err = 0.0
    for b in np.unique(which):
        sel = which == b
        err += sel.sum() * abs(prob[sel].mean() - correct[sel].mean())
    return float(err / prob.size)


def reranked_ranks(model_scores: np.ndarray, match: np.ndarray, truth: np.ndarray,
                   weight: float, depth: int, admissible: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """((q,) 1-based ranks of the truth, (q,) fused margin) of `fused_ranks`."""
    out = fused_ranks(model_scores, match, truth, weight, depth, admissible)
    return out.ranks, out.margin
