"""QM9 distractor structures (conformer cache, routes, order) and retrieval at library sizes."""

import numpy as np
import pytest
import torch

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data import qm9_candidates as Q
from vibraclip_core.data.datasets import prepare
from vibraclip_core.data.mass import MassStats
from vibraclip_core.data.sources import QM9_SIZE, load_qm9_source, qm9_order
from vibraclip_core.experiments.library_size import (library_evaluations, library_run,
                                                     max_library_size)
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.distractors import load_distractors
from vibraclip_core.retrieval.embedding import embed_split, embed_structures

# a strained QM9 cage on which ETKDG fails even with RDKit's retries (seen in QM9)
ETKDG_FAILS = "N=C1OC2CC11CCC21"


def test_candidate_geometry_routes():
    ok = Q.candidate_geometry(7, "CCO", np.array([6, 6, 8, 1, 1, 1, 1, 1, 1]),
                              np.zeros((9, 3)), seed=0)
    identity, mass, route, z, pos = ok
    assert (identity, route) == ("CCO", Q.ROUTE_ETKDG)
    assert mass == pytest.approx(46.069, abs=1e-2) and len(z) == 9 and pos.shape == (9, 3)
    assert np.abs(pos).sum() > 0  # a real embedding, not the zeros passed as the B3LYP geometry
    # deterministic in the seed
    np.testing.assert_array_equal(pos, Q.candidate_geometry(7, "CCO", z, np.zeros((9, 3)), 0)[4])
    numbers = np.array([7, 6, 8, 6, 6, 6, 6, 6, 6] + [1] * 9)
    b3lyp = np.arange(54, dtype=float).reshape(18, 3)
    identity, mass, route, z, pos = Q.candidate_geometry(1, ETKDG_FAILS, numbers, b3lyp, 0)
    assert route == Q.ROUTE_B3LYP and identity != ""
    np.testing.assert_array_equal(z, numbers)
    np.testing.assert_allclose(pos, b3lyp)
    identity, mass, route, z, _ = Q.candidate_geometry(5, "C1CC", np.array([6, 1]),
                                                       np.zeros((2, 3)), 0)
    assert (identity, route) == ("qm9:5", Q.ROUTE_B3LYP_UNPARSED)
    assert mass == pytest.approx(12.011 + 1.008, abs=1e-2)


def test_distractor_order_covers_qm9_once_and_starts_after_the_data():
    order = qm9_order()
    data_index = np.delete(order[:200], [3, 50])  # two failed simulations inside the data range
    test_index = data_index[::10]
    pos = Q.distractor_positions(data_index, test_index)
    assert len(pos) == QM9_SIZE - len(test_index) == len(np.unique(pos))
    test_pos = set(Q.qm9_positions(test_index).tolist())
    assert not test_pos & set(pos.tolist())
    # first the molecules after the data, none of them in the data; the data's train/val
    # molecules and its failures come last
    n_after = QM9_SIZE - 200
    np.testing.assert_array_equal(pos[:n_after], np.arange(200, QM9_SIZE))
    assert set(pos[n_after:].tolist()) == set(range(200)) - test_pos
    with pytest.raises(ValueError, match="not in qm9pack"):
        Q.qm9_positions(np.array([10**7]))


def test_conformer_cache_is_computed_once_and_matches_direct_geometry(tmp_path, monkeypatch):
    monkeypatch.setattr(Q, "SHARD_SIZE", 8)
    positions = np.array([17, 3, 9])  # shards 2, 0, 1 of 8 positions
    s = Q.load_positions(positions, tmp_path, conformer_seed=0, progress=False)
    order = qm9_order()
    np.testing.assert_array_equal(s.index, order[positions])
    files = sorted(tmp_path.rglob("*.npz"))
    assert len(files) == 3
    mtimes = [f.stat().st_mtime_ns for f in files]
    again = Q.load_positions(positions[::-1], tmp_path, conformer_seed=0, progress=False)
    assert [f.stat().st_mtime_ns for f in files] == mtimes  # read, not recomputed
    np.testing.assert_array_equal(again.index, s.index[::-1])
    src = load_qm9_source({int(order[17])})[int(order[17])]
    ident, mass, route, z, pos = Q.candidate_geometry(int(order[17]), src.smiles, src.numbers,
                                                      src.positions_ang, 0)
    a, b = s.atom_offsets[0], s.atom_offsets[1]
    np.testing.assert_array_equal(s.z[a:b], z)
    np.testing.assert_allclose(s.pos_ang[a:b], pos)
    assert (s.identity[0], s.route[0], s.mass_da[0]) == (ident, route, pytest.approx(mass))
    files[0].write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="unreadable QM9 conformer shard"):
        Q.load_positions(positions, tmp_path, conformer_seed=0, progress=False)


