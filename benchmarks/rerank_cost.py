"""What re-ranking costs `vibraclip identify`: a first query over uncached candidates, a repeated
query, and the model alone, each as a new `vibraclip identify` process (end to end, imports
included), side by side in one run.

Usage: python benchmarks/rerank_cost.py [--n 100] [--workers 2] [--molecule acetone]
    [--embedded 1000]

The query is a measured IR spectrum of the jcamp sdist (`make experimental`); the candidates are
the measured molecule and n - 1 QM9 molecules outside every embedded data set, so none has a
simulated spectrum yet (the first query simulates all of them into a new cache folder). Printed:
the wall time of each run, the simulator's seconds per molecule (from the cache files) beside the
model's seconds per candidate, and the ratios. Then the shipped default over `--embedded`
candidates whose spectra are in the embedded shards (the measured molecule and molecules of
`data/qm9_gfn2`): every one of them is matched, and none is simulated, first query or repeated.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rdkit.Chem import Descriptors

from vibraclip_core.data.molecules import canonical_identity, mol_from_smiles
from vibraclip_core.data.sources import load_qm9_source, qm9_order
from vibraclip_core.measured.experimental import fetch_jcamp_spectra, load_mapping
from vibraclip_core.config.profiles import EMBEDDED_DATA_DIR
from vibraclip_core.data.datasets import load_sticks
from vibraclip_core.retrieval.candidate_spectra import SPECTRA_CACHE_DIR, embedded_sticks


def run(args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vibraclip_core.app.cli", "identify", *args],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return time.perf_counter() - t0, done.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100, help="candidates re-ranked")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--molecule", default="acetone", help="a name of the measured-IR table")
    p.add_argument("--embedded", type=int, default=1000,
                   help="candidates with embedded spectra for the shipped default")
    a = p.parse_args()
    table = load_mapping()
    row = table[table.name == a.molecule].iloc[0]
    query = fetch_jcamp_spectra() / row.file
    known = set(embedded_sticks())
    order = qm9_order()[20_000:20_000 + 4 * a.n]  # beyond the embedded set's positions
    source = load_qm9_source({int(i) for i in order})
    fresh = [source[int(i)].smiles for i in order
             if canonical_identity(source[int(i)].smiles) not in known][:a.n - 1]
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib.smi"
        lib.write_text("\n".join([row.smiles, *fresh]) + "\n")
        # the shipped model is mass-anchored: the query's mass, with a tolerance that keeps
        # every candidate (the cost of re-ranking all n is what is measured)
        mass = Descriptors.MolWt(mol_from_smiles(row.smiles))
        common = ["--ir", str(query), "--candidates", str(lib), "--cache-dir", tmp,
                  "--workers", str(a.workers), "--top", "5", "--mass", f"{mass:.3f}",
                  "--mass-tol", "1000"]
        t_model, _ = run([*common, "--rerank", "0"])  # builds the library's embeddings
        t_model2, _ = run([*common, "--rerank", "0"])
        t_first, out = run([*common, "--rerank", str(a.n)])
        t_again, _ = run([*common, "--rerank", str(a.n)])
        files = sorted((Path(tmp) / SPECTRA_CACHE_DIR).rglob("*.npz"))
        secs = np.array([float(np.load(f)["seconds"]) for f in files])
        sim = secs[secs > 0]
        embedded = [row.smiles, *load_sticks(EMBEDDED_DATA_DIR).ok().smiles[:a.embedded - 1]]
        lib2 = Path(tmp) / "embedded.smi"
        lib2.write_text("\n".join(embedded) + "\n")
        both = [*common[:2], "--candidates", str(lib2), *common[4:]]
        t_emb_first, out_emb = run(both)  # the shipped default: builds the library, fuses all
        t_emb_again, out_emb2 = run(both)
    print(out)
    print(f"candidates: {a.n} ({len(sim)} simulated, {len(files)} cached spectra); workers "
          f"{a.workers}")
    print(f"model alone, first query (library embedded): {t_model:6.1f} s")
    print(f"model alone, repeated query:                 {t_model2:6.1f} s")
    print(f"re-ranked, first query (simulations):       {t_first:6.1f} s")
    print(f"re-ranked, repeated query (all cached):     {t_again:6.1f} s")
    print(f"simulator: {np.median(sim):.2f} s per molecule per core (median; mean "
          f"{sim.mean():.2f}); model: {t_model / a.n:.3f} s per candidate (first query, "
          f"imports included) -> simulator / model = {np.median(sim) / (t_model / a.n):.0f}x")
    fused = [ln for ln in out_emb2.splitlines() if ln.startswith(("fused:", "re-ranked:"))]
    print(f"shipped default over {len(embedded)} candidates with embedded spectra: first query "
          f"(library embedded) {t_emb_first:6.1f} s, repeated {t_emb_again:6.1f} s "
          f"({t_emb_again / t_model2:.2f}x the model alone on {a.n})")
    print(fused[0] if fused else out_emb2)
    print(f"re-ranking adds {t_first - t_model2:.1f} s to a first query and "
          f"{t_again - t_model2:.1f} s to a repeated one (ratio repeated/model alone "
          f"{t_again / t_model2:.2f})")


if __name__ == "__main__":
    main()
