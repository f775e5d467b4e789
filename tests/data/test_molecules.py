"""Tests for vibraclip_core.data.molecules: conformer and graph known answers, geometry helpers vs naive
twins."""

import numpy as np
import pytest
import torch

from vibraclip_core.data import molecules as M


def _bond_lengths(smiles: str, graph: M.MoleculeGraph) -> dict[tuple[int, int], list[float]]:
    """{(z_begin, z_end) sorted: bond lengths in Å} from the graph's positions and RDKit's bonds."""
    out: dict[tuple[int, int], list[float]] = {}
    for bond in M.mol_from_smiles(smiles).GetBonds():
        u, v = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        key = tuple(sorted((int(graph.z[u]), int(graph.z[v]))))
        out.setdefault(key, []).append(float(np.linalg.norm(graph.pos_ang[u] - graph.pos_ang[v])))
    return out


def test_acetonitrile_triple_bond_length():
    g = M.smiles_to_graph("CC#N")
    assert g.z.tolist() == [6, 6, 7, 1, 1, 1]
    assert 1.1 < _bond_lengths("CC#N", g)[(6, 7)][0] < 1.2


def test_benzene_ring_bonds():
    g = M.smiles_to_graph("c1ccccc1")
    lengths = np.array(_bond_lengths("c1ccccc1", g)[(6, 6)])
    assert lengths.size == 6
    assert np.all((lengths > 1.37) & (lengths < 1.42)), lengths
    assert abs(lengths.mean() - 1.395) < 0.01


def test_ethanol_mass_and_formula():
    mol = M.mol_from_smiles("CCO")
    assert M.molecular_mass_da(mol) == pytest.approx(46.07, abs=0.01)
    assert M.molecular_formula(mol) == "C2H6O"


def test_methane_graph():
    g = M.smiles_to_graph("C")
    assert g.z.tolist() == [6, 1, 1, 1, 1] and g.z.dtype == np.int64
    assert g.pos_ang.shape == (5, 3) and g.pos_ang.dtype == np.float32
    assert np.allclose(_bond_lengths("C", g)[(1, 6)], 1.09, atol=0.03)
    assert g.mass_da == pytest.approx(16.043, abs=1e-3) and g.smiles == "C"


@pytest.mark.parametrize(
    "smiles, reason", [("C1CC(", "unparseable_smiles"), ("CCCl", "unknown_element"), ("", "empty")]
)
def test_errors_name_smiles_and_reason(smiles, reason):
    with pytest.raises(M.MoleculeError) as info:
        M.smiles_to_graph(smiles)
    assert info.value.reason == reason
    assert repr(smiles) in str(info.value)
    if reason == "unknown_element":
        assert "Cl" in str(info.value)


def test_featurize_many_failures_and_workers():
    smiles = ["CCO", "not_a_smiles", "c1ccccc1", "CC#N", "CCCl", "OC(=O)C"]
    graphs, failures = M.featurize_many(smiles, progress=False)
    assert [g is None for g in graphs] == [False, True, False, False, True, False]
    assert failures == {"unparseable_smiles": 1, "unknown_element": 1}
    assert graphs[0].smiles == "CCO"
    graphs2, failures2 = M.featurize_many(smiles, workers=2, progress=False)
    assert failures2 == failures
    for a, b in zip(graphs, graphs2):
        assert (a is None) == (b is None)
        if a is not None:
            assert np.array_equal(a.pos_ang, b.pos_ang) and np.array_equal(a.z, b.z)
            assert a.mass_da == b.mass_da


def test_conformer_seed_determinism():
    mol = M.mol_from_smiles("CC(O)CN")
    a, b = M.embed_conformer(mol, seed=3), M.embed_conformer(mol, seed=3)
    c = M.embed_conformer(mol, seed=4)
    assert a.shape == (mol.GetNumAtoms(), 3)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert mol.GetNumConformers() == 0  # the input is left untouched
    opt = M.embed_conformer(mol, seed=3, optimize=True)
    assert opt.shape == a.shape and not np.allclose(opt, a)


def test_canonical_identity_drops_stereo():
    assert M.canonical_identity("OCC") == M.canonical_identity("C(O)C") == "CCO"
    assert M.canonical_identity("C[C@H](N)O") == M.canonical_identity("C[C@@H](N)O")
    assert "@" not in M.canonical_identity("C[C@H](N)O")


# ---- geometry helpers against naive twins ----


def _naive_radius(pos, cutoff, batch):
    n = pos.shape[0]
    pairs = [
        (j, i) for i in range(n) for j in range(n)
        if i != j and batch[i] == batch[j] and torch.linalg.norm(pos[i] - pos[j]) < cutoff
    ]
    return sorted(pairs, key=lambda p: (p[1], p[0]))


def _naive_triplets(edge_index):
    src, dst = edge_index.tolist()
    out = set()
    for ji, (j, i) in enumerate(zip(src, dst)):
        for kj, (k, j2) in enumerate(zip(src, dst)):
            if j2 == j and k != i:
                out.add((k, j, i, kj, ji))
    return out