def _cosines(a, b):
    """(q, n) float64 cosine matrix, row by row."""
    return torch.tensor([[float(x @ y / (x.norm() * y.norm())) for y in b.double()]
                         for x in a.double()], dtype=torch.float64)


def _naive_ranks(scores, query_ids, library_ids, band=0.0):
    """Rank of the truth from a full (q, n) score matrix, one query at a time: other-identity
    candidates scoring more than `band` above the best true one."""
    out = []
    for i, qid in enumerate(query_ids):
        best = max(scores[i, j] for j, lid in enumerate(library_ids) if lid == qid)
        out.append(sum(1 for j, lid in enumerate(library_ids)
                       if lid != qid and scores[i, j] > best + band))
    return np.array(out)


def test_library_evaluations_match_a_naive_ranking_at_every_size():
    g = torch.Generator().manual_seed(0)
    n_q, n_lib, d = 12, 40, 8
    lib = torch.randn(n_lib, d, generator=g)
    ir = lib[:n_q] + 0.8 * torch.randn(n_q, d, generator=g)
    raman = lib[:n_q] + 0.8 * torch.randn(n_q, d, generator=g)
    qids = [f"m{i}" for i in range(n_q)]
    lids = qids + [f"d{i}" for i in range(n_lib - n_q - 1)] + ["m0"]  # a duplicate of m0 last
    mass = np.round(np.linspace(10, 50, n_lib), 0)
    qmass = mass[:n_q]
    evs = library_evaluations(lib, {"ir": ir, "raman": raman}, lids, qids, [n_q, 25, n_lib],
                              n_boot=10)
    filt = library_evaluations(lib, {"ir": ir, "raman": raman}, lids, qids, [n_lib], mass,
                               qmass, mass_tol_da=2.0, n_boot=10)
    for n, ev in evs.items():
        cos_ir, cos_raman = _cosines(ir, lib[:n]), _cosines(raman, lib[:n])
        scores = {"ir": cos_ir, "raman": cos_raman,
                  "ir+raman library": ((1 + cos_ir) * (1 + cos_raman) / 4).sqrt()}
        assert list(ev.ranks) == list(scores)
        for mode, s in scores.items():  # float64 twin: a 1e-5 band absorbs float32 rounding
            r = ev.ranks[mode].numpy()
            assert (_naive_ranks(s.numpy(), qids, lids[:n], 1e-5) <= r).all()
            assert (r <= _naive_ranks(s.numpy(), qids, lids[:n], -1e-5)).all()
    # a larger library never improves a rank; a mass filter never worsens one
    for mode in evs[n_q].ranks:
        assert (evs[25].ranks[mode] >= evs[n_q].ranks[mode]).all()
        assert (evs[n_lib].ranks[mode] >= evs[25].ranks[mode]).all()
        assert (filt[n_lib].ranks[mode] <= evs[n_lib].ranks[mode]).all()
    with pytest.raises(ValueError, match="library size 5"):
        library_evaluations(lib, {"ir": ir}, lids, qids, [5])


def test_library_run_embeds_distractors_like_the_test_split(tmp_path, monkeypatch):
    monkeypatch.setattr(Q, "SHARD_SIZE", 32)
    cfg = get_config("tiny", n_molecules=60, build_dir=str(tmp_path))
    data = prepare(cfg)
    torch.manual_seed(0)
    model = VibraCLIP(cfg).eval()
    n_test = len(data.splits["test"])
    assert max_library_size(data) == QM9_SIZE
    run = library_run(model, data, n_test + 40, cfg.build_dir, cfg.conformer_seed,
                      progress=False)
    assert len(run.library.graph_emb) == n_test + 40 == len(run.library)
    assert run.library.identity[:n_test] == run.query_ids
    # the prepared data's molecules have the geometry the shared QM9 conformer cache gives them
    assert sum(v for k, v in data.report.items() if k.startswith("conformer_")) >= len(data)
    rows = data.splits["test"][:5].numpy()
    cached = Q.load_positions(Q.qm9_positions(data.index[rows].numpy()),
                              tmp_path / "cache" / "qm9-conformers", cfg.conformer_seed)
    for k, r in enumerate(rows):
        a, b = data.graphs["node_offsets"][r], data.graphs["node_offsets"][r + 1]
        np.testing.assert_array_equal(data.graphs["pos"][a:b].numpy(),
                                      cached.pos_ang[cached.atom_offsets[k]:cached.atom_offsets[k + 1]])
    test_index = set(data.index[data.splits["test"]].tolist())
    assert not test_index & set(run.distractors.structures.index.tolist())
    assert sum(run.distractors.route_counts().values()) == 40
    # the test split's own graphs, embedded through the distractor path, give the same rows as
    # the evaluation's DataLoader path
    g, rows = data.graphs, data.splits["test"].numpy()
    starts, stops = g["node_offsets"][rows].numpy(), g["node_offsets"][rows + 1].numpy()
    atoms = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
    own = Q.Structures(data.index[rows].numpy(), [data.smiles[i] for i in rows],
                       [data.identity[i] for i in rows], data.mass_da[rows].numpy(), ["data"] * len(rows),
                       np.concatenate([[0], np.cumsum(stops - starts)]), g["z"][atoms].numpy(),
                       g["pos"][atoms].numpy())
    emb = embed_split(model, data, "test", cfg.build_dir)
    stats = MassStats(data.mass_mean, data.mass_std)
    via_distractor_path = embed_structures(model, own, stats)
    torch.testing.assert_close(via_distractor_path, emb["graph"], atol=1e-6, rtol=0)
    assert torch.equal(run.library.graph_emb[:n_test], emb["graph"])
    again = library_run(model, data, n_test + 40, cfg.build_dir, cfg.conformer_seed,
                        progress=False)  # embeddings and conformers come from the caches
    assert torch.equal(again.library.graph_emb, run.library.graph_emb)
    d = load_distractors(data, 40, cfg.build_dir, cfg.conformer_seed, progress=False)
    assert torch.equal(run.library.graph_emb[n_test:], embed_structures(model, d.structures, stats))
    np.testing.assert_array_equal(run.library.mass_da[n_test:], d.structures.mass_da)
    assert run.library.identity[n_test:] == d.structures.identity
    evs = run.evaluate([n_test, n_test + 40], n_boot=10)
    for mode in evs[n_test].ranks:
        assert (evs[n_test + 40].ranks[mode] >= evs[n_test].ranks[mode]).all()


