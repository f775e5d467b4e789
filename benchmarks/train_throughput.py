"""Training-step throughput at the `paper` and `cpu` model sizes, measured side by side.

Prints molecules per second for one optimisation step (forward + backward + AdamW) on a batch of
QM9 molecules from the embedded data, and the share of the step spent in the graph encoder, the
spectra encoders and data loading.  Usage: python benchmarks/train_throughput.py [--batch 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch_geometric.loader import DataLoader

from vibraclip_core.config import get_config
from vibraclip_core.datasets import prepare
from vibraclip_core.train import MoleculeDataset, geometry_cache, time_training_step
from vibraclip_core.model import VibraCLIP


def timed(fn, reps: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    torch.manual_seed(0)
    build = tempfile.mkdtemp()
    print(f"torch threads: {torch.get_num_threads()}, batch: {args.batch} molecules")
    print(f"{'profile':8s} {'params':>10s} {'step s':>8s} {'mol/s':>8s} {'graph':>7s} "
          f"{'spectra':>8s} {'loading':>8s}")
    for profile in ("paper", "cpu"):
        cfg = get_config(profile, n_molecules=2 * args.batch, build_dir=build,
                         batch_size=args.batch)
        data = prepare(cfg)
        ds = MoleculeDataset(data, data.splits["train"], geometry_cache(data, cfg.cutoff_ang, build))
        loader = DataLoader(ds, batch_size=args.batch, shuffle=True)
        batch = next(iter(loader))
        model = VibraCLIP(cfg).train()

        def graph_only() -> None:
            model.zero_grad()
            out = model.graph_encoder(batch.z, batch.pos, batch.batch)
            out.sum().backward()

        def spectra_only() -> None:
            model.zero_grad()
            (model.ir_encoder(batch.ir).sum() + model.raman_encoder(batch.raman).sum()).backward()

        t_step = time_training_step(cfg, data, reps=args.reps)
        t_graph = timed(graph_only, args.reps)
        t_spec = timed(spectra_only, args.reps)
        t_load = timed(lambda: next(iter(loader)), args.reps)
        n_params = sum(q.numel() for q in model.parameters())
        print(f"{profile:8s} {n_params:10d} {t_step:8.2f} {args.batch / t_step:8.1f} "
              f"{t_graph / t_step:7.0%} {t_spec / t_step:8.0%} {t_load / t_step:8.0%}")


if __name__ == "__main__":
    main()
