"""The one candidate library (library.CandidateLibrary) and the one embedding path behind it:
every route to a library's embeddings gives the model's own forward on the same molecules."""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data import qm9_candidates as Q
from vibraclip_core.data.datasets import prepare
from vibraclip_core.data.graphs import MoleculeDataset, geometry_cache
from vibraclip_core.data.mass import MassStats
from vibraclip_core.data.molecules import featurize_many, molecular_formula, mol_from_smiles
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.candidates import QM9Candidates, load_candidates
from vibraclip_core.retrieval.embedding import EmbeddingCache, embed_split, embed_structures
from vibraclip_core.retrieval.library import CandidateLibrary, pack_structures, unique_rows
from vibraclip_core.retrieval.library_cache import build_library


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    build = tmp_path_factory.mktemp("library_build")
    cfg = get_config("tiny", n_molecules=60, build_dir=str(build))
    data = prepare(cfg)
    torch.manual_seed(0)
    models = {mass: VibraCLIP(cfg.replace(mass=mass),
                              graph_output_initializer="glorot_orthogonal").eval()
              for mass in (True, False)}
    return cfg, data, models


def rows_as_structures(data, rows: torch.Tensor) -> Q.Structures:
    """The same molecules as packed Structures (atoms, positions, masses of the data)."""
    g, r = data.graphs, rows.numpy()
    starts, stops = g["node_offsets"][r].numpy(), g["node_offsets"][r + 1].numpy()
    atoms = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
    return Q.Structures(data.index[r].numpy(), [data.smiles[i] for i in r],
                        [data.identity[i] for i in r], data.mass_da[r].numpy().astype(np.float64),
                        ["data"] * len(r), np.concatenate([[0], np.cumsum(stops - starts)]),
                        g["z"][atoms].numpy(), g["pos"][atoms].numpy())


def forward_graph(model: VibraCLIP, data, rows: torch.Tensor, build_dir: str) -> torch.Tensor:
    """The model's own forward on one batch of the rows: what training and validation compute."""
    geo = geometry_cache(data, model.config.cutoff_ang, build_dir)
    batch = next(iter(DataLoader(MoleculeDataset(data, rows, geo), batch_size=len(rows))))
    with torch.no_grad():
        return model(batch)["graph"]


