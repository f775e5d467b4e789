"""Seconds per training step on each training path (`fast_train`: exact, float32, bf16): what
Chapter 2 reports and `benchmarks/train_throughput.py` breaks down."""

from __future__ import annotations

import time
from typing import Any, Callable

import pandas as pd
import torch
from torch_geometric.loader import DataLoader

from vibraclip_core.config.profiles import Config
from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.data.graphs import MoleculeDataset, geometry_cache
from vibraclip_core.model.losses import VibraCLIPLoss
from vibraclip_core.model.vibraclip import VibraCLIP, training_autocast
from vibraclip_core.training.training_path import PATH_NAMES, training_path

# the paths Chapter 2's table times, by `fast_train` value, in the order it shows them
TIMED_PATHS = ("off", "float32", "on")


def make_training_step(config: Config, model: VibraCLIP, batch: Any) -> Callable[[], None]:
    """One optimisation step (forward + backward + AdamW, lr 1e-4) of `model` on `batch`, on
    `config`'s path (`fast_train`, resolved for the batch's device as `train` resolves it);
    for timing, not for training."""
    device = batch.z.device.type
    autocast = training_path(config, device).autocast
    loss_fn = VibraCLIPLoss(config.loss, pair_loss=config.pair_loss)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad()
        with training_autocast(device, autocast):
            emb = model(batch)
        loss_fn({k: v.float() for k, v in emb.items()}, model.logit_scale()).backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def time_training_step(config: Config, data: PreparedData, reps: int = 2) -> float:
    """Seconds per optimisation step (forward + backward + AdamW) on one training batch of
    `config.batch_size` molecules, at `config`'s model size and path (`fast_train`), after one
    warm-up step, in deterministic mode as the trainer runs it; weights seeded by config.seed."""
    geo = geometry_cache(data, config.cutoff_ang, config.build_dir)
    ds = MoleculeDataset(data, data.splits["train"][:config.batch_size], geo)
    batch = next(iter(DataLoader(ds, batch_size=config.batch_size)))
    torch.manual_seed(config.seed)
    step = make_training_step(config, VibraCLIP(config).train(), batch)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        step()
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        return (time.perf_counter() - t0) / reps
    finally:
        torch.use_deterministic_algorithms(deterministic)


def step_column(fast_train: str) -> str:
    """The column of `step_time_table` that holds a resolved `fast_train` value's seconds."""
    return f"{PATH_NAMES[fast_train]} path, s/step"


def step_time_table(configs: dict[str, Config], data: PreparedData, reps: int = 1
                    ) -> pd.DataFrame:
    """Seconds per training step of each named config (rows) on each path of TIMED_PATHS
    (exact: float32 through PyG's blocks; float32: with the fast path's gathers; bf16: with bf16
    autocast as well), same weights and batch, and each path's speed-up over the exact one."""
    rows = {}
    for name, cfg in configs.items():
        seconds = {p: time_training_step(cfg.replace(fast_train=p), data, reps)
                   for p in TIMED_PATHS}
        rows[name] = {**{step_column(p): s for p, s in seconds.items()},
                      **{f"{PATH_NAMES[p]} speed-up": seconds["off"] / seconds[p]
                         for p in TIMED_PATHS if p != "off"}}
    return pd.DataFrame(rows).T
