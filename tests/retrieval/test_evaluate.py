import copy

import numpy as np
import pytest

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data.datasets import prepare
import torch

from vibraclip_core.data.molecules import morgan_fingerprints
from vibraclip_core.retrieval.baselines import CCABaseline, RandomProjectionBaseline
from vibraclip_core.retrieval.embedding import EmbeddingCache, embed_rows, embed_split
from vibraclip_core.retrieval.evaluate import cca_evaluation, evaluate, random_projection_evaluation
from vibraclip_core.retrieval.scores import library_scorer, rank_of_truth, rank_of_truth_scored
from vibraclip_core.training.train import load_model, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    build = tmp_path_factory.mktemp("eval_build")
    cfg = get_config("tiny", n_molecules=80, max_epochs=2, batch_size=16, build_dir=str(build))
    data = prepare(cfg)
    result = train(cfg, data, tag="eval", trainer_kwargs={"enable_progress_bar": False})
    return cfg, data, load_model(result.best_checkpoint, expected=cfg)


def test_evaluate_table_matches_curves_and_split(trained):
    cfg, data, model = trained
    ev = evaluate(model, data, "test", cfg.build_dir, n_boot=200)
    n = len(data.splits["test"])
    assert list(ev.table.index) == ["ir", "raman", "ir+raman library", "ir+raman paper"]
    for mode, row in ev.table.iterrows():
        curve = ev.curves[mode]
        assert row["n"] == n and np.all(np.diff(curve) >= 0)
        assert row["top1"] == pytest.approx(100 * curve[0]) and row["top25"] == pytest.approx(
            100 * curve[24])
        lo, hi = (float(x) for x in row["top1_ci"].split("–"))
        assert lo - 1e-6 <= round(row["top1"], 1) <= hi + 1e-6
    # naive twin from the split's own embeddings: cosine per spectrum, library score
    # sqrt((1 + cos_ir) / 2 * (1 + cos_raman) / 2); rank = other-identity candidates scoring above
    # the best true one (a 1e-5 band absorbs float32 rounding); table numbers from those ranks
    emb = {k: torch.nn.functional.normalize(v.double(), dim=1)
           for k, v in embed_split(model, data, "test", cfg.build_dir).items()}
    cos_ir, cos_raman = emb["ir"] @ emb["graph"].T, emb["raman"] @ emb["graph"].T
    scores = {"ir": cos_ir, "raman": cos_raman,
              "ir+raman library": ((1 + cos_ir) * (1 + cos_raman) / 4).sqrt()}
    ids = [data.identity[int(i)] for i in data.splits["test"]]
    for mode, s in scores.items():
        for i in range(n):
            truth = max(float(s[i, j]) for j in range(n) if ids[j] == ids[i])
            gaps = [float(s[i, j]) - truth for j in range(n) if ids[j] != ids[i]]
            assert sum(g > 1e-5 for g in gaps) <= int(ev.ranks[mode][i]) <= sum(
                g > -1e-5 for g in gaps), (mode, i)
        r = ev.ranks[mode].tolist()
        assert ev.table.loc[mode, "top5"] == pytest.approx(100 * sum(x < 5 for x in r) / n)
        assert ev.table.loc[mode, "mrr"] == pytest.approx(sum(1 / (x + 1) for x in r) / n)


def test_embeddings_are_deterministic_in_eval_mode(trained):
    cfg, data, model = trained
    a = embed_split(model, data, "val", cfg.build_dir, batch_size=4)
    b = embed_split(model, data, "val", cfg.build_dir, batch_size=64)
    for k in a:
        assert a[k].shape == (len(data.splits["val"]), cfg.latent_dim)
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-5)


def test_mass_filter_never_lowers_accuracy_and_matches_manual_ranks(trained):
    cfg, data, model = trained
    plain = evaluate(model, data, "test", cfg.build_dir, n_boot=50)
    filt = evaluate(model, data, "test", cfg.build_dir, n_boot=50, mass_tol_da=0.5)
    for mode in plain.ranks:
        assert (filt.ranks[mode] <= plain.ranks[mode]).all()
    # manual twin: rank = number of candidates within the tolerance that score above the truth
    emb = embed_split(model, data, "test", cfg.build_dir)
    g = torch.nn.functional.normalize(emb["graph"], dim=1)
    q = torch.nn.functional.normalize(emb["ir"], dim=1)
    s = q @ g.T
    mass = data.mass_da[data.splits["test"]]
    ids = [data.identity[int(i)] for i in data.splits["test"]]
    for i in range(len(ids)):
        truth = max(float(s[i, j]) for j in range(len(ids)) if ids[j] == ids[i])
        above = sum(1 for j in range(len(ids)) if ids[j] != ids[i] and float(s[i, j]) > truth
                    and abs(float(mass[i] - mass[j])) <= 0.5)
        assert int(filt.ranks["ir"][i]) == above