def _triplet_set(t):
    _, _, idx_i, idx_j, idx_k, idx_kj, idx_ji = t
    return set(zip(idx_k.tolist(), idx_j.tolist(), idx_i.tolist(), idx_kj.tolist(), idx_ji.tolist()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_radius_edges_matches_naive(seed):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(14, 3, generator=g) * 4.0
    batch = torch.tensor([1] * 5 + [0] * 6 + [1] * 3)  # unsorted on purpose
    for b in (None, batch):
        edges = M.radius_edges(pos, 2.0, b)
        ref = _naive_radius(pos, 2.0, torch.zeros(14) if b is None else b)
        assert edges.dtype == torch.long
        assert list(zip(*edges.tolist())) == ref


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_triplets_matches_naive(seed):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(9, 3, generator=g) * 3.0
    edge_index = M.radius_edges(pos, 2.0)
    i, j, idx_i, idx_j, idx_k, idx_kj, idx_ji = M.triplets(edge_index, 9)
    assert torch.equal(i, edge_index[1]) and torch.equal(j, edge_index[0])
    assert _triplet_set((i, j, idx_i, idx_j, idx_k, idx_kj, idx_ji)) == _naive_triplets(edge_index)
    assert torch.equal(edge_index[0, idx_kj], idx_k) and torch.equal(edge_index[1, idx_ji], idx_i)
    # documented order: by idx_ji, then source k
    key = idx_ji * 9 + idx_k
    assert torch.all(key[1:] > key[:-1])


def test_triplets_on_shuffled_bond_graph():
    mol = M.mol_from_smiles("CC(=O)N")
    pairs = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    edge_index = torch.tensor([p for u, v in pairs for p in ((u, v), (v, u))]).T
    edge_index = edge_index[:, torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(0))]
    t = M.triplets(edge_index, mol.GetNumAtoms())
    assert _triplet_set(t) == _naive_triplets(edge_index)


def test_batched_union_of_per_molecule_results():
    mols = [M.smiles_to_graph(s) for s in ("CCO", "c1ccccc1", "CC#N")]
    cutoff = 3.0
    offsets = np.cumsum([0] + [len(m.z) for m in mols[:-1]]).tolist()
    pos = torch.cat([torch.from_numpy(m.pos_ang) for m in mols])
    batch = torch.cat([torch.full((len(m.z),), k) for k, m in enumerate(mols)])
    edges_all = M.radius_edges(pos, cutoff, batch)
    per_edges, per_trip, edge_offset = [], set(), 0
    for m, off in zip(mols, offsets):
        e = M.radius_edges(torch.from_numpy(m.pos_ang), cutoff)
        per_edges.append(e + off)
        for k, j, i, kj, ji in _triplet_set(M.triplets(e, len(m.z))):
            per_trip.add((k + off, j + off, i + off, kj + edge_offset, ji + edge_offset))
        edge_offset += e.shape[1]
    concatenated = torch.cat(per_edges, dim=1)
    # batching sorts by target then source, so concatenation equals the batched result exactly
    assert torch.equal(edges_all, concatenated)
    assert _triplet_set(M.triplets(concatenated, len(pos))) == per_trip


def test_embedding_failure_reason(monkeypatch):
    monkeypatch.setattr(M, "_try_embed", lambda mol, params: -1)
    with pytest.raises(M.MoleculeError) as info:
        M.smiles_to_graph("OCC")
    assert info.value.reason == "embedding_failed" and "'OCC'" in str(info.value)
    graphs, failures = M.featurize_many(["OCC"], progress=False)
    assert graphs == [None] and failures == {"embedding_failed": 1}


def test_strained_cage_needs_and_gets_the_random_coordinate_retry():
    from rdkit import Chem
    from rdkit.Chem import rdDistGeom

    smiles = "N=C1OC2C3CC2C1O3"  # QM9 cage that fails plain ETKDGv3 with seed 0
    mol = M.mol_from_smiles(smiles)
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = 0
    assert rdDistGeom.EmbedMolecule(Chem.Mol(mol), params) == -1
    a, b = M.embed_conformer(mol, seed=0), M.embed_conformer(mol, seed=0)
    assert np.array_equal(a, b) and np.isfinite(a).all()


def test_geometry_helpers_empty_inputs():
    assert M.radius_edges(torch.zeros(1, 3), 5.0).shape == (2, 0)
    t = M.triplets(torch.zeros(2, 0, dtype=torch.long), 3)
    assert all(x.numel() == 0 for x in t)


@pytest.mark.parametrize("smiles, reason", [
    ("[NH4+]", "charged"), ("[O-]C=O", "charged"), ("[CH3]", "radical"), ("[CH2]", "radical"),
    ("CCO.O", "mixture"), ("[NH4+].[O-]C=O", "mixture"), ("[2H]C", "isotope"),
    ("[13CH4]", "isotope"), ("C1CC(", "unparseable_smiles"), ("CCCl", "unknown_element"),
])
def test_candidate_identity_refuses_what_is_no_neutral_closed_shell_molecule(smiles, reason):
    # issue 18: each of these was embedded as if it were a neutral closed-shell molecule
    with pytest.raises(M.MoleculeError) as info:
        M.candidate_identity(smiles)
    assert info.value.reason == reason and repr(smiles) in str(info.value)


@pytest.mark.parametrize("smiles", ["CCO", "C[C@H](O)F", "C[N+](=O)[O-]", "c1ccccc1", "[CH4]"])
def test_candidate_identity_is_the_identity_of_neutral_molecules(smiles):
    # charge-separated but neutral groups (nitro) and bracketed closed-shell atoms are accepted
    assert M.candidate_identity(smiles) == M.canonical_identity(smiles)


def test_is_smiles():
    assert M.is_smiles("CCO") and M.is_smiles("CCCl") and M.is_smiles("[NH4+]")
    assert not any(M.is_smiles(t) for t in ("", "ethanol", "smiles", "name", "C1CC(", "1"))
