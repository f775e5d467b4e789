"""Tests for vibraclip_core.retrieval.baselines: the fixed random projection and the fitted CCA."""

import numpy as np
import pytest
import torch

from vibraclip_core.data.molecules import morgan_fingerprints
from vibraclip_core.retrieval import baselines as B
from vibraclip_core.retrieval import scores as R
from vibraclip_core.retrieval.metrics import topk_accuracy

SMILES = ["C", "CC", "CCC", "CCCC", "CO", "CCO", "CCCO", "CN", "CCN", "CC=O", "CC(C)C", "C1CC1",
          "C1CCC1", "OCCO", "CC#N", "C=C", "C#C", "COC", "CC(=O)O", "NCC(=O)O", "c1ccccc1",
          "Cc1ccccc1", "CC(C)O", "CCOC", "C1CCOC1", "CNC", "O=CO", "CC(N)C", "N#CC#N", "OC1CC1"]


def _ranks(query: torch.Tensor, library: torch.Tensor) -> torch.Tensor:
    ids = [str(j) for j in range(len(library))]
    return R.rank_of_truth(query, library, ids, ids)


def _planted(seed: int = 0, n: int = 900, bits: int = 256):
    """Binary fingerprints (n, bits) and IR / Raman (n, 60) that are noisy linear maps of them."""
    rng = np.random.default_rng(seed)
    fp = (rng.random((n, bits)) < 0.1).astype(np.float32)
    ir = fp @ rng.normal(size=(bits, 60)) + 0.3 * rng.normal(size=(n, 60))
    raman = fp @ rng.normal(size=(bits, 60)) + 0.3 * rng.normal(size=(n, 60))
    return fp, ir.astype(np.float32), raman.astype(np.float32)


def test_projection_matrix_is_the_released_recipe_seeded_and_read_only():
    w = B.projection_matrix(50, 7, 3)
    raw = np.random.default_rng(3).standard_normal((50, 7))
    np.testing.assert_allclose(w, raw / np.linalg.norm(raw, axis=0))
    np.testing.assert_allclose(np.linalg.norm(w, axis=0), 1.0)
    assert not w.flags.writeable
    x = np.random.default_rng(0).random((4, 50))
    np.testing.assert_allclose(B.random_projection(x, 7, 3).numpy(), x @ w, rtol=1e-5, atol=1e-6)


def test_random_projection_deterministic_in_seed_distinct_across_seeds_and_views():
    x = torch.rand(5, 40, generator=torch.Generator().manual_seed(0))
    a, b = B.RandomProjectionBaseline(dim=16, seed=0), B.RandomProjectionBaseline(dim=16, seed=0)
    assert torch.equal(a.embed_ir(x), b.embed_ir(x))
    assert torch.equal(a.embed_structures(SMILES[:4]), b.embed_structures(SMILES[:4]))
    other = B.RandomProjectionBaseline(dim=16, seed=1)
    assert not torch.allclose(a.embed_ir(x), other.embed_ir(x), atol=1e-3)
    assert not torch.allclose(a.embed_ir(x), a.embed_raman(x), atol=1e-3)
    seeds = {(s, v): B.view_seed(s, v) for s in (0, 1) for v in B.VIEWS}
    assert len(set(seeds.values())) == 6 and B.view_seed(0, "ir") == seeds[(0, "ir")]
    with pytest.raises(ValueError, match="'graph'"):
        B.view_seed(0, "graph")


