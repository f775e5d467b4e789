"""Chapter 1's computations: the molecules it describes, its functional-group examples and the
test molecules whose model inputs it draws."""

from __future__ import annotations

import numpy as np

from vibraclip_core.data import datastats
from vibraclip_core.data.datasets import PreparedData, StickSet
from vibraclip_core.experiments.plots import BAND_WINDOWS

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
