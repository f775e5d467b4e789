"""Training-step throughput of the exact and the fast path, side by side, at the `cpu` and `paper`
model sizes.

One optimisation step (forward + backward + AdamW) on the same batch of 128 embedded QM9
molecules, from the same initial weights, under `torch.use_deterministic_algorithms(True)` as the
Lightning trainer runs it:
- exact: `fast_train=False`, float32 through PyG's own DimeNet++ block forwards;
- fast: `fast_train=True`, bf16 autocast for the encoders and heads (loss in float32),
  index_select gathers and an in-place spherical basis in the graph encoder.
Each path is timed twice: with glibc's default malloc, as every run trained before the fast path,
and with freed memory retained (`train.retain_freed_memory`), as `train()` runs now. Steps
alternate between the paths so that both see the same machine load; medians of `--reps` steps.
The headline compares the step before this work (exact path, default malloc) with the step
`train()` now takes (fast path, retained memory); the ratios of the paths alone are printed too.

Usage: python benchmarks/train_throughput.py [--batch 128] [--reps 5] [--profile-ops] [--device cuda]
The last line reads `training step speed-up: N.N× (cpu size), N.N× (paper size)`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Callable

import pandas as pd
import torch
from torch_geometric.loader import DataLoader

from vibraclip_core.config.profiles import Config, get_config
from vibraclip_core.data.datasets import prepare
from vibraclip_core.data.graphs import MoleculeDataset, geometry_cache
from vibraclip_core.model.vibraclip import VibraCLIP, training_autocast
from vibraclip_core.training.step_timing import make_training_step
from vibraclip_core.training.train import retain_freed_memory


def make_step(config: Config, state: dict, batch) -> tuple[Callable[[], None], VibraCLIP]:
    """One training step of `config`'s path, on `batch` (and its device), from `state`."""
    model = VibraCLIP(config).to(batch.z.device).train()
    model.load_state_dict(state)
    return make_training_step(config, model, batch), model


def forward_gap(exact: VibraCLIP, fast: VibraCLIP, batch) -> tuple[float, float, float]:
    """Eval-mode forwards against the exact path's, over the three embeddings: max |difference|
    of the fast path in float32 (gathers only), and max |difference| and lowest row cosine of
    the fast path in bf16 autocast."""
    exact.eval(), fast.eval()
    with torch.no_grad():
        ref = exact(batch)
        same = fast(batch)
        with training_autocast(batch.z.device.type, True):
            low = {k: v.float() for k, v in fast(batch).items()}
    gap = lambda out: max(float((out[k] - ref[k]).abs().max()) for k in ref)  # noqa: E731
    cosine = min(float(torch.nn.functional.cosine_similarity(low[k], ref[k], dim=1).min())
                 for k in ref)
    return gap(same), gap(low), cosine


def setup(profile: str, args: argparse.Namespace, build: str) -> dict:
    """Both paths' steps at `profile`'s size on one batch from one set of initial weights."""
    cfg = get_config(profile, n_molecules=2 * args.batch, build_dir=build, batch_size=args.batch)
    data = prepare(cfg)
    ds = MoleculeDataset(data, data.splits["train"][:args.batch],
                         geometry_cache(data, cfg.cutoff_ang, build))
    batch = next(iter(DataLoader(ds, batch_size=args.batch))).to(args.device)
    torch.manual_seed(0)
    state = VibraCLIP(cfg).state_dict()
    steps, models = {}, {}
    for name, fast in (("exact", False), ("fast", True)):
        steps[name], models[name] = make_step(cfg.replace(fast_train=fast), state, batch)
    gap32, gap16, cos16 = forward_gap(models["exact"], models["fast"], batch)
    for m in models.values():
        m.train()
    n_params = sum(p.numel() for p in models["fast"].parameters())
    print(f"{profile} size: {n_params:,} parameters, {int(batch.z.numel())} atoms, "
          f"{batch.rg_edge_index.size(1):,} edges, {batch.rg_idx_kj.numel():,} triplets; "
          f"forward against exact, max |difference| over the three embeddings: fast path in "
          f"float32 {gap32:.1e}, in bf16 {gap16:.1e} (lowest row cosine {cos16:.5f})")
    return steps


def time_paths(steps: dict, reps: int) -> dict[str, float]:
    """Median seconds per step of each path, the paths alternating, after one warm-up each."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        step()
    for _ in range(reps):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--reps", type=int, default=8)
    p.add_argument("--profile-ops", action="store_true", help="print a profile of each path")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    args = p.parse_args()
    torch.use_deterministic_algorithms(True)  # as the Lightning trainer (deterministic=True)
    build = tempfile.mkdtemp()
    print(f"torch {torch.__version__}, device: {args.device}, threads: "
          f"{torch.get_num_threads()}, batch: {args.batch} molecules")
    sizes = ("cpu", "paper")
    steps = {size: setup(size, args, build) for size in sizes}
    # glibc's default malloc, as every run trained before this benchmark existed; then with
    # freed memory retained, as `train()` now runs (retain_freed_memory: process-wide, so second)
    default = {size: time_paths(steps[size], args.reps) for size in sizes}
    retained = retain_freed_memory() and {size: time_paths(steps[size], args.reps)
                                          for size in sizes}
    rows = {}
    for size in sizes:
        for name in ("exact", "fast"):
            rows[(size, name)] = {"default malloc, s/step": default[size][name],
                                  "retained memory, s/step": (retained or {}).get(
                                      size, {}).get(name, float("nan"))}
    table = pd.DataFrame(rows).T
    table["mol/s (best)"] = args.batch / table.min(axis=1)
    with pd.option_context("display.width", 120, "display.float_format", "{:.3f}".format):
        print(table)
    if args.profile_ops:
        for size in sizes:
            for name, step in steps[size].items():
                with torch.profiler.profile() as prof:
                    step()
                print(f"{size} size, {name} path, top ops by self CPU time:")
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    final = retained or default
    for size in sizes:
        print(f"{size} size, the paths alone: {default[size]['exact'] / default[size]['fast']:.1f}× "
              f"with glibc's default malloc, "
              + (f"{retained[size]['exact'] / retained[size]['fast']:.1f}× with retained memory"
                 if retained else "no glibc here"))
    # today's step: the exact path as every run trained before the fast path (default malloc);
    # the fast step: as train() runs it now
    speedup = {size: default[size]["exact"] / final[size]["fast"] for size in sizes}
    print("training step speed-up against the step before the fast path (exact path, default "
          "malloc) of the fast path as train() runs it:")
    print(f"training step speed-up: {speedup['cpu']:.1f}× (cpu size), "
          f"{speedup['paper']:.1f}× (paper size)")


if __name__ == "__main__":
    main()