def test_random_projection_fits_nothing_each_row_depends_only_on_itself(monkeypatch):
    rp = B.RandomProjectionBaseline(dim=8, seed=2, n_bits=128)
    alone = rp.embed_structures(["CCO"])
    among = rp.embed_structures(["C", "CCO", "c1ccccc1", "CCN"])
    torch.testing.assert_close(alone[0], among[1], atol=1e-6, rtol=1e-6)
    expected = B.random_projection(morgan_fingerprints(SMILES, 128), 8, B.view_seed(2, "structure"))
    torch.testing.assert_close(rp.embed_structures(SMILES), expected, atol=1e-6, rtol=1e-6)
    monkeypatch.setattr(B, "SMILES_CHUNK", 7)  # blocks of SMILES give the same rows
    torch.testing.assert_close(rp.embed_structures(SMILES), expected, atol=1e-6, rtol=1e-6)
    spectra = torch.rand(6, 30, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(rp.embed_raman(spectra[3:4])[0], rp.embed_raman(spectra)[3],
                               atol=1e-6, rtol=1e-6)
    assert rp.embed_structures([]).shape == (0, 8)


def test_random_baseline_is_at_chance_where_cca_recovers_a_planted_relation():
    fp, ir, raman = _planted()
    tr, te = slice(0, 600), slice(600, 900)  # 300 test candidates: chance top-1 is 0.33 %
    cca = B.CCABaseline.fit_features(fp[tr], {"ir": ir[tr], "raman": raman[tr]}, dim=16)
    rp = B.RandomProjectionBaseline(dim=64, seed=0, n_bits=256)
    for baseline, learned in ((cca, True), (rp, False)):
        lib = baseline.embed_fingerprints(fp[te])
        fns = R.mode_scorers(lib, {"ir": baseline.embed_ir(ir[te]),
                                   "raman": baseline.embed_raman(raman[te])})
        ids = [str(j) for j in range(300)]
        for mode, fn in fns.items():
            ranks = R.rank_of_truth_scored(fn, ids, ids)
            top1, top10 = topk_accuracy(ranks, 1), topk_accuracy(ranks, 10)
            if learned:
                assert top1 > 0.6, (mode, top1)
            else:  # chance: top-1 0.33 %, top-10 3.3 % (binomial sd ~1 %)
                assert top1 <= 5 / 300 and top10 < 0.08, (mode, top1, top10)


def test_cca_shared_structure_space_combines_complementary_views():
    # IR sees only latent z1, Raman only z2, the fingerprint-like features both
    rng = np.random.default_rng(1)
    n, n_tr = 1200, 900
    z = rng.normal(size=(n, 6))
    fp = z @ rng.normal(size=(6, 40)) + 0.3 * rng.normal(size=(n, 40))
    ir = z[:, :3] @ rng.normal(size=(3, 30)) + 0.8 * rng.normal(size=(n, 30))
    raman = z[:, 3:] @ rng.normal(size=(3, 30)) + 0.8 * rng.normal(size=(n, 30))
    cca = B.CCABaseline.fit_features(fp[:n_tr], {"ir": ir[:n_tr], "raman": raman[:n_tr]}, dim=6)
    lib = cca.embed_fingerprints(fp[n_tr:])
    fns = R.mode_scorers(lib, {"ir": cca.embed_ir(ir[n_tr:]), "raman": cca.embed_raman(raman[n_tr:])})
    ids = [str(j) for j in range(n - n_tr)]
    top1 = {m: topk_accuracy(R.rank_of_truth_scored(fn, ids, ids), 1) for m, fn in fns.items()}
    assert top1["ir+raman library"] > 1.5 * max(top1["ir"], top1["raman"]), top1


def test_cca_one_view_is_plain_cca_with_sqrt_correlation_scaling():
    # naive twin: canonical correlations from eig(Sxx^-1 Sxy Syy^-1 Syx); on the training data
    # each axis pair correlates at rho_k, axes are uncorrelated, and both sides have variance rho_k
    rng = np.random.default_rng(2)
    n = 3000
    z = rng.normal(size=(n, 3))
    x = z @ rng.normal(size=(3, 8)) + rng.normal(size=(n, 8))
    y = z @ rng.normal(size=(3, 6)) + rng.normal(size=(n, 6))
    cca = B.CCABaseline.fit_features(x, {"ir": y}, dim=4, ridge=1e-9)
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc / n, yc.T @ yc / n, xc.T @ yc / n
    m = np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T)
    rho = np.sqrt(np.sort(np.linalg.eigvals(m).real)[::-1][:4])
    np.testing.assert_allclose(cca.strength.numpy(), rho, rtol=1e-4, atol=1e-5)
    g, q = cca.embed_fingerprints(x).double().numpy(), cca.embed_ir(y).double().numpy()
    np.testing.assert_allclose(g.T @ g / n, np.diag(rho), atol=1e-4)
    np.testing.assert_allclose(q.T @ q / n, np.diag(rho), atol=1e-4)
    np.testing.assert_allclose(g.T @ q / n, np.diag(rho ** 2), atol=1e-4)
    with pytest.raises(ValueError, match="fitted on \\['ir'\\].*refit"):
        cca.embed_raman(y)


