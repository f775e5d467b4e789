"""Run folders: one per (config, data) under build/runs, locked while a run trains, with the
history Lightning's CSVLogger writes there and the result `train` returns.

<run>/logs/version_<i>/metrics.csv holds one attempt each (a resumed run adds a version);
`read_history` joins them into one row per epoch, the latest attempt's row winning.
"""

from __future__ import annotations

import csv
import fcntl
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lightning.pytorch.loggers import CSVLogger

from vibraclip_core.config.profiles import Config
from vibraclip_core.training.training_path import resolved

log = logging.getLogger(__name__)

LOG_DIR = "logs"
# the tag of a profile's main pretraining run: the book (Chapter 2), `vibraclip train` and
# `vibraclip export-model` share its folder, so the same config is trained once
MAIN_TAG = "main"


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path
    history: list[dict[str, float]]  # one row per epoch: "epoch" and each logged metric
    config: Config


def run_dir(config: Config, data_key: str, tag: str = "", device: str | None = None) -> Path:
    """build/runs/<tag>-<config hash>-<data hash>: one folder per (config, data). The hash is
    of the config with `fast_train` resolved for `device` (None: the default device), so that
    an `auto` run is keyed by the path it trains on."""
    config = resolved(config, device)
    name = f"{tag + '-' if tag else ''}{config.digest()}-{data_key[:12]}"
    return Path(config.build_dir) / "runs" / name


def history_logger(run_folder: Path) -> CSVLogger:
    """A CSVLogger writing this attempt's metrics to <run>/logs/version_<next>/metrics.csv."""
    return CSVLogger(save_dir=run_folder, name=LOG_DIR)


def read_history(run_folder: Path) -> list[dict[str, float]]:
    """Per-epoch rows ({"epoch": int, metric: float}) of a run's CSV logs, in epoch order; an
    epoch logged by several attempts (a resumed run) keeps the latest attempt's row."""
    versions = sorted((Path(run_folder) / LOG_DIR).glob("version_*/metrics.csv"),
                      key=lambda p: int(p.parent.name.removeprefix("version_")))
    epochs: dict[int, dict[str, float]] = {}
    for path in versions:
        attempt: dict[int, dict[str, float]] = {}
        with path.open(newline="") as fh:
            # Lightning writes the validation and the training metrics of an epoch as two rows
            for row in csv.DictReader(fh):
                epoch = int(row["epoch"])
                merged = attempt.setdefault(epoch, {"epoch": epoch})
                merged.update({k: float(v) for k, v in row.items()
                               if v != "" and k not in ("epoch", "step")})
        epochs.update(attempt)
    return [epochs[e] for e in sorted(epochs)]


def final_metrics(result: TrainResult) -> dict[str, float]:
    """Validation metrics of the best epoch (lowest val_loss) of a run."""
    rows = [h for h in result.history if "val_loss" in h]
    if not rows:
        raise ValueError(f"{result.run_dir}: no validation metrics recorded")
    return min(rows, key=lambda h: h["val_loss"])


def distributed(trainer_kwargs: dict[str, Any] | None) -> bool:
    """True inside a multi-process launch (DDP ranks, SLURM tasks) or when one is asked for."""
    kw = trainer_kwargs or {}
    return (any(v in os.environ for v in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "SLURM_PROCID"))
            or "ddp" in str(kw.get("strategy", "")) or kw.get("num_nodes", 1) != 1
            or kw.get("devices", 1) not in (1, "1", "auto"))


@contextmanager
def run_lock(run_folder: Path) -> Iterator[None]:
    """Exclusive lock on a run folder (an flock on <run>/.lock), held while it trains."""
    with (Path(run_folder) / ".lock").open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("%s is being trained by another process; waiting for it", run_folder)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
