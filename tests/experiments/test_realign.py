import numpy as np
import pytest
import torch

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data.datasets import prepare
from vibraclip_core.data.molecules import canonical_identity
from vibraclip_core.data.spectra import Spectrum
from vibraclip_core.experiments.measured_libraries import filtered_ranks
from vibraclip_core.experiments.realign import (kfold_splits, measured_data, realign,
                                                realignment_counts, with_splits)
from vibraclip_core.measured.experimental import MeasuredIR
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.library import CandidateLibrary, unique_rows
from vibraclip_core.training.train import load_model, model_state, train

QUIET = {"enable_progress_bar": False}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    build = tmp_path_factory.mktemp("realign_build")
    cfg = get_config("tiny", n_molecules=60, max_epochs=1, batch_size=16, build_dir=str(build))
    data = prepare(cfg)
    return cfg, data, train(cfg, data, tag="pre", trainer_kwargs=QUIET)


def test_realignment_changes_only_the_last_head_layers(pretrained):
    cfg, data, pre = pretrained
    result = realign(cfg, pre.best_checkpoint, data, tag="re", epochs=2, lr=1e-2,
                     trainer_kwargs=QUIET)
    before, after = model_state(pre.best_checkpoint), model_state(result.run_dir / "last.ckpt")
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    expected = {f"{h}.fc.{p}" for h in ("graph_head", "ir_head", "raman_head")
                for p in ("weight", "bias")}
    # frozen weights AND BatchNorm running statistics are bit-identical
    assert changed == expected
    model = load_model(result.best_checkpoint, expected=cfg)
    assert model.config.trainable == "last_layer"


def test_frozen_encoder_runs_once_and_trains_as_if_it_ran_every_batch(pretrained, monkeypatch):
    import vibraclip_core.training.train as T
    from vibraclip_core.model.vibraclip import GraphEncoder

    cfg, data, pre = pretrained
    # float32 steps: under the fast path the per-batch encoder would run in bf16 while the
    # memoized features are float32, so the two runs would differ by bf16 rounding, not by a bug
    cfg = cfg.replace(fast_train=False)
    calls = []
    original = GraphEncoder.forward

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GraphEncoder, "forward", counting)
    fast = realign(cfg, pre.best_checkpoint, data, tag="re-fast", epochs=2, lr=1e-2,
                   trainer_kwargs=QUIET)
    n_fast = len(calls)
    # at most one pass over train and val (batches of 256; none when an earlier test already
    # memoized the same encoder on the same rows), not 2 epochs x (train + val) batches
    assert n_fast <= 2
    monkeypatch.setattr(T, "frozen_graph_features", lambda *a, **k: {})
    calls.clear()
    slow = realign(cfg, pre.best_checkpoint, data, tag="re-slow", epochs=2, lr=1e-2,
                   trainer_kwargs=QUIET)
    n_batches = 2 * (len(data.splits["train"]) // cfg.batch_size + 1)  # 2 epochs, at least
    assert len(calls) >= n_batches > 2
    a, b = model_state(fast.run_dir / "last.ckpt"), model_state(slow.run_dir / "last.ckpt")
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5, msg=k)


def test_unfreezing_the_heads_moves_more(pretrained):
    cfg, data, pre = pretrained
    result = realign(cfg, pre.best_checkpoint, data, tag="re-heads", epochs=1, lr=1e-2,
                     trainable="heads", trainer_kwargs=QUIET)
    before, after = model_state(pre.best_checkpoint), model_state(result.run_dir / "last.ckpt")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(".projection." in k for k in changed)
    assert not any(k.startswith(("graph_encoder", "ir_encoder", "raman_encoder")) for k in changed)


def test_set_trainable_counts_and_rejects_unknown(pretrained):
    from vibraclip_core.model.vibraclip import VibraCLIP

    cfg, _, _ = pretrained
    model = VibraCLIP(cfg)
    model.set_trainable("last_layer")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 3 * (cfg.latent_dim * cfg.latent_dim + cfg.latent_dim)
    assert "graph_encoder" in model.frozen_parts() and "graph_head" not in model.frozen_parts()
    with pytest.raises(ValueError, match="trainable"):
        model.set_trainable("encoders")


def test_kfold_splits_are_grouped_disjoint_and_cover_everything():
    ids = ["a", "a", "b", "c", "d", "e", "e", "f"]
    folds = kfold_splits(ids, 3, seed=1)
    tests = torch.cat([f["test"] for f in folds]).sort().values
    assert tests.tolist() == list(range(len(ids)))
    for f in folds:
        parts = [set(f[s].tolist()) for s in ("train", "val", "test")]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert len(set().union(*parts)) == len(ids)
        test_ids = {ids[i] for i in parts[2]}
        assert not test_ids & {ids[i] for i in parts[0] | parts[1]}
    with pytest.raises(ValueError, match="folds"):
        kfold_splits(ids, 7)


