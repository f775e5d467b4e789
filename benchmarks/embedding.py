"""Candidate-library embedding throughput: SMILES -> conformer -> graph -> embedding.

Usage: python benchmarks/embedding.py [--n 2000] [--profile cpu] [--workers 1 2]

Takes the first --n QM9 SMILES of qm9pack and builds a `vibraclip identify` candidate library from
them (ETKDG conformer, graph features, radius graph + triplets, DimeNet++ and head) with a freshly
initialised model of the profile's size: the weights do not change the cost. Each worker count
is timed on an empty cache, side by side in one run; then the same library is loaded again from
the on-disk cache (what a second `identify` query against the same library costs). Prints
molecules per second, the speed-up of the process pool, the cache-hit time, and the extrapolated
time to embed all 130,831 QM9 molecules.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

import torch

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data.mass import MassStats
from vibraclip_core.data.sources import QM9_SIZE
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.candidates import qm9_smiles
from vibraclip_core.retrieval.library_cache import build_library


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    smiles = qm9_smiles()[:args.n]
    config = get_config(args.profile)
    torch.manual_seed(0)
    model = VibraCLIP(config).eval()
    stats = MassStats(mean_da=123.0, std_da=7.5)  # any values: they only scale an input
    print(f"{len(smiles)} QM9 SMILES, profile {args.profile} "
          f"(latent {config.latent_dim}), {torch.get_num_threads()} torch threads")
    rates = {}
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            lib = build_library(model, smiles, stats, cache, workers=workers, progress=False)
            build_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = build_library(model, smiles, stats, cache, workers=workers, progress=False)
            hit_s = time.perf_counter() - t0
        assert torch.equal(lib.graph_emb, again.graph_emb)
        rates[workers] = len(lib) / build_s
        print(f"workers={workers}: {len(lib)} embedded ({sum(lib.skipped.values())} skipped) in "
              f"{build_s:.1f} s = {rates[workers]:.0f} mol/s; from cache {hit_s:.2f} s; "
              f"all of QM9 ({QM9_SIZE:,}) ≈ {QM9_SIZE / rates[workers] / 60:.0f} min")
    if len(rates) > 1:
        lo, hi = min(rates), max(rates)
        print(f"ratio workers={hi} / workers={lo}: {rates[hi] / rates[lo]:.2f}x")


if __name__ == "__main__":
    main()
