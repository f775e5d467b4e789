import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import torch

from vibraclip_core.experiments import gallery as G
from vibraclip_core.retrieval import scores as R


def test_functional_groups():
    assert G.functional_groups("CC(C)=O") == {"carbonyl"}
    assert G.functional_groups("OCc1ccccc1") == {"hydroxyl", "aromatic ring"}
    assert G.functional_groups("CC#N") == {"nitrile"}
    assert G.functional_groups("CC(N)=O") == {"carbonyl", "amide"}


def test_retrievals_mark_correct_and_match_a_naive_sort():
    g = torch.Generator().manual_seed(0)
    lib = torch.randn(12, 6, generator=g)
    query = lib[:5] + 0.3 * torch.randn(5, 6, generator=g)
    ids = [f"m{i}" for i in range(12)]
    ret = G.retrievals(R.cosine_scorer(query, lib), 5, ids[:5], ids, k=4)
    s = torch.nn.functional.normalize(query, dim=1) @ torch.nn.functional.normalize(lib, dim=1).T
    for q in range(5):
        naive = sorted(range(12), key=lambda j: -float(s[q, j]))[:4]
        assert ret.index[q].tolist() == naive
        assert ret.correct[q].tolist() == [j == q for j in naive]
        assert int(ret.rank[q]) == naive.index(q) if q in naive else int(ret.rank[q]) >= 4


def test_pick_queries_is_seeded_and_split_by_outcome():
    rank = torch.tensor([0, 3, 0, 0, 7, 1, 0])
    picks = G.pick_queries(rank, 2, 5, seed=1)
    assert picks == G.pick_queries(rank, 2, 5, seed=1)
    assert all(rank[p] == 0 for p in picks[:2]) and all(rank[p] > 0 for p in picks[2:])
    assert len(picks) == 2 + 3  # only three misses exist


def test_similarity_to_target_counts_only_wrong_candidates():
    lib = ["CCC=O", "CC(C)=O", "CCCO", "CCO"]  # propanal, acetone, propanol, ethanol
    ret = G.Retrieval([0], torch.tensor([[1, 0, 2, 3]]), torch.ones(1, 4),
                      torch.tensor([[True, False, False, False]]), torch.tensor([0]))
    table = G.similarity_to_target(ret, ["CC(C)=O"], lib, k=4)
    col = table.columns[0]
    # wrong: propanal (isomer, carbonyl), propanol, ethanol (hydroxyl): 1 of 3 each
    assert table.loc["same molecular formula (isomer)", col] == pytest.approx(33.3)
    assert table.loc["same set of functional groups", col] == pytest.approx(33.3)


def test_plot_retrieval_frames_the_correct_candidate():
    fig = G.plot_retrieval("CCO", np.linspace(0, 1, 1750), None, ["CCO", "CCC"], [0.9, 0.5],
                           [True, False], "t")
    titles = [a.get_title() for a in fig.axes]
    assert "1. 0.900" in titles and "2. 0.500" in titles
    framed = [a for a in fig.axes if a.get_title() == "1. 0.900"][0]
    assert framed.spines["left"].get_linewidth() == 3
