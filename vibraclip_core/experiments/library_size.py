"""Retrieval against libraries larger than the test split: the test structures plus QM9 distractors.

The structure-only scores (one spectrum, or the IR + Raman library score) need no spectra for the
candidates, so a test query can be ranked against the test split's structures plus any number of
QM9 molecules outside the prepared data (`qm9_candidates.distractor_positions`). Libraries are
nested: the library of size N is the test split followed by the first N - n_test distractors, so
accuracy against N is a curve. Scores that need candidates' spectra (the paper's eq. 6) exist only
for the test split itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from vibraclip_core.config.choices import PAPER_LIBRARY_SIZE
from vibraclip_core.config.loss_modes import uses_raman
from vibraclip_core.config.profiles import Config
from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.data.molecules import MoleculeError, morgan_fingerprints
from vibraclip_core.data.qm9_candidates import distractor_positions
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval import scores as R
from vibraclip_core.retrieval.baselines import Baseline
from vibraclip_core.retrieval.distractors import Distractors, embed_distractors, load_distractors
from vibraclip_core.retrieval.embedding import embed_spectra
from vibraclip_core.retrieval.evaluate import Evaluation, evaluate_ranks
from vibraclip_core.retrieval.library import CandidateLibrary


def max_library_size(data: PreparedData) -> int:
    """Largest library: the test split plus every other QM9 molecule (130,831 in all)."""
    return len(data.splits["test"]) + len(distractor_positions(
        data.index.numpy(), data.index[data.splits["test"]].numpy()))


def library_evaluations(library_emb: torch.Tensor, queries: dict[str, torch.Tensor],
                        library_ids: Sequence[str], query_ids: Sequence[str],
                        sizes: Sequence[int], library_mass_da: np.ndarray | None = None,
                        query_mass_da: np.ndarray | None = None,
                        mass_tol_da: float | None = None, kmax: int = 25, n_boot: int = 1000,
                        seed: int = 0) -> dict[int, Evaluation]:
    """Evaluation per library size N: queries ranked against the first N library rows.

    library_emb (N_max, d) structure embeddings (the query molecules first); queries maps "ir"
    and/or "raman" to (q, d). Modes: "ir", "raman", and "ir+raman library" when both are given.
    With `mass_tol_da`, candidates outside ±mass_tol_da of the query's mass are masked out.
    """
    if len(library_ids) != len(library_emb):
        raise ValueError(f"{len(library_ids)} library ids for {len(library_emb)} embeddings")
    out = {}
    for n in sizes:
        if not len(query_ids) <= n <= len(library_emb):
            raise ValueError(f"library size {n} must lie in {len(query_ids)}.."
                             f"{len(library_emb)} (the queries' own structures come first)")
        lib = library_emb[:n]
        scorers = R.mode_scorers(lib, queries)
        mask = None
        if mass_tol_da is not None:
            if library_mass_da is None or query_mass_da is None:
                raise ValueError("mass_tol_da needs library_mass_da and query_mass_da")
            mask = R.mass_filter(np.asarray(query_mass_da), np.asarray(library_mass_da)[:n],
                                 mass_tol_da)
        ranks = {mode: R.rank_of_truth_scored(fn, list(query_ids), list(library_ids[:n]),
                                              mask=mask) for mode, fn in scorers.items()}
        out[n] = evaluate_ranks(ranks, kmax, n_boot, seed)
    return out


@dataclass
class LibraryRun:
    """A model's test queries and its embedded library (test structures first, then
    distractors)."""

    library: CandidateLibrary
    queries: dict[str, torch.Tensor]
    query_ids: list[str]
    query_mass_da: np.ndarray
    distractors: Distractors
    # wall seconds this call spent on conformers (computing missing cache shards) and on embedding
    # distractors not in the embedding cache, and how many it embedded
    seconds: dict[str, float] = field(default_factory=dict)

    def evaluate(self, sizes: Sequence[int], mass_tol_da: float | None = None,
                 n_boot: int = 1000, seed: int = 0) -> dict[int, Evaluation]:
        """`library_evaluations` of this run at `sizes`."""
        lib = self.library
        return library_evaluations(lib.graph_emb, self.queries, lib.identity, self.query_ids,
                                   sizes, lib.mass_da, self.query_mass_da, mass_tol_da,
                                   n_boot=n_boot, seed=seed)


def library_run(model: VibraCLIP, data: PreparedData, max_size: int, build_dir: str | Path,
                conformer_seed: int, workers: int = 1, progress: bool = True,
                query_mass_offset_da: float = 0.0) -> LibraryRun:
    """Embed the test split's queries and a library of up to `max_size` structures."""
    test = data.splits["test"]
    n_test = len(test)
    max_size = min(max_size, max_library_size(data))
    t0 = time.perf_counter()
    distractors = load_distractors(data, max(0, max_size - n_test), build_dir, conformer_seed,
                                   workers, progress)
    t1 = time.perf_counter()
    own = CandidateLibrary.from_rows(data, test).embed(model, build_dir)
    emb = embed_spectra(model, data, test, query_mass_offset_da=query_mass_offset_da)
    t2 = time.perf_counter()
    others, n_new = embed_distractors(model, data, distractors, build_dir, conformer_seed,
                                      progress=progress)
    seconds = {"conformers": t1 - t0, "embedding": time.perf_counter() - t2,
               "n_embedded": float(n_new)}
    return LibraryRun(
        CandidateLibrary.concat([own, others]),
        {"ir": emb["ir"], "raman": emb["raman"]} if uses_raman(model.config.loss)
        else {"ir": emb["ir"]},
        list(own.identity), own.mass_da.astype(np.float64), distractors, seconds)


