import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from torch_geometric.loader import DataLoader

from vibraclip_core.config import get_config
from vibraclip_core.datasets import prepare
from vibraclip_core.model import expand_triplets
from vibraclip_core.molecules import radius_edges, triplets
from vibraclip_core.graphs import MoleculeDataset, geometry_cache
from vibraclip_core.train import (load_model, topk_accuracy,
                                  train)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    build = tmp_path_factory.mktemp("train_build")
    cfg = get_config("tiny", n_molecules=60, max_epochs=2, batch_size=16, build_dir=str(build))
    return cfg, prepare(cfg)


def test_topk_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    q, lib = torch.randn(30, 8, generator=g), torch.randn(30, 8, generator=g)
    lib[:10] = q[:10] + 0.01  # some easy hits
    fast = topk_accuracy(q, lib, (1, 5))
    qn, ln = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(lib, dim=1)
    for k in (1, 5):
        hits = 0
        for i in range(30):
            order = sorted(range(30), key=lambda j: -float(qn[i] @ ln[j]))
            hits += i in order[:k]
        assert fast[k] == pytest.approx(hits / 30)


def test_batched_precomputed_geometry_equals_direct(small):
    cfg, data = small
    geo = geometry_cache(data, cfg.cutoff_ang, cfg.build_dir)
    ds = MoleculeDataset(data, data.splits["train"][:5], geo)
    batch = next(iter(DataLoader(ds, batch_size=5)))
    direct_edges = radius_edges(batch.pos, cfg.cutoff_ang, batch.batch)
    assert set(map(tuple, batch.rg_edge_index.T.tolist())) == set(map(tuple, direct_edges.T.tolist()))
    ours = expand_triplets(batch.rg_edge_index, batch.rg_idx_kj, batch.rg_idx_ji)
    ref = triplets(batch.rg_edge_index, batch.num_nodes)
    as_set = lambda t: set(zip(*(x.tolist() for x in (t[4], t[1], t[0], t[5], t[6]))))
    assert as_set(ours) == as_set(ref) and len(ours[0]) == len(ref[0])


# no progress bars: the bar of the run killed mid-training would stay open and print at exit
QUIET = {"enable_progress_bar": False}


class _Crash(L.Callback):
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 2:
            raise RuntimeError("simulated kill")


def test_train_checkpoint_roundtrip_mismatch_and_resume(small):
    cfg, data = small
    cfg = cfg.replace(max_epochs=3)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(cfg, data, tag="resume", extra_callbacks=[_Crash()], trainer_kwargs=QUIET)
    run = next(p for p in (Path(cfg.build_dir) / "runs").iterdir() if p.name.startswith("resume"))
    assert [json.loads(l)["epoch"] for l in (run / "metrics.jsonl").read_text().splitlines()] == [0, 1]
    result = train(cfg, data, tag="resume", trainer_kwargs=QUIET)  # resumes at epoch 2 from last.ckpt
    assert [r["epoch"] for r in result.history] == [0, 1, 2]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3  # epochs 0-1 not redone
    assert "val_top1_ir" in result.history[-1] and 0 <= result.history[-1]["val_top1_ir"] <= 1
    # checkpoint round trip: same embeddings from the loaded model
    model = load_model(result.best_checkpoint, expected=cfg)
    ds = MoleculeDataset(data, data.splits["val"], geometry_cache(data, cfg.cutoff_ang, cfg.build_dir))
    batch = next(iter(DataLoader(ds, batch_size=8)))
    again = load_model(result.best_checkpoint)
    with torch.no_grad():
        a, b = model(batch), again(batch)
    assert a["graph"].shape == (min(8, len(data.splits["val"])), cfg.latent_dim) and torch.equal(a["ir"], b["ir"])
    with pytest.raises(ValueError, match="latent_dim"):
        load_model(result.best_checkpoint, expected=cfg.replace(latent_dim=64))
    # the run carries the training mass statistics that `vibraclip identify` needs
    from vibraclip_core.mass import mass_stats_for

    stats = mass_stats_for(result.best_checkpoint)
    assert stats.mean_da == pytest.approx(data.mass_mean) and stats.std_da == pytest.approx(data.mass_std)
    # a finished run is loaded, not retrained
    assert train(cfg, data, tag="resume", trainer_kwargs=QUIET).best_checkpoint == result.best_checkpoint


def test_ddp_two_cpu_processes(small):
    cfg, data = small
    cfg = cfg.replace(max_epochs=1)
    single = train(cfg, data, tag="single", trainer_kwargs=QUIET)
    ddp = train(cfg, data, tag="ddp",
                trainer_kwargs=dict(QUIET, strategy="ddp_spawn", accelerator="cpu", devices=2))
    m1, m2 = load_model(single.best_checkpoint), load_model(ddp.best_checkpoint)
    assert m1.parameter_table() == m2.parameter_table()
    assert ddp.history and set(ddp.history[-1]) == set(single.history[-1])


