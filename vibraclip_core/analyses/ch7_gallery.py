"""Chapter 7's gallery of the test split: every test molecule's IR + Raman query ranked against
the test split's structures (library score), and a seeded sample of hits and misses to draw."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd

from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.experiments import gallery as G
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval import scores as R
from vibraclip_core.retrieval.embedding import embed_split


@dataclass
class SplitGallery:
    """Top-k retrievals of the test split's queries (`gallery.Retrieval`) and the queries to
    draw (positions in the split)."""

    data: PreparedData
    smiles: list[str]  # the split's molecules, in split order (queries and library alike)
    ret: G.Retrieval
    picks: list[int]

    @property
    def top1_percent(self) -> float:
        """Share of queries whose molecule is ranked first, in %."""
        return 100 * float((self.ret.rank == 0).float().mean())

    def plot(self, q: int) -> plt.Figure:
        """The `gallery.plot_retrieval` panel of query q: its spectra and top-k candidates."""
        m = int(self.data.splits["test"][q])
        return G.plot_retrieval(
            self.smiles[q], self.data.ir[m].numpy(), self.data.raman[m].numpy(),
            [self.smiles[int(i)] for i in self.ret.index[q]], self.ret.score[q].tolist(),
            self.ret.correct[q].tolist(),
            f"{self.smiles[q]}: true molecule at rank {int(self.ret.rank[q]) + 1}")


def split_gallery(model: VibraCLIP, data: PreparedData, build_dir: str, top_k: int,
                  n_hits: int, n_misses: int, seed: int = 0) -> SplitGallery:
    """Rank the test split for each of its IR + Raman queries (top `top_k`, at most the split)
    and pick `n_hits` queries found first and `n_misses` that were not (seeded)."""
    rows = data.splits["test"]
    smiles = [data.smiles[int(i)] for i in rows]
    ids = [data.identity[int(i)] for i in rows]
    emb = embed_split(model, data, "test", build_dir)
    ret = G.retrievals(R.library_scorer(emb["graph"], emb["ir"], emb["raman"]), len(rows), ids,
                       ids, min(top_k, len(rows)))
    return SplitGallery(data, smiles, ret, G.pick_queries(ret.rank, n_hits, n_misses, seed=seed))


def show_each(plot: Callable[[int], plt.Figure], queries: Sequence[int]) -> None:
    """Draw and show one figure per query, in order (a page shows them one below the other)."""
    for q in queries:
        plot(q)
        plt.show()


def wrong_candidates_text(shared: pd.DataFrame) -> str:
    """The sentence on what the wrong top-5 candidates share with the target, and whether the
    model mostly errs towards chemically similar molecules in this run."""
    col = shared.columns[0]
    return (
        "Among the wrong top-5 candidates, "
        f"{shared.loc['same molecular formula (isomer)', col]:.1f} % are isomers of the target "
        f"and {shared.loc['same set of functional groups', col]:.1f} % carry exactly its "
        "functional groups: when the model errs, it "
        + ("mostly errs towards chemically similar molecules."
           if shared.loc['at least one functional group in common', col] > 50 else
           "often proposes molecules that share little with the target."))
