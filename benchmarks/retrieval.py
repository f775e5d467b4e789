"""Chunked rank/top-k retrieval vs the bare matmul + topk limit vs the reference's dict sort.

Usage: python benchmarks/retrieval.py [--n 13000] [--dim 861] [--k 25] [--chunk 256] [--ref-n 500]
                                      [--threads 1]

Seeded random embeddings: query i is library row i plus Gaussian noise, so row i is its truth.
(a) ours: `rank_of_truth` (identity mapping included) and `topk_chunked`, normalisation included;
(b) bare limit: one float32 matrix product of pre-normalised rows + `torch.topk`, nothing else;
(c) reference: per query, numpy cosines -> {smiles: score} dict -> sorted() -> position of the
    truth, as the published callback does; timed on the first --ref-n queries and extrapolated
    linearly to n (its cost per query does not depend on which query it is).
Each path is timed --repeats times and the fastest is kept. Ours is checked against a full-matrix
stable argsort on the first --ref-n queries (top-k indices and ranks must be identical).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from vibraclip_core.retrieval.scores import CHUNK, normalize, rank_of_truth, topk_chunked


def best_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def reference_ranks(query: np.ndarray, library: np.ndarray, ids: list[str]) -> list[int]:
    """The reference's per-query loop: {id: score} dict, sorted by value, the truth's position."""
    lib_norms = np.linalg.norm(library, axis=1)
    ranks = []
    for i, vec in enumerate(query):
        sims = np.dot(library, vec) / (lib_norms * np.linalg.norm(vec))
        candidates = {key: float(s) for key, s in zip(ids, sims)}
        ordered = dict(sorted(candidates.items(), key=lambda item: item[1], reverse=True))
        ranks.append(list(ordered).index(ids[i]))
    return ranks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=13000)
    parser.add_argument("--dim", type=int, default=861)
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--chunk", type=int, default=CHUNK)
    parser.add_argument("--noise", type=float, default=8.0,
                        help="noise std per dim (rows are N(0, 1))")
    parser.add_argument("--ref-n", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    library = torch.randn(args.n, args.dim, generator=gen)
    query = library + args.noise * torch.randn(args.n, args.dim, generator=gen)
    ids = [f"mol{i:06d}" for i in range(args.n)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"n={args.n} dim={args.dim} k={args.k} chunk={args.chunk} torch threads="
          f"{torch.get_num_threads()} cpus={os.cpu_count()} load(1 min)={load:.2f}")

    qn, ln = normalize(query), normalize(library)

    def bare() -> tuple[torch.Tensor, torch.Tensor]:
        return torch.topk(qn @ ln.T, args.k, dim=1)

    t_bare, _ = best_time(bare, args.repeats)
    t_rank, ranks = best_time(lambda: rank_of_truth(query, library, ids, ids, args.chunk),
                              args.repeats)
    t_topk, (_, top_idx) = best_time(lambda: topk_chunked(query, library, args.k, args.chunk),
                                     args.repeats)
    m = min(args.ref_n, args.n)
    t_ref_sub, ref = best_time(lambda: reference_ranks(query[:m].numpy(), library.numpy(), ids), 1)
    t_ref = t_ref_sub * args.n / m

    full = qn[:m] @ ln.T
    order = torch.argsort(full, dim=1, descending=True, stable=True)
    naive_ranks = (order == torch.arange(m)[:, None]).nonzero()[:, 1]
    same_topk = torch.equal(top_idx[:m], order[:, : args.k])
    same_rank = torch.equal(ranks[:m], naive_ranks)
    ref_agree = int((ranks[:m] == torch.tensor(ref)).sum())

    print(f"{'path':<58}{'seconds':>10}")
    print(f"{'(b) bare limit: one matmul + topk (pre-normalised)':<58}{t_bare:>10.2f}")
    print(f"{'(a) ours: rank_of_truth':<58}{t_rank:>10.2f}")
    print(f"{'(a) ours: topk_chunked':<58}{t_topk:>10.2f}")
    print(f"{f'(c) reference dict+sort loop, {m} queries measured':<58}{t_ref_sub:>10.2f}")
    print(f"{f'(c) reference extrapolated linearly to {args.n} queries':<58}{t_ref:>10.2f}")
    print(f"ratio ours/bare: rank {t_rank / t_bare:.2f}x, top-k {t_topk / t_bare:.2f}x "
          f"(target <= 1.2x)")
    print(f"ratio reference/ours (rank): {t_ref / t_rank:.0f}x (reference extrapolated)")
    print(f"check on first {m} queries vs full-matrix stable argsort: top-{args.k} identical="
          f"{same_topk}, ranks identical={same_rank}; reference loop agrees on {ref_agree}/{m}")
    print(f"top-1 {float((ranks == 0).float().mean()):.3f}, top-{args.k} "
          f"{float((ranks < args.k).float().mean()):.3f} (noise {args.noise})")
    if not (same_topk and same_rank):
        raise SystemExit("chunked results differ from the full-matrix argsort")


if __name__ == "__main__":
    main()