def test_missing_masks_drop_only_training_rows_seeded_and_independent(small):
    from vibraclip_core.train import missing_masks

    cfg, data = small
    cfg = cfg.replace(missing_ir=0.25, missing_raman=0.5)
    has_ir, has_raman = missing_masks(cfg, data)
    tr = data.splits["train"]
    assert int((~has_ir).sum()) == round(0.25 * len(tr))
    assert int((~has_raman).sum()) == round(0.5 * len(tr))
    for split in ("val", "test"):
        assert has_ir[data.splits[split]].all() and has_raman[data.splits[split]].all()
    again = missing_masks(cfg, data)
    assert torch.equal(again[0], has_ir) and torch.equal(again[1], has_raman)
    other = missing_masks(cfg.replace(seed=1), data)
    assert not torch.equal(other[1], has_raman)
    none = missing_masks(cfg.replace(missing_ir=0.0, missing_raman=0.0), data)
    assert none[0].all() and none[1].all()
    with pytest.raises(ValueError, match="missing fraction"):
        missing_masks(cfg.replace(missing_ir=1.0), data)


def test_missing_fraction_gets_its_own_run_folder(small):
    from vibraclip_core.train import run_dir

    cfg, data = small
    assert run_dir(cfg, data.key) != run_dir(cfg.replace(missing_raman=0.1), data.key)


@pytest.mark.parametrize("overrides", [
    {},  # the tiny profile's book values: factor 0.5, patience 1, no floor
    {"plateau_factor": 0.1, "plateau_patience": 5, "min_lr": 1e-6, "lr_graph": 4e-4,
     "lr_spectra": 4e-4, "lr_heads": 4e-4, "weight_decay": 0.1},  # the paper's
])
def test_optimiser_and_scheduler_take_the_config_fields(overrides):
    from vibraclip_core.train import VibraCLIPModule

    cfg = get_config("tiny", **overrides)
    setup = VibraCLIPModule(cfg.to_dict()).configure_optimizers()
    sched, opt = setup["lr_scheduler"]["scheduler"], setup["optimizer"]
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert sched.factor == cfg.plateau_factor and sched.patience == cfg.plateau_patience
    assert sched.min_lrs == [cfg.min_lr] * len(opt.param_groups) == [cfg.min_lr] * 3
    assert [g["lr"] for g in opt.param_groups] == [cfg.lr_graph, cfg.lr_spectra, cfg.lr_heads]
    assert all(g["weight_decay"] == cfg.weight_decay for g in opt.param_groups)
    assert setup["lr_scheduler"]["monitor"] == "val_loss"
    # the plateau rule drives the learning rate: one epoch past patience cuts it by factor
    for loss in [1.0] + [2.0] * (cfg.plateau_patience + 1):
        sched.step(loss)
    assert opt.param_groups[0]["lr"] == pytest.approx(max(cfg.lr_graph * cfg.plateau_factor,
                                                          cfg.min_lr))


def test_training_with_withheld_spectra_runs_through_the_masks(small):
    cfg, data = small
    cfg = cfg.replace(max_epochs=1, missing_ir=0.25, missing_raman=0.5)
    result = train(cfg, data, tag="withheld", trainer_kwargs=QUIET)
    row = result.history[-1]
    assert all(math.isfinite(row[k]) for k in ("train_loss", "train_graph_raman", "val_loss"))


def test_a_run_being_trained_elsewhere_is_waited_for_and_loaded(tmp_path):
    """Two processes asking for one run train it once: the second waits for the lock, then
    loads what the first wrote instead of training again."""
    import json
    import threading
    import time

    from vibraclip_core.train import run_dir, run_lock

    cfg = get_config("tiny", n_molecules=40, max_epochs=1, build_dir=str(tmp_path))
    data = prepare(cfg)
    out = run_dir(cfg, data.key, "locked")
    out.mkdir(parents=True)
    held, released = threading.Event(), []

    def other_process():
        with run_lock(out):
            held.set()
            time.sleep(0.5)
            (out / "done.json").write_text(json.dumps({"best": "best.ckpt", "epochs": 7}))
            released.append(time.perf_counter())

    t = threading.Thread(target=other_process)
    t.start()
    held.wait()
    result = train(cfg, data, tag="locked", trainer_kwargs={"enable_progress_bar": False})
    t.join()
    assert time.perf_counter() >= released[0]  # train returned only after the lock was free
    assert result.best_checkpoint == out / "best.ckpt"  # loaded, not trained
    assert not (out / "last.ckpt").exists() and result.history == []


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\(\)`")
@pytest.mark.parametrize("fast", [True, False])
def test_fast_train_runs_training_steps_in_bf16_and_evaluation_in_float32(small, fast):
    from vibraclip_core.train import VibraCLIPModule

    cfg, data = small
    module = VibraCLIPModule(cfg.replace(fast_train=fast).to_dict())
    assert module.model.graph_encoder.fast_blocks is fast
    ds = MoleculeDataset(data, data.splits["train"][:8], geometry_cache(data, cfg.cutoff_ang,
                                                                         cfg.build_dir))
    batch = next(iter(DataLoader(ds, batch_size=8)))
    seen: list[torch.dtype] = []
    for part in (module.model.graph_encoder.interaction_blocks[0].lin_up,
                 module.model.ir_encoder[0], module.model.graph_head.fc):
        part.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    loss = module._common_step(batch, "train")
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert seen == [torch.bfloat16 if fast else torch.float32] * 3
    seen.clear()
    module._common_step(batch, "val")
    assert seen == [torch.float32] * 3  # validation, checkpoint choice and tests: float32
    assert all(v.dtype == torch.float32 for v in module._val[0].values())
