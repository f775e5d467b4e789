"""What one epoch of the `paper` profile costs: training steps at paper size timed on this machine.

Times the training step `train()` takes (fast path, retained freed memory) at the `paper`
profile's model size on batches of 128 embedded QM9 molecules, measures the process's peak
resident memory, and scales the median step to an epoch of the paper's training split
(`learning_curve.PAPER_TRAIN_SIZE` molecules) and to the released budget (at most 200 epochs).
With `--write`, replaces the generated section of book/gpu.md with the table.

    .venv/bin/python benchmarks/paper_epoch.py [--reps 5] [--device cpu] [--write]
"""

from __future__ import annotations

import argparse
import math
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch_geometric.loader import DataLoader

from vibraclip_core.config.profiles import REPO_ROOT, get_config
from vibraclip_core.data.datasets import prepare
from vibraclip_core.data.graphs import MoleculeDataset, geometry_cache
from vibraclip_core.experiments.learning_curve import PAPER_TRAIN_SIZE
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.training.step_timing import make_training_step
from vibraclip_core.training.train import retain_freed_memory

BEGIN, END = "<!-- BEGIN GENERATED: benchmarks/paper_epoch.py -->", "<!-- END GENERATED -->"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--write", action="store_true", help="update book/gpu.md's generated table")
    args = p.parse_args()
    torch.use_deterministic_algorithms(True)
    retain_freed_memory()
    cfg = get_config("paper", n_molecules=256, build_dir=tempfile.mkdtemp())
    data = prepare(cfg)
    ds = MoleculeDataset(data, data.splits["train"][:cfg.batch_size],
                         geometry_cache(data, cfg.cutoff_ang, cfg.build_dir))
    batch = next(iter(DataLoader(ds, batch_size=cfg.batch_size))).to(args.device)
    model = VibraCLIP(cfg).to(args.device).train()
    step = make_training_step(cfg, model, batch)
    step()  # warm-up
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    s_step = statistics.median(times)
    steps = math.ceil(PAPER_TRAIN_SIZE / cfg.batch_size)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    n_params = sum(p.numel() for p in model.parameters())
    rows = [("parameters", f"{n_params:,}"),
            ("machine", f"{platform.processor() or platform.machine()}, "
                        f"{torch.get_num_threads()} threads, {args.device}"),
            ("training step, batch of 128 (median of "
             f"{args.reps})", f"{s_step:.2f} s"),
            (f"one epoch ({PAPER_TRAIN_SIZE:,} molecules, {steps:,} steps)",
             f"{s_step * steps / 3600:.1f} h"),
            (f"the released budget (at most {cfg.max_epochs} epochs)",
             f"{s_step * steps * cfg.max_epochs / 86400:.0f} days"),
            ("peak resident memory of this process", f"{peak_gib:.1f} GiB")]
    table = "| quantity | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    print(table)
    if args.write:
        path = REPO_ROOT / "book" / "gpu.md"
        text = path.read_text()
        start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
        path.write_text(text[:start] + "\n" + table + text[stop:])
        print(f"wrote {Path(path).relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
