"""Chapter 1's computations: the molecules it describes, its functional-group examples and the
test molecules whose model inputs it draws."""

from __future__ import annotations

import time

import numpy as np

from vibraclip_core.config.profiles import Config
from vibraclip_core.data import datastats
from vibraclip_core.data.datasets import PreparedData, StickSet
from vibraclip_core.experiments.library_size import max_library_size
from vibraclip_core.experiments.plots import BAND_WINDOWS
from vibraclip_core.retrieval.distractors import load_distractors

# SMARTS of the three groups whose bands the chapter shows
FUNCTIONAL_GROUPS = {"carbonyl": "[CX3]=[OX1]", "nitrile": "[CX2]#[NX1]",
                     "alcohol": "[CX4][OX2H1]"}


def chapter_sticks(sticks_all: StickSet, n_molecules: int | None) -> StickSet:
    """The successful molecules the chapter describes: all, or the first `n_molecules`."""
    sticks = sticks_all.ok()
    if n_molecules is None:
        return sticks
    return sticks.select(np.arange(min(n_molecules, len(sticks))))


def example_spectra(sticks: StickSet) -> dict[str, tuple]:
    """{group: (SMILES, wavenumbers cm-1, IR km/mol, Raman)} of one molecule per group of
    FUNCTIONAL_GROUPS whose band stands out in its window (`datastats.find_examples`)."""
    found = datastats.find_examples(sticks, FUNCTIONAL_GROUPS, BAND_WINDOWS)
    return {k: (sticks.smiles[m], *sticks.sticks(m)) for k, m in found.items()}


def first_test_molecules(data: PreparedData, n: int = 3) -> tuple[list[int], list[str]]:
    """(rows, SMILES) of the first `n` test molecules."""
    rows = [int(data.splits["test"][k]) for k in range(n)]
    return rows, [data.smiles[r] for r in rows]


def distractor_structures(config: Config, data: PreparedData) -> str:
    """Compute (or find in the build cache) the conformers of the QM9 distractors that the
    largest library of Chapters 2-5 needs, with all `config.workers`; returns what was done.
    Chapters 2-5 then read them from the cache while they train side by side."""
    n_test = len(data.splits["test"])
    largest = min(max((*config.library_curve_sizes, config.library_size)),
                  max_library_size(data))
    t0 = time.perf_counter()
    distractors = load_distractors(data, largest - n_test, config.build_dir,
                                   config.conformer_seed, workers=config.workers, progress=False)
    names = {"etkdg": "ETKDG conformers", "b3lyp": "QM9 B3LYP geometries (ETKDG failed)"}
    routes = ", ".join(f"{n:,} {names.get(route, route)}"
                       for route, n in distractors.route_counts().items())
    workers = f"{config.workers} worker process{'es' if config.workers > 1 else ''}"
    return (f"The largest library of Chapters 2–5 holds {largest:,} candidates: the "
            f"{n_test:,} test structures and {len(distractors):,} QM9 molecules outside the "
            f"embedded set as **distractors** ({routes}). This run took "
            f"{time.perf_counter() - t0:.0f} s for them ({workers}; structures computed once "
            "are read from the build cache), so the chapters that train side by side only read "
            "them.")
