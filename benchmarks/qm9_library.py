"""`vibraclip identify --candidates qm9`: the first query (conformers + embedding) and a later one.

Usage: python benchmarks/qm9_library.py [--shards 128] [--profile cpu] [--workers 2]
                                        [--batch-size 32] [--cache-dir DIR] [--baseline 256]

Builds the QM9 candidate library of the first --shards conformer shards (1,024 structures each
along `sources.qm9_order`; default all 128 = 130,831 structures) for a freshly initialised model
of the profile's size (the weights do not change the cost), saved as a checkpoint:
  1. conformers: the shards missing from <cache-dir>/qm9-conformers, computed with --workers
     processes; shards already there (e.g. the book's build/cache) are reused and said so;
  2. embedding of every structure (`build_library`, conformers now cached);
  3. a later query as `vibraclip identify` runs it (checkpoint, library from its cache, spectrum,
     ranking with a mass or a formula filter), in this process; the imports of a new process are
     timed apart; with all shards also the CLI as a new process. The same in-process query is
     then timed against a synthetic library of all 130,831 rows (random embeddings).
Baseline in the same run: the SMILES route that `--candidates qm9` took before (featurize_many,
ETKDG with retries, then embedding) on the first --baseline QM9 SMILES; the ratio compares the
seconds per structure of both routes. Default --cache-dir: a new temporary folder (a cold start).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `vibraclip identify` does, before torch

import numpy as np
import torch

from vibraclip_core.app.identify import identify
from vibraclip_core.config.profiles import get_config
from vibraclip_core.data import qm9_candidates as Q
from vibraclip_core.data.mass import MassStats, mass_stats_for, write_mass_stats
from vibraclip_core.data.sources import QM9_SIZE
from vibraclip_core.measured.readers import read_spectrum
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.candidates import QM9Candidates, qm9_smiles
from vibraclip_core.retrieval.library import CandidateLibrary
from vibraclip_core.retrieval.library_cache import (QM9_CONFORMER_DIR, build_library, load_library,
                                                    save_library)
from vibraclip_core.training.train import load_model

N_SHARDS = -(-QM9_SIZE // Q.SHARD_SIZE)


def write_checkpoint(run_dir: Path, profile: str) -> Path:
    """A freshly initialised model saved as the dict `train.load_model` reads, with mass stats."""
    torch.manual_seed(0)
    model = VibraCLIP(get_config(profile))
    path = run_dir / "best.ckpt"
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()},
                "hyper_parameters": {"config": model.config.to_dict()}}, path)
    write_mass_stats(run_dir, SimpleNamespace(mass_mean=123.0, mass_std=7.5, key="benchmark"))  # any values
    return path


def write_ir(path: Path) -> Path:
    """A synthetic IR spectrum (Lorentzian bands) as a two-column CSV."""
    x = np.arange(400.0, 4000.0, 2.0)
    y = sum(100.0 / ((x - c) ** 2 + 100.0) for c in (1050.0, 1380.0, 1720.0, 2970.0))
    path.write_text("wavenumber_cm1,absorbance\n" + "".join(f"{a},{b:.6f}\n"
                                                            for a, b in zip(x, y)))
    return path


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run(args: argparse.Namespace, root: Path) -> None:
    cache = Path(args.cache_dir) if args.cache_dir else root / "cache"
    ckpt = write_checkpoint(root / "run", args.profile)
    ir_path = write_ir(root / "query_ir.csv")
    model = load_model(ckpt)
    stats = MassStats(123.0, 7.5)
    seed = model.config.conformer_seed
    n_shards = min(args.shards, N_SHARDS)
    positions = np.arange(min(n_shards * Q.SHARD_SIZE, QM9_SIZE))
    conformer_dir = cache / QM9_CONFORMER_DIR
    cached = sum(Q.shard_file(conformer_dir, seed, s).is_file() for s in range(n_shards))
    print(f"{len(positions):,} QM9 structures ({n_shards} shards, {cached} already cached in "
          f"{conformer_dir}), profile {args.profile} (latent {model.config.latent_dim}), "
          f"{args.workers} conformer workers, {torch.get_num_threads()} torch threads "
          f"(OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}), batch {args.batch_size}; "
          f"load average {os.getloadavg()[0]:.1f}")

    conf_s, s = timed(lambda: Q.load_positions(positions, conformer_dir, seed, args.workers))
    n_new = n_shards - cached
    one_core = float(s.seconds.mean()) * Q.SHARD_SIZE  # one-core s per 1,024 geometries
    if n_new:
        print(f"1. conformers: {n_new} shard(s) computed in {conf_s:.1f} s = "
              f"{conf_s / n_new:.2f} s per 1,024 on {args.workers} workers "
              f"({one_core:.2f} s of one core per 1,024, mean over the shards read)")
    else:
        print(f"1. conformers: all {n_shards} shard(s) reused from the cache, read in "
              f"{conf_s:.2f} s ({one_core:.2f} s of one core per 1,024 when they were computed)")
    print(f"   routes: {dict(s.routes())}")

    candidates = QM9Candidates(positions)
    cpu0 = time.process_time()
    emb_s, lib = timed(lambda: build_library(model, candidates, stats, cache, args.workers,
                                             args.batch_size))
    emb_cpu = time.process_time() - cpu0
    rate = len(lib) / emb_s
    print(f"2. embedding (shards read from the cache): {len(lib):,} in {emb_s:.1f} s = "
          f"{rate:.0f} structures/s ({len(lib) / emb_cpu:.0f} per CPU-second over "
          f"{torch.get_num_threads()} threads)")

    load_s, model = timed(lambda: load_model(ckpt))  # what a later `vibraclip identify` does
    hit_s, again = timed(lambda: build_library(model, candidates, mass_stats_for(ckpt), cache,
                                               progress=False))
    query = read_spectrum(ir_path)
    query_mass = float(np.median(lib.mass_da))  # a mass the library holds
    assert torch.equal(again.graph_emb, lib.graph_emb)
    mass_s, df = timed(lambda: identify(model, again, query, None, mass_da=query_mass, top=25))
    formula = df["formula"].iloc[0]
    formula_s, _ = timed(lambda: identify(model, again, query, None, formula=formula, top=25))
    import_s, _ = timed(lambda: subprocess.run(
        [sys.executable, "-c", "import vibraclip_core.retrieval.library_cache, vibraclip_core.training.train"],
        check=True))
    print(f"3. later query in this process: {load_s + hit_s + mass_s:.2f} s = checkpoint "
          f"{load_s:.2f} s + library from cache {hit_s:.2f} s + identify {mass_s:.3f} s (mass "
          f"filter; formula filter {formula_s:.3f} s); a new process first spends {import_s:.1f} s "
          "on imports")
    if len(positions) == QM9_SIZE:  # the CLI's 'qm9' is all of QM9
        proc_s, proc = timed(lambda: subprocess.run(
            [sys.executable, "-m", "vibraclip_core.app.cli", "identify", "--checkpoint", str(ckpt),
             "--ir", str(ir_path), "--candidates", "qm9", "--cache-dir", str(cache), "--mass",
             str(query_mass)], capture_output=True, text=True))
        if proc.returncode:
            raise SystemExit(proc.stderr)
        print(f"   `vibraclip identify --candidates qm9` as a new process: {proc_s:.2f} s")

    # the same later query at full size, on a synthetic library of 130,831 rows
    reps = -(-QM9_SIZE // len(lib))
    full = CandidateLibrary((lib.smiles * reps)[:QM9_SIZE], (lib.identity * reps)[:QM9_SIZE],
                            np.tile(lib.mass_da, reps)[:QM9_SIZE],
                            (lib.formula * reps)[:QM9_SIZE],
                            graph_emb=torch.randn(QM9_SIZE, model.config.latent_dim),
                            mass_stats=stats,
                            model_digest=lib.model_digest)
    path = root / "library-synthetic.safetensors"
    save_library(path, full, QM9_SIZE)
    read_s, full = timed(lambda: load_library(path, model, stats, lib.model_digest))
    full_m, _ = timed(lambda: identify(model, full, query, None, mass_da=query_mass, top=25))
    full_f, _ = timed(lambda: identify(model, full, query, None, formula=formula, top=25))
    print(f"   at {QM9_SIZE:,} candidates (synthetic): {load_s + read_s + full_m:.2f} s = "
          f"checkpoint {load_s:.2f} s + library from cache {read_s:.2f} s + identify "
          f"{full_m:.3f} s (formula filter {full_f:.3f} s)")

    if args.baseline:  # the route `--candidates qm9` took before, with its batch of 256
        smiles = qm9_smiles()[:args.baseline]
        with tempfile.TemporaryDirectory() as base_cache:
            base_s, base = timed(lambda: build_library(model, smiles, stats, base_cache,
                                                       args.workers, 256, progress=False))
        per_base = base_s / len(smiles)
        per_new = (conf_s / (n_new * Q.SHARD_SIZE) if n_new else 0.0) + emb_s / len(lib)
        conformers = "conformers computed" if n_new else "conformers cached"
        print(f"baseline, the SMILES route (ETKDG with retries, batch 256): {len(base)} of "
              f"{len(smiles)} in {base_s:.1f} s = {per_base * 1e3:.1f} ms per structure; QM9 "
              f"route {per_new * 1e3:.1f} ms per structure ({conformers} + embedding): "
              f"{per_base / per_new:.2f}x faster")

    conf_min = (conf_s / n_new * N_SHARDS if n_new else
                one_core * N_SHARDS / max(1, args.workers)) / 60
    emb_min = QM9_SIZE / rate / 60
    ideal_min = one_core * N_SHARDS / max(1, args.workers) / 60
    print(f"all of QM9 ({QM9_SIZE:,}) at this run's speed, first query ≈ "
          f"{conf_min + emb_min:.1f} min = conformers {conf_min:.1f} min "
          f"({'this run' if n_new else 'cached one-core time'} per shard x {N_SHARDS}) + "
          f"embedding {emb_min:.1f} min; with all conformers cached (the book's) ≈ "
          f"{emb_min:.1f} min. Conformers on {args.workers} idle cores ≈ {ideal_min:.1f} min "
          "(one-core time / workers)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=N_SHARDS)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--baseline", type=int, default=256,
                        help="QM9 SMILES through the old SMILES route (0: skip)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as root:
        run(args, Path(root))


if __name__ == "__main__":
    main()
