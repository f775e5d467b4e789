import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch_geometric.loader import DataLoader

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data.datasets import prepare
from vibraclip_core.data.graphs import MoleculeDataset, geometry_cache, geometry_cache_path
from vibraclip_core.data.molecules import radius_edges, triplets
from vibraclip_core.model.dimenet import expand_triplets
from vibraclip_core.training.datamodule import VibraDataModule, missing_masks
from vibraclip_core.training.lightning_module import VibraCLIPModule, topk_accuracy, unique_items
from vibraclip_core.training.runs import read_history, run_dir, run_lock
from vibraclip_core.training.train import load_model, model_state, train
from vibraclip_core.training.training_path import recorded_path, training_path


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
    assert [r["epoch"] for r in read_history(run)] == [0, 1]  # CSVLogger wrote as it went
    result = train(cfg, data, tag="resume", trainer_kwargs=QUIET)  # resumes at epoch 2 from last.ckpt
    assert [r["epoch"] for r in result.history] == [0, 1, 2]
    # the second attempt logged epoch 2 only: epochs 0-1 were not redone
    with (run / "logs" / "version_1" / "metrics.csv").open() as fh:
        assert [row["epoch"] for row in csv.DictReader(fh)] == ["2", "2"]  # val row, train row
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
    from vibraclip_core.data.mass import mass_stats_for

    stats = mass_stats_for(result.best_checkpoint)
    assert stats.mean_da == pytest.approx(data.mass_mean) and stats.std_da == pytest.approx(data.mass_std)
    # a finished run is loaded, not retrained
    assert train(cfg, data, tag="resume", trainer_kwargs=QUIET).best_checkpoint == result.best_checkpoint
    # fast_train "auto" was resolved for this machine: keyed, recorded and trained as that path
    path = training_path(cfg, "cpu")
    assert cfg.fast_train == "auto" and result.config.fast_train == path.fast_train
    assert run == run_dir(cfg.replace(fast_train=path.fast_train), data.key, "resume")
    assert json.loads((run / "config.json").read_text())["fast_train"] == path.fast_train
    recorded = recorded_path(run)
    assert (recorded.path, recorded.asked, recorded.reason) == (path.name, "auto", path.reason)


DDP_VALIDATE = """
import json, sys
import lightning as L
from vibraclip_core.config.profiles import get_config
from vibraclip_core.training.datamodule import VibraDataModule
from vibraclip_core.data.datasets import prepare
from vibraclip_core.training.lightning_module import VibraCLIPModule
from vibraclip_core.model.checkpoints import model_state

build, checkpoint, out, devices = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = get_config("tiny", **json.loads(sys.argv[5]), build_dir=build)
module = VibraCLIPModule(cfg.to_dict())
module.model.load_state_dict(model_state(checkpoint))
trainer = L.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
                    logger=False, enable_progress_bar=False, enable_model_summary=False)
metrics = trainer.validate(module, datamodule=VibraDataModule(cfg, prepare(cfg)), verbose=False)[0]
if trainer.global_rank == 0:
    json.dump({**metrics, "world_size": trainer.world_size}, open(out, "w"))
"""