def test_cca_from_smiles_embeds_any_structures_and_checks_its_inputs():
    rng = np.random.default_rng(3)
    ir, raman = rng.random((len(SMILES), 40)), rng.random((len(SMILES), 40))
    cca = B.CCABaseline.fit(SMILES, ir, raman, dim=4, n_bits=64)
    distractors = ["CCCCCO", "CC(C)(C)C"]  # not in the training set, no spectra
    lib = cca.embed_structures(SMILES + distractors)
    assert lib.shape == (len(SMILES) + 2, 4) and lib.dtype == torch.float32
    torch.testing.assert_close(lib, cca.embed_fingerprints(morgan_fingerprints(SMILES + distractors,
                                                                               64)))
    lib2, queries = B.embed_baseline(cca, SMILES, ir, raman)
    torch.testing.assert_close(lib2, lib[:len(SMILES)])
    assert {k: tuple(v.shape) for k, v in queries.items()} == {"ir": (30, 4), "raman": (30, 4)}
    with pytest.raises(ValueError, match="dim=50 must lie in 1..40"):
        B.CCABaseline.fit(SMILES, ir, raman, dim=50, n_bits=64)
    with pytest.raises(ValueError, match="ir: shape \\(30, 39\\), expected \\(n, 40\\)"):
        cca.embed_ir(ir[:, 1:])
    with pytest.raises(ValueError, match="29 fingerprint rows"):
        B.CCABaseline.fit(SMILES[1:], ir, raman, dim=4, n_bits=64)
    bad = ir.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="raman: contains NaN"):
        cca.embed_raman(bad)
    with pytest.raises(TypeError, match="sequence of SMILES"):
        cca.embed_structures("CCO")


@pytest.mark.parametrize("view", ["ir", "raman"])
def test_cca_recovers_a_planted_pairing_and_is_at_chance_on_shuffled_pairs(view):
    fp, ir, raman = _planted(seed=4)
    spec = {"ir": ir, "raman": raman}[view]
    tr, te = slice(0, 600), slice(600, 900)  # 300 test candidates: chance top-1 is 0.33 %
    ids = [str(j) for j in range(300)]
    shuffle_train = np.random.default_rng(5).permutation(600)
    shuffle_test = np.random.default_rng(6).permutation(300)

    def top(cca: B.CCABaseline, queries: np.ndarray) -> tuple[float, float]:
        ranks = R.rank_of_truth(cca.embed_spectra(view, queries), cca.embed_fingerprints(fp[te]),
                                ids, ids)
        return topk_accuracy(ranks, 1), topk_accuracy(ranks, 10)

    paired = B.CCABaseline.fit_features(fp[tr], {view: spec[tr]}, dim=16)
    assert top(paired, spec[te])[0] > 0.95
    # the fit must learn the pairing: fitted on shuffled training pairs it is at chance ...
    unpaired = B.CCABaseline.fit_features(fp[tr], {view: spec[tr][shuffle_train]}, dim=16)
    top1, top10 = top(unpaired, spec[te])
    assert top1 <= 5 / 300 and top10 < 0.08, (top1, top10)
    # ... and so is the paired fit when the test queries no longer belong to their candidates
    top1, top10 = top(paired, spec[te][shuffle_test])
    assert top1 <= 5 / 300 and top10 < 0.08, (top1, top10)