@pytest.mark.parametrize("mass", [True, False])
def test_library_embeddings_are_the_models_forward(setup, mass):
    cfg, data, models = setup
    model, rows = models[mass], data.splits["test"]
    forward = forward_graph(model, data, rows, cfg.build_dir)
    from_rows = CandidateLibrary.from_rows(data, rows).embed(model, cfg.build_dir)
    assert torch.equal(from_rows.graph_emb, forward)  # same molecules, same batch: same bits
    stats = MassStats(data.mass_mean, data.mass_std)
    from_structures = CandidateLibrary.from_structures(rows_as_structures(data, rows),
                                                       stats).embed(model)
    if mass:  # float64 vs float32 mass standardization: a last-bit difference at most
        torch.testing.assert_close(from_structures.graph_emb, forward, atol=1e-6, rtol=0)
    else:
        assert torch.equal(from_structures.graph_emb, forward)
    # other batch compositions change the summation order only
    all_rows = torch.arange(len(data))
    one_batch = CandidateLibrary.from_rows(data, all_rows).embed(model, cfg.build_dir,
                                                                 batch_size=len(data))
    small = CandidateLibrary.from_rows(data, all_rows).embed(model, cfg.build_dir, batch_size=7)
    torch.testing.assert_close(small.graph_emb, one_batch.graph_emb, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(one_batch.graph_emb,
                               forward_graph(model, data, all_rows, cfg.build_dir), atol=0, rtol=0)


def test_identify_route_equals_evaluate_route(setup):
    """`vibraclip identify --candidates qm9` (the shared QM9 conformer cache, library_cache)
    embeds the test split's molecules as `evaluate` does (embed_split of the prepared data)."""
    cfg, data, models = setup
    test = data.splits["test"]
    for mass, model in models.items():
        stats = MassStats(data.mass_mean, data.mass_std) if mass else None
        positions = Q.qm9_positions(data.index[test].numpy())
        library = build_library(model, QM9Candidates(positions), stats,
                                f"{cfg.build_dir}/cache", progress=False)
        evaluated = embed_split(model, data, "test", cfg.build_dir)["graph"]
        assert library.identity == [data.identity[int(i)] for i in test]
        np.testing.assert_allclose(library.mass_da, data.mass_da[test].numpy(), rtol=1e-6)
        if mass:
            torch.testing.assert_close(library.graph_emb, evaluated, atol=1e-6, rtol=0)
        else:
            assert torch.equal(library.graph_emb, evaluated)


def test_library_from_smiles_skips_ions_radicals_mixtures_isotopes_and_duplicates(tmp_path):
    # issue 18: each of these was embedded as a neutral closed-shell molecule, and acetone listed
    # twice (rank 1 and 2); now left out and counted by reason, the first of each identity kept
    (tmp_path / "lib.smi").write_text(
        "CC(C)=O acetone\n[NH4+]\n[O-]C=O formate\n[CH3] methyl\n[CH2] methylene\nCCO.O\n"
        "[2H]C\n[13CH4]\nC[N+](=O)[O-] nitromethane\nCC(=O)C acetone again\nOCC\nCCO\n")
    lib = CandidateLibrary.from_smiles(load_candidates(tmp_path / "lib.smi"), progress=False)
    assert lib.smiles == ["CC(C)=O", "C[N+](=O)[O-]", "OCC"]
    assert lib.identity == ["CC(C)=O", "C[N+](=O)[O-]", "CCO"]
    assert lib.formula == ["C3H6O", "CH3NO2", "C2H6O"]
    assert lib.skipped == Counter({"charged": 2, "radical": 2, "mixture": 1, "isotope": 2,
                                   "duplicate": 2})
    # the molecules kept are featurised exactly as before
    graphs = featurize_many(["CC(C)=O", "C[N+](=O)[O-]", "OCC"], progress=False)[0]
    np.testing.assert_array_equal(lib.parts[0].pos_ang, np.concatenate([g.pos_ang for g in graphs]))
    np.testing.assert_allclose(lib.mass_da, [g.mass_da for g in graphs])


def test_library_from_smiles_rows_and_structures(setup):
    cfg, data, models = setup
    lib = CandidateLibrary.from_smiles(["CCO", "C1CC(", "OC(F)F", "CCCl"], progress=False)
    assert lib.smiles == ["CCO", "OC(F)F"] and lib.identity == ["CCO", "OC(F)F"]
    assert lib.formula == ["C2H6O", "CH2F2O"]
    assert lib.skipped == Counter({"unparseable_smiles": 1, "unknown_element": 1})
    graphs = [g for g in featurize_many(["CCO", "OC(F)F"], progress=False)[0]]
    np.testing.assert_allclose(lib.mass_da, [g.mass_da for g in graphs])
    # rows: the data's own strings and masses, formulas from the atoms as RDKit writes them
    rows = torch.tensor([5, 1, 5])
    from_rows = CandidateLibrary.from_rows(data, rows)
    assert from_rows.smiles == [data.smiles[i] for i in (5, 1, 5)]
    assert from_rows.formula == [molecular_formula(mol_from_smiles(s)) for s in from_rows.smiles]
    np.testing.assert_array_equal(from_rows.mass_da, data.mass_da[rows].numpy())
    # concatenation keeps order and parts; embeddings follow when every part is embedded
    both = CandidateLibrary.concat([from_rows, lib])
    assert len(both) == 5 and both.smiles[3:] == lib.smiles and len(both.parts) == 2
    assert both.graph_emb is None and both.skipped == lib.skipped
    model = models[False]
    embedded = both.embed(model, cfg.build_dir)
    torch.testing.assert_close(embedded.graph_emb[3:], lib.embed(model).graph_emb)
    torch.testing.assert_close(embedded.graph_emb[:3],
                               from_rows.embed(model, cfg.build_dir).graph_emb)
    # one molecule twice: the same embedding (to rounding: its place in the batch differs)
    torch.testing.assert_close(embedded.graph_emb[0], embedded.graph_emb[2], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="build_dir"):
        from_rows.embed(model)
    with pytest.raises(ValueError, match="mass statistics"):
        CandidateLibrary.concat([lib, CandidateLibrary.from_structures(
            pack_structures(graphs), MassStats(1.0, 2.0)), CandidateLibrary.from_structures(
            pack_structures(graphs), MassStats(3.0, 2.0))])
    with pytest.raises(ValueError, match="2 SMILES, 1 identities"):
        CandidateLibrary(["C", "O"], ["C"], np.ones(2), ["CH4", "H2O"])
    cached = CandidateLibrary(["C"], ["C"], np.ones(1), ["CH4"], graph_emb=torch.zeros(1, 4))
    with pytest.raises(ValueError, match="read from a cache"):
        cached.embed(model)
    assert unique_rows(data, {data.identity[0]}).tolist()[0] != 0


def test_a_frozen_encoder_embeds_each_library_once_per_cache(setup):
    cfg, data, models = setup
    model = models[True]
    stats = MassStats(data.mass_mean, data.mass_std)
    library = CandidateLibrary.concat([
        CandidateLibrary.from_rows(data, data.splits["val"]),
        CandidateLibrary.from_structures(rows_as_structures(data, data.splits["test"]), stats)])
    cache = EmbeddingCache()
    first = library.embed(model, cfg.build_dir, cache=cache)
    assert len(cache) == 2  # one entry per part
    realigned = copy.deepcopy(model)  # new head weights, the same (frozen) graph encoder
    with torch.no_grad():
        realigned.graph_head.fc.weight.mul_(-1.0)
    expected = library.embed(realigned, cfg.build_dir).graph_emb

    def no_encoder(_batch):
        raise AssertionError("graph encoder ran again")

    realigned.graph_features = no_encoder
    again = library.embed(realigned, cfg.build_dir, cache=cache)
    assert torch.equal(again.graph_emb, expected) and not torch.equal(again.graph_emb,
                                                                       first.graph_emb)
    with torch.no_grad():  # another encoder: computed, not served stale
        next(realigned.graph_encoder.parameters()).add_(0.1)
    with pytest.raises(AssertionError, match="ran again"):
        library.embed(realigned, cfg.build_dir, cache=cache)


def test_embed_structures_needs_mass_statistics_for_an_anchored_model(setup):
    _, data, models = setup
    s = rows_as_structures(data, data.splits["test"][:2])
    with pytest.raises(ValueError, match="mass_stats"):
        embed_structures(models[True], s, None)
    assert embed_structures(models[False], s, None).shape == (2, models[False].config.latent_dim)


def test_stereoisomers_are_merged_and_counted_as_such(tmp_path, caplog):
    # issue 28: E/Z isomers share an identity (stereochemistry dropped); the skip says so
    (tmp_path / "lib.smi").write_text("C/C=C/O E\nC/C=C\\O Z\nC/C=C/O E again\nCC=CO\n"
                                      "C[C@H](N)O isomer-R\nC[C@@H](N)O isomer-S\n")
    with caplog.at_level("INFO"):
        lib = CandidateLibrary.from_smiles(load_candidates(tmp_path / "lib.smi"),
                                           progress=False)
    assert lib.smiles == ["C/C=C/O", "C[C@H](N)O"]
    assert lib.skipped == Counter({"stereoisomer": 3, "duplicate": 1})
    assert "a stereoisomer of 'C/C=C/O' (the model drops stereochemistry)" in caplog.text