def _validate_in_processes(tmp_path: Path, overrides: dict, checkpoint: Path, devices: int) -> dict:
    """trainer.validate's metrics of `checkpoint`'s weights on `devices` CPU processes (a
    script: Lightning's "ddp" launches further ranks by running the same command again)."""
    script, out = tmp_path / "validate.py", tmp_path / f"metrics-{devices}.json"
    script.write_text(DDP_VALIDATE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("LOCAL_RANK", None)
    subprocess.run([sys.executable, str(script), overrides["build_dir"], str(checkpoint), str(out),
                    str(devices), json.dumps({k: v for k, v in overrides.items()
                                              if k != "build_dir"})],
                   check=True, env=env, timeout=600)
    return json.loads(out.read_text())


def test_validation_retrieval_is_the_same_on_one_process_and_two_ddp_processes(tmp_path):
    # 7 validation molecules: DistributedSampler pads 2 shards of 4 with a copy of item 0, and
    # batches of 3 split each shard; a rank ranking its own shard only would score higher
    overrides = {"n_molecules": 70, "max_epochs": 1, "batch_size": 3, "build_dir": str(tmp_path)}
    cfg = get_config("tiny", **overrides)
    data = prepare(cfg)
    assert len(data.splits["val"]) == 7
    best = train(cfg, data, tag="ddp", trainer_kwargs=QUIET).best_checkpoint
    one = _validate_in_processes(tmp_path, overrides, best, devices=1)
    two = _validate_in_processes(tmp_path, overrides, best, devices=2)
    assert (one["world_size"], two["world_size"]) == (1, 2)
    topk = [k for k in one if k.startswith("val_top")]
    assert len(topk) == 6 and {k: two[k] for k in topk} == {k: one[k] for k in topk}
    assert one["val_top1_ir"] < 1.0  # room for a shard-only ranking to inflate it


def test_unique_items_drops_padding_copies_and_restores_dataset_order():
    # two ranks of a 5-item set in DistributedSampler order (0 2 4 | 1 3 0), item 0 padded twice
    ids = torch.tensor([0, 2, 4, 1, 3, 0])
    emb = torch.tensor([[0.0], [2.0], [4.0], [1.0], [3.0], [9.0]])
    out = unique_items({"item_id": ids, "graph": emb})
    assert list(out) == ["graph"]
    assert out["graph"].flatten().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # the first copy kept


def test_history_joins_an_epochs_rows_and_the_latest_attempt_wins(tmp_path):
    logs = tmp_path / "logs"
    (logs / "version_0").mkdir(parents=True)
    (logs / "version_0" / "metrics.csv").write_text(
        "epoch,step,train_loss,val_loss\n0,3,,2.5\n0,3,3.0,\n1,7,,2.25\n")
    assert read_history(tmp_path) == [{"epoch": 0, "train_loss": 3.0, "val_loss": 2.5},
                                      {"epoch": 1, "val_loss": 2.25}]
    (logs / "version_1").mkdir()  # a resumed attempt redid epoch 1
    (logs / "version_1" / "metrics.csv").write_text(
        "epoch,step,train_loss,val_loss\n1,7,,2.0\n1,7,2.75,\n")
    assert read_history(tmp_path)[1] == {"epoch": 1, "train_loss": 2.75, "val_loss": 2.0}
    assert read_history(tmp_path / "elsewhere") == []


def test_data_module_writes_in_prepare_data_and_reads_in_setup(small):
    cfg, data = small
    path = geometry_cache_path(data, cfg.cutoff_ang, cfg.build_dir)
    path.unlink(missing_ok=True)
    dm = VibraDataModule(cfg, data)
    assert dm.geometry is None and not path.exists()  # the constructor only checks the config
    dm.prepare_data()
    assert path.exists() and dm.geometry is None
    dm.setup("fit")
    geo = geometry_cache(data, cfg.cutoff_ang, cfg.build_dir)
    assert dm.geometry.keys() == geo.keys() and all(torch.equal(dm.geometry[k], geo[k]) for k in geo)
    assert dm.sticks is None  # no augmentation, no sticks
    batches = list(dm.val_dataloader())
    items = torch.cat([b.item_id for b in batches])
    assert items.tolist() == list(range(len(data.splits["val"])))  # positions in the split
    assert torch.equal(torch.cat([b.row for b in batches]), data.splits["val"])


def test_missing_masks_drop_only_training_rows_seeded_and_independent(small):
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
    cfg, data = small
    assert run_dir(cfg, data.key) != run_dir(cfg.replace(missing_raman=0.1), data.key)


@pytest.mark.parametrize("overrides", [
    {},  # the tiny profile's book values: factor 0.5, patience 1, no floor
    {"plateau_factor": 0.1, "plateau_patience": 5, "min_lr": 1e-6, "lr_graph": 4e-4,
     "lr_spectra": 4e-4, "lr_heads": 4e-4, "weight_decay": 0.1},  # the paper's
])
def test_optimiser_and_scheduler_take_the_config_fields(overrides):
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


def test_learnable_temperature_escapes_weight_decay_unless_a_book_run_kept_it():
    exempt = get_config("tiny", decay_logit_scale=False, weight_decay=0.1)
    module = VibraCLIPModule(exempt.to_dict())
    opt = module.configure_optimizers()["optimizer"]
    scale = module.model.logit_scale.log_scale
    holding = [g for g in opt.param_groups if any(p is scale for p in g["params"])]
    assert len(holding) == 1 and holding[0]["params"] == [scale]
    assert holding[0]["weight_decay"] == 0.0 and holding[0]["lr"] == exempt.lr_heads
    others = [g for g in opt.param_groups if g is not holding[0]]
    assert others and all(g["weight_decay"] == 0.1 for g in others)
    n_params = sum(p.numel() for p in module.model.parameters() if p.requires_grad)
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == n_params
    kept = VibraCLIPModule(get_config("tiny").to_dict()).configure_optimizers()["optimizer"]
    assert all(g["weight_decay"] == 1e-4 for g in kept.param_groups)  # the book's CPU runs


def test_training_with_withheld_spectra_runs_through_the_masks(small):
    cfg, data = small
    cfg = cfg.replace(max_epochs=1, missing_ir=0.25, missing_raman=0.5)
    result = train(cfg, data, tag="withheld", trainer_kwargs=QUIET)
    row = result.history[-1]
    assert all(math.isfinite(row[k]) for k in ("train_loss", "train_graph_raman", "val_loss"))


def test_a_run_being_trained_elsewhere_is_waited_for_and_loaded(tmp_path):
    """Two processes asking for one run train it once: the second waits for the lock, then
    loads what the first wrote instead of training again."""
    import threading
    import time

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
@pytest.mark.parametrize("value, fast_blocks, bf16", [("on", True, True), (True, True, True),
                                                     ("float32", True, False),
                                                     ("off", False, False), (False, False, False)])
def test_fast_train_runs_training_steps_in_bf16_and_evaluation_in_float32(small, value,
                                                                          fast_blocks, bf16):
    cfg, data = small
    module = VibraCLIPModule(cfg.replace(fast_train=value).to_dict())
    assert module.model.graph_encoder.fast_blocks is fast_blocks
    ds = MoleculeDataset(data, data.splits["train"][:8], geometry_cache(data, cfg.cutoff_ang,
                                                                         cfg.build_dir))
    batch = next(iter(DataLoader(ds, batch_size=8)))
    seen: list[torch.dtype] = []
    for part in (module.model.graph_encoder.interaction_blocks[0].lin_up,
                 module.model.ir_encoder[0], module.model.graph_head.fc):
        part.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    loss = module._common_step(batch, "train")
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert seen == [torch.bfloat16 if bf16 else torch.float32] * 3
    seen.clear()
    module._common_step(batch, "val")
    assert seen == [torch.float32] * 3  # validation, checkpoint choice and tests: float32
    assert all(module._val[0][k].dtype == torch.float32 for k in ("graph", "ir", "raman"))


def test_a_longer_run_keeps_its_first_epochs_as_the_shorter_run(tmp_path):
    """A run of max_epochs=3 with ablation_epochs=2 leaves the 2-epoch run of the same config:
    asked for, it is loaded instead of trained, and equals a 2-epoch training bit for bit."""
    cfg = get_config("tiny", n_molecules=60, batch_size=16, max_epochs=3, ablation_epochs=2,
                     build_dir=str(tmp_path / "a"))
    data = prepare(cfg)
    long = train(cfg, data, tag="main", trainer_kwargs=QUIET)
    assert len(long.history) == 3
    # the same config on a subset of the training split (a learning-curve point, same data key
    # prefix, its own tag) keeps its own shorter run and leaves the full data's alone
    from vibraclip_core.experiments.learning_curve import nested_subset

    subset = train(cfg, nested_subset(data, 20, seed=0), tag="curve-20", trainer_kwargs=QUIET)
    assert subset.history != long.history
    short_cfg = cfg.for_ablation()
    kept = train(short_cfg, data, tag="ablation", trainer_kwargs=QUIET)
    assert kept.run_dir.name.startswith("prefix-") and kept.run_dir != long.run_dir
    assert not (run_dir(short_cfg, data.key, "ablation") / "last.ckpt").exists()  # not trained
    assert [h["epoch"] for h in kept.history] == [0, 1]
    assert kept.history == long.history[:2]
    assert load_model(kept.best_checkpoint).config.max_epochs == 2
    # the same config trained for 2 epochs on its own, in another build folder
    alone_cfg = short_cfg.replace(build_dir=str(tmp_path / "b"))
    alone = train(alone_cfg, prepare(alone_cfg), tag="ablation", trainer_kwargs=QUIET)
    assert not alone.run_dir.name.startswith("prefix-")
    assert [h["val_loss"] for h in alone.history] == [h["val_loss"] for h in kept.history]
    a, b = model_state(kept.best_checkpoint), model_state(alone.best_checkpoint)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((kept.run_dir / "mass_stats.json").read_text())["mass_mean_da"] == \
        pytest.approx(data.mass_mean)


def test_the_step_table_times_each_path_and_its_speed_up_over_the_exact_one(small):
    from vibraclip_core.training.step_timing import TIMED_PATHS, step_column, step_time_table

    cfg, data = small
    table = step_time_table({"this profile": cfg}, data, reps=1)
    assert [step_column(p) for p in TIMED_PATHS] == [
        "exact path, s/step", "float32 path, s/step", "bf16 path, s/step"]
    row = table.loc["this profile"]
    assert (row[[step_column(p) for p in TIMED_PATHS]] > 0).all()
    for name in ("float32", "bf16"):
        assert row[f"{name} speed-up"] == pytest.approx(
            row["exact path, s/step"] / row[f"{name} path, s/step"])
