"""The retrieval gallery (the paper's Fig. 4) and what wrong candidates share with the target.

`retrievals` ranks a library for chosen queries; `plot_retrieval` draws one query: the target
structure with its spectra, then its top-K candidates with RDKit, each labelled with its score,
the correct one framed in green. `similarity_to_target` measures, over all queries, how often the
top candidates share the target's formula or functional groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from rdkit import Chem
from rdkit.Chem import Draw

from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.data.molecules import mol_from_smiles, molecular_formula
from vibraclip_core.data.spectra import model_grid
from vibraclip_core.experiments import realign as RA
from vibraclip_core.measured.experimental import MeasuredIR
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval import scores as R
from vibraclip_core.retrieval.embedding import embed_spectra
from vibraclip_core.retrieval.library import CandidateLibrary, unique_rows

# functional groups used to describe what candidates share with the target (SMARTS)
GROUPS = {
    "carbonyl": "[CX3]=[OX1]", "hydroxyl": "[OX2H]", "ether": "[OD2]([#6])[#6]",
    "nitrile": "[CX2]#[NX1]", "amine": "[NX3;!$(N-C=[O,N])]", "amide": "[NX3][CX3]=[OX1]",
    "aromatic ring": "a1aaaaa1", "alkene": "[CX3]=[CX3]", "alkyne": "[CX2]#[CX2]",
    "fluorine": "[F]", "three-membered ring": "[r3]",
}
_PATTERNS = {k: Chem.MolFromSmarts(v) for k, v in GROUPS.items()}


def functional_groups(smiles: str) -> frozenset[str]:
    """Names of the GROUPS present in a molecule."""
    mol = mol_from_smiles(smiles)
    return frozenset(k for k, p in _PATTERNS.items() if mol.HasSubstructMatch(p))


@dataclass
class Retrieval:
    """Top-k candidates of each query: library indices, scores, and whether each is correct."""

    query_rows: list[int]
    index: torch.Tensor  # (q, k) library indices, best first
    score: torch.Tensor  # (q, k)
    correct: torch.Tensor  # (q, k) bool
    rank: torch.Tensor  # (q,) 0-based rank of the truth (see retrieval.rank_of_truth_scored)


def retrievals(score_fn: R.ScoreFn, n_queries: int, query_ids: Sequence[str],
               library_ids: Sequence[str], k: int = 25) -> Retrieval:
    """Top-k of every query (scores from `score_fn`, e.g. `scores.library_scorer`)."""
    score, index = R.topk_scored(score_fn, n_queries, k)
    lib = np.asarray(library_ids, dtype=object)
    correct = torch.from_numpy(lib[index.numpy()] == np.asarray(query_ids, dtype=object)[:, None])
    rank = R.rank_of_truth_scored(score_fn, list(query_ids), list(library_ids))
    return Retrieval(list(range(n_queries)), index, score, correct, rank)


def pick_queries(rank: torch.Tensor, n_hits: int, n_misses: int, seed: int = 0) -> list[int]:
    """A seeded sample of query positions: `n_hits` found first and `n_misses` that were not
    (fewer when there are not enough of either), hits first."""
    rng = np.random.default_rng(seed)
    hits, misses = np.flatnonzero(rank.numpy() == 0), np.flatnonzero(rank.numpy() > 0)
    take = lambda a, n: sorted(rng.choice(a, size=min(n, len(a)), replace=False).tolist())
    return take(hits, n_hits) + take(misses, n_misses)


def similarity_to_target(ret: Retrieval, query_smiles: Sequence[str],
                         library_smiles: Sequence[str], k: int = 5) -> pd.DataFrame:
    """Over all queries: the share of the top-k candidates that are not the target but share
    its molecular formula (isomers), its exact set of functional groups, or at least one group."""
    formula = {}
    groups = {}

    def info(smiles: str) -> tuple[str, frozenset[str]]:
        if smiles not in formula:
            formula[smiles] = molecular_formula(mol_from_smiles(smiles))
            groups[smiles] = functional_groups(smiles)
        return formula[smiles], groups[smiles]

    same_formula = same_groups = any_group = total = 0
    for q in range(len(ret.query_rows)):
        f0, g0 = info(query_smiles[q])
        for j in range(min(k, ret.index.shape[1])):
            if bool(ret.correct[q, j]) or int(ret.index[q, j]) < 0:
                continue
            f, g = info(library_smiles[int(ret.index[q, j])])
            total += 1
            same_formula += f == f0
            same_groups += g == g0
            any_group += bool(g & g0) or (not g and not g0)
    share = lambda n: 100.0 * n / total if total else float("nan")
    return pd.DataFrame({
        "share of wrong top-%d candidates / %%" % k: [share(same_formula), share(same_groups),
                                                      share(any_group)]},
        index=["same molecular formula (isomer)", "same set of functional groups",
               "at least one functional group in common"]).round(1)


def plot_retrieval(target_smiles: str, ir: np.ndarray | None, raman: np.ndarray | None,
                   candidates: Sequence[str], scores: Sequence[float], correct: Sequence[bool],
                   title: str = "", per_row: int = 5) -> plt.Figure:
    """Target (structure + spectra) on top, then the candidates in rows of `per_row`, each with
    rank and score; correct ones framed in green."""
    n = len(candidates)
    rows = int(np.ceil(n / per_row))
    fig = plt.figure(figsize=(2.2 * per_row, 2.3 * (rows + 1.3)))
    grid = fig.add_gridspec(rows + 1, per_row, height_ratios=[1.3] + [1] * rows)
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(Draw.MolToImage(Chem.RemoveHs(mol_from_smiles(target_smiles)), size=(300, 300)))
    ax.set_title("target", fontsize=9)
    ax.axis("off")
    spec = fig.add_subplot(grid[0, 1:])
    x = model_grid()
    for y, label, color in ((ir, "IR", "tab:red"), (raman, "Raman", "tab:blue")):
        if y is not None:
            spec.plot(x, y, lw=0.8, color=color, label=label)
    spec.set_xlabel("wavenumber / cm$^{-1}$", fontsize=8)
    spec.set_yticks([])
    spec.legend(fontsize=7)
    spec.set_title(title, fontsize=9)
    for j, (smi, s, ok) in enumerate(zip(candidates, scores, correct)):
        a = fig.add_subplot(grid[1 + j // per_row, j % per_row])
        a.imshow(Draw.MolToImage(Chem.RemoveHs(mol_from_smiles(smi)), size=(220, 220)))
        a.set_xticks([])
        a.set_yticks([])
        for side in a.spines.values():
            side.set_edgecolor("tab:green" if ok else "0.8")
            side.set_linewidth(3 if ok else 0.8)
        a.set_title(f"{j + 1}. {s:.3f}", fontsize=8, color="tab:green" if ok else "black")
    fig.tight_layout()
    return fig


@dataclass
class MeasuredGallery:
    """Measured IR queries ranked against a library; `chosen` is the seeded sample to draw."""

    names: list[str]
    smiles: list[str]
    ir: torch.Tensor  # (n_queries, 1750) model input
    library_smiles: list[str]
    ret: Retrieval
    chosen: list[int]

    def plot(self, q: int) -> plt.Figure:
        """The `plot_retrieval` panel of query q (IR only)."""
        return plot_retrieval(
            self.smiles[q], self.ir[q].numpy(), None,
            [self.library_smiles[int(i)] for i in self.ret.index[q]],
            self.ret.score[q].tolist(), self.ret.correct[q].tolist(),
            f"measured: {self.names[q]}, true molecule at rank {int(self.ret.rank[q]) + 1}")


def measured_ir_gallery(model: VibraCLIP, data: PreparedData, records: Sequence[MeasuredIR],
                        checkpoint: str, build_dir: str, k: int, n: int, seed: int = 0,
                        conformer_seed: int = 0) -> MeasuredGallery:
    """Each measured IR spectrum (cosine to graph embeddings) against `data`'s structures plus
    the measured molecules not among them, top `k`; a seeded sample of `n` queries to draw.
    Records whose molecule cannot be featurized are left out (realign.measured_data)."""
    measured, dropped = RA.measured_data(records, seed=conformer_seed)
    measured = RA.with_mass_stats(measured, checkpoint)
    names = [r.name for r in records if r.file not in dropped]
    library = CandidateLibrary.concat([
        CandidateLibrary.from_rows(data),
        CandidateLibrary.from_rows(measured, unique_rows(measured, set(data.identity)))
    ]).embed(model, build_dir)
    q_ir = embed_spectra(model, measured, torch.arange(len(measured)))["ir"]
    ret = retrievals(R.cosine_scorer(q_ir, library.graph_emb), len(measured), measured.identity,
                     library.identity, k)
    chosen = sorted(np.random.default_rng(seed).choice(
        len(measured), min(n, len(measured)), replace=False).tolist())
    return MeasuredGallery(names, list(measured.smiles), measured.ir, library.smiles, ret, chosen)