def fake_record(smiles, centre_cm1):
    x = np.linspace(450, 3990, 3000)
    y = np.exp(-0.5 * ((x - centre_cm1) / 10) ** 2)
    return MeasuredIR(f"{smiles}.jdx", smiles, smiles, canonical_identity(smiles),
                      Spectrum(x, y, "absorbance", f"{smiles}.jdx"))


def test_measured_data_and_library_ranks(pretrained):
    cfg, data, pre = pretrained
    records = [fake_record(s, c) for s, c in (("CCO", 1050), ("CC(C)=O", 1720), ("CC#N", 2250),
                                              ("C1CO1", 870), ("CCO", 1060))]
    measured, dropped = measured_data(records)
    assert dropped == [] and len(measured) == 5
    assert measured.ir.shape == (5, 1750) and float(measured.ir.max()) == 1.0
    assert float(measured.raman.abs().sum()) == 0.0
    assert unique_rows(measured).tolist() == [0, 1, 2, 3]  # ethanol's second spectrum: once
    assert unique_rows(measured, {canonical_identity("CCO")}).tolist() == [1, 2, 3]
    folds = kfold_splits(measured.identity, 3)
    fold = with_splits(measured, folds[0], "fold0")
    assert fold.key.endswith("fold0")
    model = load_model(pre.best_checkpoint).eval()
    library = CandidateLibrary.concat([
        CandidateLibrary.from_rows(measured, torch.tensor([0, 1, 2, 3])),
        CandidateLibrary.from_rows(data, data.splits["test"])]).embed(model, cfg.build_dir)
    n_lib = 4 + len(data.splits["test"])
    assert len(library) == n_lib == len(library.graph_emb)
    assert library.smiles[:4] == measured.smiles[:4]
    assert library.smiles[4:] == [data.smiles[int(i)] for i in data.splits["test"]]
    assert [canonical_identity(s) for s in library.smiles] == library.identity
    with torch.no_grad():
        q = model.encode_ir(measured.ir, measured.standardized_mass())
    ranks = filtered_ranks(q, measured.identity, measured.mass_da, [""] * 5, library, "none")
    assert ranks.shape == (5,) and ((ranks >= 0) & (ranks < n_lib)).all()
    filtered = filtered_ranks(q, measured.identity, measured.mass_da, [""] * 5, library, "mass")
    assert (filtered <= ranks).all()


def test_load_paired_reads_a_user_folder(tmp_path, pretrained):
    from vibraclip_core.measured.prepared import load_paired
    from vibraclip_core.experiments.measured_libraries import paired_identification

    cfg, data, pre = pretrained
    (tmp_path / "molecules.csv").write_text("name,smiles\nethanol,CCO\nacetone,CC(C)=O\n")
    x = np.linspace(500, 3900, 800)
    for name, c in (("ethanol", 1050), ("acetone", 1720)):
        for kind in ("ir", "raman"):
            y = np.exp(-0.5 * ((x - c - (0 if kind == "ir" else 30)) / 10) ** 2)
            (tmp_path / f"{name}_{kind}.csv").write_text(
                "\n".join(f"{a:.2f},{b:.5f}" for a, b in zip(x, y)))
    paired = load_paired(tmp_path)
    assert len(paired) == 2 and float(paired.raman.max()) == 1.0
    library = CandidateLibrary.concat([CandidateLibrary.from_rows(paired),
                                       CandidateLibrary.from_rows(data, data.splits["test"])])
    table = paired_identification(load_model(pre.best_checkpoint), paired, library,
                                  cfg.build_dir)
    assert list(table.index) == ["ir", "ir+raman library"] and (table["n"] == 2).all()
    (tmp_path / "acetone_raman.csv").unlink()
    with pytest.raises(FileNotFoundError, match="acetone_raman"):
        load_paired(tmp_path)


def test_realignment_leaves_only_the_heads_last_layers_trainable():
    counts = realignment_counts({"tiny": get_config("tiny")}).loc["tiny"]
    model = VibraCLIP(get_config("tiny"))
    last = sum(p.numel() for h in (model.graph_head, model.ir_head, model.raman_head)
               for p in h.fc.parameters())
    assert counts["trainable"] == last
    assert counts["frozen"] == counts["parameters"] - last > 0