def cost_of(run: LibraryRun, size: int, workers: int) -> dict[str, float]:
    """Estimated wall minutes to extend `run` to a library of `size`: conformers (the mean
    one-core seconds per cached geometry, over `workers` processes) and embedding (this run's
    seconds per embedded distractor; NaN when it embedded none)."""
    extra = max(0, size - len(run.library))
    sec = run.distractors.structures.seconds
    per_conf = float(sec.mean()) if sec is not None and len(sec) else float("nan")
    n_new = run.seconds.get("n_embedded", 0.0)
    per_emb = run.seconds["embedding"] / n_new if n_new else float("nan")
    return {"molecules": float(extra), "conformers_min": extra * per_conf / max(1, workers) / 60,
            "embedding_min": extra * per_emb / 60}


def cost_text(run: LibraryRun, n_all: int, workers: int, profile: str) -> str:
    """Chapter 2's sentence on what the distractors cost in this run and what all of QM9
    (`n_all` structures) would add (`cost_of`)."""
    rest, sec = cost_of(run, n_all, workers), run.seconds
    measured = sec.get("n_embedded", 0) > 0
    text = (f"Cost in this run: {sec['conformers'] / 60:.1f} min for the distractors' conformers "
            "(computed once per conformer seed and cached under the build folder for every model "
            f"and chapter) and {sec['embedding'] / 60:.1f} min to embed "
            f"{int(sec['n_embedded']):,} of them with this model. " if measured else
            "The conformers and this model's distractor embeddings came from the caches of an "
            "earlier run; execute the chapter with an empty build folder to time them. ")
    if rest["molecules"] == 0:
        return text + "This run reached all of QM9."
    return (text + f"All of QM9 ({n_all:,} structures) would add about "
            f"{rest['conformers_min']:.0f} min of conformers"
            + (f" and {rest['embedding_min']:.0f} min of embedding" if measured else "")
            + f" on this machine for the other {int(rest['molecules']):,} structures; the "
            f"`{profile}` profile stops its curve at {len(run.library):,} candidates to keep "
            "the whole book well inside its hour on 2 CPU cores, and the `paper` profile runs "
            "every size.")


def size_label(n: int, n_test: int, n_all: int | None = None) -> str:
    """Column label of a library size: 'test split: 1,123 candidates', '12,741 candidates (the
    paper's size)', '130,831 candidates (all of QM9)' (n == n_all) or '40,000 candidates'."""
    if n == n_test:
        return f"test split: {n:,} candidates"
    extra = (" (the paper's size)" if n == PAPER_LIBRARY_SIZE else
             " (all of QM9)" if n == n_all else "")
    return f"{n:,} candidates{extra}"


