"""Training-split mass statistics: what standardizes a mass-anchored model's mass input.

Every run folder holds them as mass_stats.json beside its checkpoints, so a model can be used
on molecules outside its training data (`vibraclip identify`, realignment, the shipped model).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vibraclip_core.data.datasets import PreparedData

MASS_STATS_FILE = "mass_stats.json"


class MassStatsError(ValueError):
    """mass_stats.json is missing or unreadable; the message says how to rewrite it."""


@dataclass(frozen=True)
class MassStats:
    """Training-split molecular mass statistics in Da that standardize the model's mass input."""

    mean_da: float
    std_da: float

    def standardize(self, mass_da: np.ndarray | float) -> torch.Tensor:
        """(n,) float32 (mass_da - mean_da) / std_da."""
        return torch.as_tensor((np.atleast_1d(mass_da) - self.mean_da) / self.std_da,
                               dtype=torch.float32)


def write_mass_stats(run_dir: str | Path, data: PreparedData) -> Path:
    """Write run_dir/mass_stats.json from a PreparedData's mass_mean / mass_std (Da); returns it."""
    stats = MassStats(float(data.mass_mean), float(data.mass_std))
    path = Path(run_dir) / MASS_STATS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"mass_mean_da": stats.mean_da, "mass_std_da": stats.std_da,
                                "data_key": data.key}, indent=2))
    return path


def mass_stats_for(checkpoint: str | Path) -> MassStats:
    """The training mass statistics stored as mass_stats.json beside `checkpoint`."""
    path = Path(checkpoint).parent / MASS_STATS_FILE
    if not path.is_file():
        raise MassStatsError(
            f"{path}: missing. {checkpoint} was trained with mass anchoring, which needs the "
            "training mass mean/std; re-save them with vibraclip_core.data.mass."
            f"write_mass_stats('{Path(checkpoint).parent}', prepare(config)), config from the "
            "run's config.json, or retrain")
    try:
        raw = json.loads(path.read_text())
        stats = MassStats(float(raw["mass_mean_da"]), float(raw["mass_std_da"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise MassStatsError(f"{path}: unreadable ({exc}); expected JSON with mass_mean_da and "
                            "mass_std_da; rewrite it with write_mass_stats") from exc
    if not (math.isfinite(stats.mean_da) and math.isfinite(stats.std_da) and stats.std_da > 0):
        raise MassStatsError(f"{path}: mass_std_da must be finite and > 0, got {stats}")
    return stats
