"""Training-step throughput of the three training paths, side by side, at the `cpu` and `paper`
model sizes, and the path `fast_train = "auto"` picks on this machine.

One optimisation step (forward + backward + AdamW) on the same batch of 128 embedded QM9
molecules, from the same initial weights, under `torch.use_deterministic_algorithms(True)` as the
Lightning trainer runs it:
- exact: `fast_train="off"`, float32 through PyG's own DimeNet++ block forwards;
- float32: `fast_train="float32"`, the fast path's float32 parts: index_select gathers and an
  in-place spherical basis in the graph encoder (same forward values);
- bf16: `fast_train="on"`, those parts plus bf16 autocast for the encoders and heads (loss in
  float32).
Each path is timed twice: with glibc's default malloc, as every run trained before the fast path,
and with freed memory retained (`train.retain_freed_memory`), as `train()` runs every path now.
Steps alternate between the paths so that all see the same machine load (another process on the
same cores slows all alike); medians of `--reps` steps.

Printed: the machine (CPU model, torch's CPU capability and the bf16 flags, threads, torch
version) and what `auto` picks there and why; the table of seconds per step; each part's share
of the auto path's step (gathers, retained memory, bf16 autocast); and, last, the ratio of the
auto path against the exact path, both as `train()` runs them.

Usage: OMP_NUM_THREADS=1 python benchmarks/train_throughput.py [--batch 128] [--reps 5]
       [--sizes cpu,paper] [--profile-ops] [--device cuda]
The last line reads `auto path (NAME) against the exact path: N.NN× (cpu size), N.NN× (paper size)`.
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
from vibraclip_core.training.training_path import PATH_NAMES, this_machine, training_path

PATHS = ("off", "float32", "on")  # exact, float32, bf16


def make_step(config: Config, state: dict, batch) -> tuple[Callable[[], None], VibraCLIP]:
    """One training step of `config`'s path, on `batch` (and its device), from `state`."""
    model = VibraCLIP(config).to(batch.z.device).train()
    model.load_state_dict(state)
    return make_training_step(config, model, batch), model


def forward_gap(exact: VibraCLIP, fast: VibraCLIP, batch) -> tuple[float, float, float]:
    """Eval-mode forwards against the exact path's, over the three embeddings: max |difference|
    of the float32 path (gathers only), and max |difference| and lowest row cosine of the bf16
    path (bf16 autocast)."""
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
    """The three paths' steps at `profile`'s size on one batch from one set of initial weights."""
    cfg = get_config(profile, n_molecules=2 * args.batch, build_dir=build, batch_size=args.batch)
    data = prepare(cfg)
    ds = MoleculeDataset(data, data.splits["train"][:args.batch],
                         geometry_cache(data, cfg.cutoff_ang, build))
    batch = next(iter(DataLoader(ds, batch_size=args.batch))).to(args.device)
    torch.manual_seed(0)
    state = VibraCLIP(cfg).state_dict()
    steps, models = {}, {}
    for path in PATHS:
        steps[path], models[path] = make_step(cfg.replace(fast_train=path), state, batch)
    gap32, gap16, cos16 = forward_gap(models["off"], models["float32"], batch)
    for m in models.values():
        m.train()
    n_params = sum(p.numel() for p in models["off"].parameters())
    print(f"{profile} size: {n_params:,} parameters, {int(batch.z.numel())} atoms, "
          f"{batch.rg_edge_index.size(1):,} edges, {batch.rg_idx_kj.numel():,} triplets; "
          f"forward against exact, max |difference| over the three embeddings: float32 path "
          f"{gap32:.1e}, bf16 path {gap16:.1e} (lowest row cosine {cos16:.5f})")
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


def shares(default: dict[str, float], retained: dict[str, float], auto: str) -> dict[str, float]:
    """Each part's speed-up factor on the way from the exact step (default malloc) to the auto
    path's step as train() runs it: gathers, retained memory, bf16 autocast (1.0 when auto
    leaves it out); their product is the last entry."""
    nan = float("nan")
    parts = {"float32 parts (index_select gathers)": (default["off"] / default["float32"]
                                                     if "float32" in default else nan),
             "retained memory (float32 path)": (default["float32"] / retained["float32"]
                                                if "float32" in default else nan),
             "bf16 autocast (over float32, retained)": (
                 retained["float32"] / retained["on"] if auto == "on" and "float32" in retained
                 else 1.0 if auto != "on" else nan)}
    parts["auto path as train() runs it, over the exact path before this work"] = (
        default["off"] / retained[auto])
    return parts


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--sizes", default="cpu,paper", help="comma list of profiles' model sizes")
    p.add_argument("--paths", default=",".join(PATHS), help="fast_train values timed (comma "
                   "list of off, float32, on; off and the one auto picks are always timed)")
    p.add_argument("--profile-ops", action="store_true", help="print a profile of each path")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    args = p.parse_args()
    torch.use_deterministic_algorithms(True)  # as the Lightning trainer (deterministic=True)
    build = tempfile.mkdtemp()
    machine = this_machine(args.device)
    auto = training_path("auto", args.device)
    print(f"machine: {machine.describe()}; batch: {args.batch} molecules")
    print(f"fast_train = auto picks the {auto.name} path here: {auto.reason}")
    sizes = tuple(args.sizes.split(","))
    paths = tuple(p for p in PATHS if p in args.paths.split(",") + ["off", auto.fast_train])
    steps = {size: {p: s for p, s in setup(size, args, build).items() if p in paths}
             for size in sizes}
    # glibc's default malloc, as every run trained before the fast path; then with freed memory
    # retained, as `train()` now runs every path (retain_freed_memory: process-wide, so second)
    print(f"timing {args.reps} steps of each path, default malloc, then retained memory ...",
          flush=True)
    default = {size: time_paths(steps[size], args.reps) for size in sizes}
    kept = retain_freed_memory()
    retained = {size: time_paths(steps[size], args.reps) for size in sizes} if kept else default
    rows = {}
    for size in sizes:
        for path in paths:
            rows[(size, PATH_NAMES[path] + (" (auto)" if path == auto.fast_train else ""))] = {
                "default malloc, s/step": default[size][path],
                "retained memory, s/step": retained[size][path] if kept else float("nan"),
                "× exact (retained)": retained[size]["off"] / retained[size][path]}
    table = pd.DataFrame(rows).T
    table["mol/s (best)"] = args.batch / table.iloc[:, :2].min(axis=1)
    with pd.option_context("display.width", 160, "display.max_columns", 10,
                           "display.float_format", "{:.3f}".format):
        print(table)
    if args.profile_ops:
        for size in sizes:
            for name, step in steps[size].items():
                with torch.profiler.profile() as prof:
                    step()
                print(f"{size} size, {PATH_NAMES[name]} path, top ops by self CPU time:")
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    if not kept:
        print("no glibc here: retained memory not measured (its share reads 1.0)")
    print("each part's share (speed-up factor) of the auto path's step:")
    print(pd.DataFrame({f"{size} size": shares(default[size], retained[size], auto.fast_train)
                        for size in sizes}).to_string(float_format="{:.2f}×".format))
    ratio = {size: retained[size]["off"] / retained[size][auto.fast_train] for size in sizes}
    print(f"auto path ({auto.name}) against the exact path, both as train() runs them: "
          + ", ".join(f"{ratio[size]:.2f}× ({size} size)" for size in sizes))


if __name__ == "__main__":
    main()
