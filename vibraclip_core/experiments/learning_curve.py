"""How much of the gap to the paper is data: the main recipe trained on nested subsets of the training split.

The book trains on the embedded set's ~9,000 molecules, the paper on ~100,000 QM9S molecules.
`learning_curve` trains Chapter 2's recipe (same config, budget and seed) on the first n molecules
of one seeded permutation of the training split (so each subset holds the smaller ones), keeps
validation and test as they are, and ranks the test split's queries among the test split and
among `library_size` candidates. `power_law_fit` fits error = a * n^-b to the top-1 error in log
space and extrapolates it, with a 95 % interval from the fit's covariance, to the paper's
training-set size: an extrapolation over an order of magnitude, which the chapter says plainly.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from vibraclip_core.config.choices import PAPER_LIBRARY_SIZE
from vibraclip_core.config.profiles import Config
from vibraclip_core.config.query_modes import IR_RAMAN
from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.experiments.ablations import PUBLISHED
from vibraclip_core.experiments.library_size import evaluate_library
from vibraclip_core.retrieval.evaluate import evaluate
from vibraclip_core.training.train import load_model, train

# The paper's training-set size: its split is 80/10/10 with a test split of PAPER_LIBRARY_SIZE
PAPER_TRAIN_SIZE = 8 * PAPER_LIBRARY_SIZE
Z_95 = 1.959964
MODE = IR_RAMAN


def nested_subset(data: PreparedData, n: int, seed: int) -> PreparedData:
    """`data` with its training split cut to the first n molecules of a seeded permutation of it
    (the same permutation for every n: subsets are nested); other splits kept."""
    train_rows = data.splits["train"]
    if not 0 < n <= len(train_rows):
        raise ValueError(f"learning-curve size {n}: must be between 1 and the {len(train_rows)} "
                         "training molecules")
    order = torch.randperm(len(train_rows), generator=torch.Generator().manual_seed(seed))
    keep = train_rows[order[:n]].sort().values
    return dataclasses.replace(data, splits={**data.splits, "train": keep},
                               key=f"{data.key}-train{n}-seed{seed}")


def learning_curve(config: Config, data: PreparedData, sizes: Sequence[int],
                   trainer_kwargs: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per training-set size (the listed ones below the full split, then the full split
    itself: Chapter 2's main run, loaded from the cache): IR + Raman top-1 % with its 95 %
    interval among the test split and among `config.library_size` candidates."""
    n_all = len(data.splits["train"])
    rows = []
    for n in [s for s in sorted(set(sizes)) if s < n_all] + [n_all]:
        sub = data if n == n_all else nested_subset(data, n, config.seed)
        result = train(config, sub, tag="main" if n == n_all else f"curve-{n}",
                       trainer_kwargs=trainer_kwargs)
        model = load_model(result.best_checkpoint, expected=config)
        test = evaluate(model, sub, "test", config.build_dir, seed=config.seed).table
        lib = evaluate_library(model, sub, config).table
        mode = MODE
        rows.append({"training molecules": n,
                     "top-1 % (test split)": float(test.loc[mode, "top1"]),
                     "test split 95 % CI": test.loc[mode, "top1_ci"],
                     f"top-1 % ({config.library_size:,})": float(lib.loc[mode, "top1"]),
                     f"{config.library_size:,} 95 % CI": lib.loc[mode, "top1_ci"]})
    return pd.DataFrame(rows).set_index("training molecules").round(1)


def power_law_fit(n: Sequence[int], top1_pct: Sequence[float], at: int = PAPER_TRAIN_SIZE
                  ) -> dict[str, float]:
    """Least-squares fit of log(1 - top1) = log a - b log n; the top-1 % it predicts at `at`
    training molecules with a 95 % interval from the fit's covariance (needs 4 sizes or more)."""
    n = np.asarray(n, dtype=np.float64)
    err = 1 - np.asarray(top1_pct, dtype=np.float64) / 100
    if len(n) < 4:
        raise ValueError(f"a power-law fit with an interval needs at least 4 sizes, got {len(n)}")
    if (err <= 0).any():
        raise ValueError("a top-1 of 100 % has no error to fit in log space")
    coef, cov = np.polyfit(np.log(n), np.log(err), 1, cov=True)
    x = np.array([np.log(at), 1.0])
    mean, sd = float(x @ coef), float(np.sqrt(x @ cov @ x))
    to_top1 = lambda v: 100 * (1 - np.exp(v))  # noqa: E731
    return {"exponent b": float(-coef[0]), "a": float(np.exp(coef[1])), "at": float(at),
            "predicted top-1 %": float(to_top1(mean)),
            "low": float(to_top1(mean + Z_95 * sd)), "high": float(to_top1(mean - Z_95 * sd))}


def plot_learning_curve(curve: pd.DataFrame, column: str, fit: dict[str, float],
                        published: float | None = None, title: str = "") -> plt.Figure:
    """Top-1 against training molecules (log x): measured points, the fitted power law drawn
    to fit["at"] with its 95 % band, and the published figure at the paper's training size."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    n = curve.index.to_numpy(dtype=np.float64)
    ax.plot(n, curve[column], "o", color="C0", label="this book's data (measured)")
    grid = np.geomspace(n.min(), fit["at"], 100)
    ax.plot(grid, 100 * (1 - fit["a"] * grid ** -fit["exponent b"]), "--", color="C0",
            label=f"power-law fit, extrapolated (b = {fit['exponent b']:.2f})")
    ax.errorbar([fit["at"]], [fit["predicted top-1 %"]],
                yerr=[[fit["predicted top-1 %"] - fit["low"]], [fit["high"] - fit["predicted top-1 %"]]],
                fmt="s", color="C0", capsize=4, label="extrapolation, 95 % interval of the fit")
    if published is not None:
        ax.plot([fit["at"]], [published], "*", color="C3", markersize=12,
                label=f"published (QM9S, DFT spectra): {published:g} %")
    ax.set_xscale("log")
    ax.set_xlabel("training molecules")
    ax.set_ylabel("IR + Raman top-1 %")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def library_column(config: Config) -> str:
    """The learning curve's column of top-1 among `config.library_size` candidates."""
    return f"top-1 % ({config.library_size:,})"


def published_top1(config: Config) -> float | None:
    """The paper's QM9S top-1 % of this loss (and mass anchoring), if it published one."""
    key = config.loss + ("+mass" if config.mass else "")
    return PUBLISHED.get(key, {}).get("top1")


def learning_curve_text(curve: pd.DataFrame, fit: dict[str, float], column: str,
                        published: float | None) -> str:
    """The paragraph under Chapter 2's learning curve."""
    first, last = curve.index[0], curve.index[-1]
    return (
        f"IR + Raman top-1 among the larger library rises from {curve.loc[first, column]:.1f} % "
        f"with {first:,} training molecules to {curve.loc[last, column]:.1f} % with all "
        f"{last:,}. A power law in the top-1 error (exponent {fit['exponent b']:.2f}) fitted to "
        f"these {len(curve)} points and **extrapolated** to the paper's {fit['at']:,.0f} training "
        f"molecules predicts {fit['predicted top-1 %']:.1f} % (95 % interval of the fit "
        f"{fit['low']:.1f}–{fit['high']:.1f} %)"
        + (f", against the published {published:g} %. " if published is not None else ". ")
        + "This is "
        "an extrapolation over an order of magnitude in data, with the other differences "
        "(GFN2-xTB rather than DFT spectra, model size, epochs) held at this book's values: it "
        "says how much of the gap more of this data might close, not what a run would reach.")
