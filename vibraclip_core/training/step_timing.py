"""Seconds per training step on the exact path (float32, PyG's blocks) and on the fast path
(`fast_train`): what Chapter 2 reports and `benchmarks/train_throughput.py` breaks down."""

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


def make_training_step(config: Config, model: VibraCLIP, batch: Any) -> Callable[[], None]:
    """One optimisation step (forward + backward + AdamW, lr 1e-4) of `model` on `batch`, on
    `config`'s path (`fast_train`) and the batch's device; for timing, not for training."""
    device = batch.z.device.type
    loss_fn = VibraCLIPLoss(config.loss, pair_loss=config.pair_loss)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad()
        with training_autocast(device, config.fast_train):
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


def step_time_table(configs: dict[str, Config], data: PreparedData, reps: int = 1
                    ) -> pd.DataFrame:
    """Seconds per training step of each named config on the exact path (float32, PyG's
    blocks) and on the fast path (`fast_train`), same weights and batch, and their ratio."""
    rows = {}
    for name, cfg in configs.items():
        exact = time_training_step(cfg.replace(fast_train=False), data, reps)
        fast = time_training_step(cfg.replace(fast_train=True), data, reps)
        rows[name] = {"exact path, s/step": exact, "fast path, s/step": fast,
                      "speed-up": exact / fast}
    return pd.DataFrame(rows).T