def test_baselines_at_the_larger_library_match_the_generic_path(tmp_path, monkeypatch):
    from vibraclip_core.retrieval.baselines import RandomProjectionBaseline
    from vibraclip_core.retrieval.evaluate import cca_baselines
    from vibraclip_core.experiments.library_size import _fingerprints, evaluate_baselines_library

    monkeypatch.setattr(Q, "SHARD_SIZE", 64)
    cfg = get_config("tiny", n_molecules=60, build_dir=str(tmp_path), library_size=90)
    data = prepare(cfg)
    test = data.splits["test"]
    rp = RandomProjectionBaseline(dim=16, seed=3)
    ev = evaluate_baselines_library({"ir": rp, "ir+raman library": rp}, data, cfg, "random ")
    assert list(ev.table.index) == ["random ir", "random ir+raman library"]
    # by hand: the same structures, fingerprints and scores through library_evaluations
    d = load_distractors(data, 90 - len(test), cfg.build_dir, cfg.conformer_seed)
    qids = [data.identity[int(i)] for i in test]
    fp = _fingerprints([data.smiles[int(i)] for i in test] + d.structures.smiles, 2048)
    lib = rp.embed_fingerprints(fp)
    by_hand = library_evaluations(lib, {"ir": rp.embed_ir(data.ir[test])},
                                  qids + d.structures.identity, qids, [90], n_boot=10)[90]
    torch.testing.assert_close(ev.ranks["random ir"], by_hand.ranks["ir"])
    cca = evaluate_baselines_library(cca_baselines(data, dim=8), data, cfg, "CCA ")
    assert set(cca.table.index) == {"CCA ir", "CCA raman", "CCA ir+raman library"}
    assert (cca.table["n"] == len(test)).all()
    # an unreadable SMILES is a zero fingerprint, not an error
    assert _fingerprints(["C1CC", "CCO"], 64)[0].sum() == 0 < _fingerprints(["CCO"], 64).sum()


def test_cost_of_the_rest_scales_the_measured_rates():
    from vibraclip_core.retrieval.distractors import Distractors
    from vibraclip_core.retrieval.library import CandidateLibrary
    from vibraclip_core.experiments.library_size import LibraryRun, cost_of

    s = Q.Structures(np.arange(4), ["C"] * 4, ["C"] * 4, np.ones(4), ["etkdg"] * 4,
                     np.arange(5), np.ones(4, np.int64), np.zeros((4, 3), np.float32),
                     np.full(4, 0.01, np.float32))
    library = CandidateLibrary(["C"] * 6, ["x"] * 6, np.ones(6), ["CH4"] * 6,
                               graph_emb=torch.zeros(6, 2))
    run = LibraryRun(library, {}, ["x"] * 2, np.ones(2), Distractors(s),
                     {"conformers": 1.0, "embedding": 2.0, "n_embedded": 4.0})
    cost = cost_of(run, 1206, workers=2)
    assert cost["molecules"] == 1200
    assert cost["conformers_min"] == pytest.approx(1200 * 0.01 / 2 / 60)
    assert cost["embedding_min"] == pytest.approx(1200 * 0.5 / 60)
