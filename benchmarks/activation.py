"""DimeNet++'s activation: torch's fused SiLU (what the package uses) vs PyG's default swish
(x * sigmoid(x) in two ops), measured side by side on the same weights and batches.

Prints seconds per training step (forward + backward + AdamW, `cpu` model size, batches of 128
embedded QM9 molecules) for both and their ratio.
Usage: python benchmarks/activation.py [--steps 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch_geometric.loader import DataLoader
from torch_geometric.nn.resolver import activation_resolver

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data.datasets import prepare
from vibraclip_core.data.graphs import MoleculeDataset, geometry_cache
from vibraclip_core.training.lightning_module import VibraCLIPModule


class Swish(torch.nn.Module):
    """PyG's default DimeNet++ activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activation_resolver("swish")(x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=5, help="timed steps per round and variant")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    args = p.parse_args()
    cfg = get_config("cpu")
    data = prepare(cfg)
    geo = geometry_cache(data, cfg.cutoff_ang, cfg.build_dir)
    rows = data.splits["train"][:cfg.batch_size * (args.steps + 1)]
    batches = list(DataLoader(MoleculeDataset(data, rows, geo), batch_size=cfg.batch_size))
    torch.manual_seed(cfg.seed)
    fused = VibraCLIPModule(cfg.to_dict())
    spelled = copy.deepcopy(fused)
    for m in spelled.model.graph_encoder.modules():
        if isinstance(getattr(m, "act", None), torch.nn.SiLU):
            m.act = Swish()
    variants = {"fused SiLU": fused, "swish x*sigmoid(x)": spelled}
    opts = {k: torch.optim.AdamW(m.parameters(), 1e-3) for k, m in variants.items()}

    def step(name: str, batch) -> None:
        module, opt = variants[name], opts[name]
        opt.zero_grad()
        loss = module._common_step(batch, "train")
        loss.backward()
        opt.step()

    for k in variants:
        step(k, batches[0])  # warm-up
    seconds = dict.fromkeys(variants, 0.0)
    for _ in range(args.rounds):
        for name in variants:
            t0 = time.perf_counter()
            for b in batches[1:]:
                step(name, b)
            seconds[name] += time.perf_counter() - t0
    n = args.rounds * (len(batches) - 1)
    for name, s in seconds.items():
        print(f"{name:>20}: {s / n:.3f} s per step ({cfg.batch_size} molecules)")
    print(f"swish / fused SiLU: {seconds['swish x*sigmoid(x)'] / seconds['fused SiLU']:.2f}x "
          "(same values: tests/test_model.py::test_fused_silu_gives_pygs_swish_values)")


if __name__ == "__main__":
    main()