def size_frame(evaluations: dict[str, dict[int, Evaluation]],
               ks: Sequence[int] = (1, 5, 10, 25)) -> pd.DataFrame:
    """Tidy table: one row per (setting, library size, query mode) with top-k in %."""
    rows = []
    for setting, by_size in evaluations.items():
        for n, ev in by_size.items():
            for mode, r in ev.table.iterrows():
                rows.append({"setting": setting, "library size": n, "query": mode,
                             **{f"top{k} %": round(float(r[f"top{k}"]), 1) for k in ks}})
    return pd.DataFrame(rows)


def evaluate_library(model: VibraCLIP, data: PreparedData, config: Config,
                     size: int | None = None, mass_tol_da: float | None = None,
                     query_mass_offset_da: float = 0.0, n_boot: int = 1000) -> Evaluation:
    """The test split's queries ranked against `size` candidates (default `config.library_size`,
    capped at all of QM9): the structure-only modes of `evaluate`, same bootstrap."""
    size = min(size or config.library_size, max_library_size(data))
    run = library_run(model, data, size, config.build_dir, config.conformer_seed, config.workers,
                      progress=False, query_mass_offset_da=query_mass_offset_da)
    return run.evaluate([max(size, len(run.query_ids))], mass_tol_da, n_boot,
                        config.seed)[max(size, len(run.query_ids))]


def _fingerprints(smiles: Sequence[str], n_bits: int) -> np.ndarray:
    """(n, n_bits) float32 Morgan bits; all-zero rows for SMILES RDKit cannot read (they stay in
    the library as candidates that match nothing)."""
    out = np.zeros((len(smiles), n_bits), dtype=np.float32)
    for i, s in enumerate(smiles):
        try:
            out[i] = morgan_fingerprints([s], n_bits)[0]
        except MoleculeError:
            pass
    return out


def evaluate_baselines_library(baselines: dict[str, Baseline], data: PreparedData,
                               config: Config, prefix: str, size: int | None = None,
                               n_bits: int = 2048) -> Evaluation:
    """Baselines ranked against `size` candidates (default `config.library_size`): `baselines`
    maps a mode ("ir", "raman", "ir+raman library") to the fitted or seeded baseline scoring it;
    the Evaluation's modes are named prefix + mode."""
    test = data.splits["test"]
    size = max(min(size or config.library_size, max_library_size(data)), len(test))
    distractors = load_distractors(data, size - len(test), config.build_dir,
                                   config.conformer_seed, config.workers, progress=False)
    query_ids = [data.identity[int(i)] for i in test]
    fp = _fingerprints([data.smiles[int(i)] for i in test] + distractors.structures.smiles,
                       n_bits)
    ranks = {}
    for mode, baseline in baselines.items():
        lib = baseline.embed_fingerprints(fp)
        queries = {"ir": baseline.embed_ir(data.ir[test]),
                   "raman": baseline.embed_raman(data.raman[test])} if mode.startswith(
            "ir+raman") else {mode: getattr(baseline, f"embed_{mode}")(getattr(data, mode)[test])}
        ev = library_evaluations(lib, queries, query_ids + distractors.structures.identity,
                                 query_ids, [size], n_boot=10)[size]
        ranks[prefix + mode] = ev.ranks[mode]
    return evaluate_ranks(ranks, seed=config.seed)


def curve_sizes(run: LibraryRun, sizes: Sequence[int]) -> list[int]:
    """The test split's size, then each of `sizes` that this run's library can hold, ascending."""
    n_test, n_max = len(run.query_ids), len(run.library)
    return sorted({n_test, *(n for n in sizes if n_test < n <= n_max)})


def library_curve(run: LibraryRun, sizes: Sequence[int], mass_tol_da: float,
                  n_boot: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """(tidy top-k table, {setting: {size: Evaluation}}) at `curve_sizes(run, sizes)`, without
    and with the ±mass_tol_da filter (settings "no filter", "±<tol> Da mass filter")."""
    ns = curve_sizes(run, sizes)
    evaluations = {"no filter": run.evaluate(ns, None, n_boot, seed),
                   f"±{mass_tol_da:g} Da mass filter": run.evaluate(ns, mass_tol_da, n_boot,
                                                                     seed)}
    return size_frame(evaluations), evaluations
