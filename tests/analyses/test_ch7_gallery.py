from types import SimpleNamespace

import torch

from vibraclip_core.analyses import ch7_gallery as SG


def test_the_split_gallery_ranks_the_test_split_and_draws_a_query(monkeypatch):
    n = 6
    smiles = ["C", "CC", "CCC", "CO", "CCO", "C=O", "O", "N"]
    data = SimpleNamespace(smiles=smiles, identity=smiles, splits={"test": torch.arange(2, 8)},
                           ir=torch.rand(8, 1750), raman=torch.rand(8, 1750))
    graph = torch.eye(n, 4 * n)[:, :n * 4]
    spectra = graph.clone()
    spectra[[0, 1]] = graph[[1, 0]]  # the first two queries point at each other's molecule
    monkeypatch.setattr(SG, "embed_split",
                        lambda model, d, split, build: {"graph": graph, "ir": spectra,
                                                        "raman": spectra})
    g = SG.split_gallery(None, data, "build", top_k=25, n_hits=2, n_misses=1, seed=0)
    assert g.smiles == smiles[2:] and g.ret.index.shape == (n, n)  # top_k capped at the split
    assert abs(g.top1_percent - 100 * 4 / 6) < 1e-4
    assert g.ret.rank.tolist() == [1, 1, 0, 0, 0, 0]
    assert len(g.picks) == 3 and g.picks[-1] in (0, 1)  # hits first, then the miss
    fig = g.plot(g.picks[-1])
    assert len(fig.axes) == 2 + n  # target, spectra, candidates
    assert "true molecule at rank 2" in fig.axes[1].get_title()


def test_structures_are_drawn_with_implicit_hydrogens(monkeypatch):
    from PIL import Image

    from vibraclip_core.experiments import gallery as G

    drawn = []

    def draw(mol, size):
        drawn.append(sorted({a.GetSymbol() for a in mol.GetAtoms()}))
        return Image.new("RGB", size)

    monkeypatch.setattr(G.Draw, "MolToImage", draw)
    G.plot_retrieval("CCO", None, None, ["CC=O", "OCC"], [0.9, 0.8], [False, True])
    assert drawn == [["C", "O"]] * 3  # target and candidates, no H atoms drawn