def test_query_mass_offset_moves_only_spectra_of_an_anchored_model(trained):
    cfg, data, model = trained
    assert model.use_mass
    a = embed_split(model, data, "test", cfg.build_dir)
    b = embed_split(model, data, "test", cfg.build_dir, query_mass_offset_da=5.0)
    torch.testing.assert_close(a["graph"], b["graph"])
    assert not torch.allclose(a["ir"], b["ir"]) and not torch.allclose(a["raman"], b["raman"])


def test_cca_baseline_evaluation_on_the_split(trained):
    cfg, data, _ = trained
    ev = cca_evaluation(data, "test", dim=8, n_boot=50)
    n = len(data.splits["test"])
    assert list(ev.table.index) == ["CCA ir", "CCA raman", "CCA ir+raman library"]
    assert (ev.table["n"] == n).all()
    # manual twins, fitted on the train split only: the one-view modes are plain one-view CCAs,
    # the library mode one fit of both views scored with the library score
    tr, te = data.splits["train"], data.splits["test"]
    smiles = [[data.smiles[int(i)] for i in rows] for rows in (tr, te)]
    fp = morgan_fingerprints(smiles[0])
    ids = [data.identity[int(i)] for i in te]
    for view in ("ir", "raman"):
        cca = CCABaseline.fit_features(fp, {view: getattr(data, view)[tr]}, 8)
        manual = rank_of_truth(cca.embed_spectra(view, getattr(data, view)[te]),
                               cca.embed_structures(smiles[1]), ids, ids)
        assert torch.equal(ev.ranks[f"CCA {view}"], manual), view
    both = CCABaseline.fit_features(fp, {"ir": data.ir[tr], "raman": data.raman[tr]}, 8)
    manual = rank_of_truth_scored(library_scorer(both.embed_structures(smiles[1]),
                                                 both.embed_ir(data.ir[te]),
                                                 both.embed_raman(data.raman[te])), ids, ids)
    assert torch.equal(ev.ranks["CCA ir+raman library"], manual)


def test_random_projection_evaluation_is_seeded_and_scored_like_the_model(trained):
    cfg, data, _ = trained
    ev = random_projection_evaluation(data, "test", dim=32, seed=3, n_boot=50)
    n = len(data.splits["test"])
    assert list(ev.table.index) == ["random ir", "random raman", "random ir+raman library"]
    assert (ev.table["n"] == n).all()
    again = random_projection_evaluation(data, "test", dim=32, seed=3, n_boot=50)
    assert all(torch.equal(ev.ranks[m], again.ranks[m]) for m in ev.ranks)
    te = data.splits["test"]
    rp = RandomProjectionBaseline(dim=32, seed=3)
    lib = rp.embed_structures([data.smiles[int(i)] for i in te])
    ids = [data.identity[int(i)] for i in te]
    manual = rank_of_truth_scored(library_scorer(lib, rp.embed_ir(data.ir[te]),
                                                 rp.embed_raman(data.raman[te])), ids, ids)
    assert torch.equal(ev.ranks["random ir+raman library"], manual)


def test_embed_rows_matches_the_full_forward_and_reuses_frozen_encoder_features(trained):
    from torch_geometric.loader import DataLoader

    from vibraclip_core.data.graphs import MoleculeDataset, geometry_cache

    cfg, data, model = trained
    rows = data.splits["test"]
    geo = geometry_cache(data, cfg.cutoff_ang, cfg.build_dir)
    batch = next(iter(DataLoader(MoleculeDataset(data, rows, geo), batch_size=len(rows))))

    def full(m):
        m.eval()
        with torch.no_grad():
            return m(batch)

    cache = EmbeddingCache()
    emb = embed_rows(model, data, rows, cfg.build_dir, batch_size=7, cache=cache)
    for k, v in full(model).items():
        np.testing.assert_allclose(emb[k].numpy(), v.numpy(), atol=1e-5)
    # a realigned copy: new head weights, same frozen encoder -> the encoder is not run again
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.graph_head.fc.weight.mul_(-1.0)
    expected = full(other)["graph"]

    def no_encoder(_batch):
        raise AssertionError("graph encoder ran again")

    other.graph_features = no_encoder
    got = embed_rows(other, data, rows, cfg.build_dir, cache=cache)["graph"]
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)
    assert not torch.allclose(got, emb["graph"])
    # a changed encoder is recomputed
    with torch.no_grad():
        next(other.graph_encoder.parameters()).add_(0.1)
    with pytest.raises(AssertionError, match="ran again"):
        embed_rows(other, data, rows, cfg.build_dir, cache=cache)
