"""Training a config into its run folder with Lightning: `train` (resumable, cached per config
and data) and the callbacks it runs with.

The same code runs on a laptop CPU and on GPU nodes; multi-GPU and multi-node go through
Lightning's DDP strategy (`strategy="ddp"`, `devices=...`, `num_nodes=...`). The pieces live in
`datamodule` (loaders), `lightning_module` (steps, validation retrieval, optimizer), `runs`
(folders, history, locking) and `checkpoints` (loading a finished run's model).
"""

from __future__ import annotations

import csv
import ctypes
import hashlib
import json
import logging
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import lightning as L
import torch

from vibraclip_core.config.profiles import Config
from vibraclip_core.data.datasets import PreparedData, prepare
from vibraclip_core.data.files import atomic_path
from vibraclip_core.data.mass import write_mass_stats
from vibraclip_core.model.checkpoints import load_model, model_state
from vibraclip_core.retrieval.embedding import EmbeddingCache, graph_features
from vibraclip_core.training.datamodule import VibraDataModule, missing_masks
from vibraclip_core.training.lightning_module import VibraCLIPModule
from vibraclip_core.training.runs import (TrainResult, distributed, final_metrics, history_logger,
                                          read_history, run_dir, run_lock)
from vibraclip_core.training.training_path import (RECORD_FILE, TrainingPath, trainer_device,
                                                   training_path, write_record)

# the training API, importable from here as before the split into modules
__all__ = ["FrozenGraphFeatures", "TrainResult", "final_metrics", "frozen_graph_features",
           "load_model", "model_state", "retain_freed_memory", "run_dir", "train"]

log = logging.getLogger(__name__)


def retain_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse in this process; False where there is
    no glibc. Batches change shape every step, and by default glibc returns each large freed
    block to the OS and page-faults a fresh one in at the next allocation: keeping them made a
    CPU training epoch 17 % faster here
    (40.7 -> 33.6 s at the `cpu` size). The process then holds its peak heap until it exits.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))


def frozen_graph_features(module: VibraCLIPModule, data: PreparedData, build_dir: str,
                          cache: EmbeddingCache | None = None) -> dict[str, torch.Tensor]:
    """{"train", "val"}: (n_split, out_channels) graph-encoder outputs of those rows when the
    module's encoder is frozen (realignment), else {}. A frozen encoder gives the same outputs
    every epoch, so they are computed once per run (and once per `cache`), not once per batch."""
    if "graph_encoder" not in module.model.frozen_parts():
        return {}
    out = {s: graph_features(module.model, data, data.splits[s], build_dir, cache=cache)
           for s in ("train", "val")}
    module.model.train()  # graph_features leaves the model in eval mode
    return out


class FrozenGraphFeatures(L.Callback):
    """Gives each training and validation batch its molecules' frozen graph-encoder outputs
    (`batch.graph_feat`, which the model then uses instead of running the encoder), computed
    once at setup by `frozen_graph_features`; does nothing when the encoder trains."""

    def __init__(self, build_dir: str, cache: EmbeddingCache | None = None) -> None:
        self.build_dir, self.cache = build_dir, cache
        self.features: torch.Tensor | None = None  # (n_rows, out_channels), rows of train + val
        self.position: torch.Tensor | None = None  # (len(data),) data row -> row of features

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.datamodule is None:  # loaders given directly: nothing to look rows up in
            return
        data = trainer.datamodule.data
        by_split = frozen_graph_features(pl_module, data, self.build_dir, self.cache)
        if not by_split:
            return
        rows = torch.cat([data.splits[s] for s in by_split])
        self.features = torch.cat(list(by_split.values()))
        self.position = torch.full((len(data),), -1, dtype=torch.long)
        self.position[rows] = torch.arange(len(rows))

    def _attach(self, batch: Any) -> None:
        if self.features is not None:
            at = self.position[batch.row.cpu()]
            batch.graph_feat = self.features[at].to(batch.row.device)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        self._attach(batch)

    def on_validation_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                  batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._attach(batch)


def train(config: Config, data: PreparedData | None = None, tag: str = "", retrain: bool = False,
          trainer_kwargs: dict[str, Any] | None = None,
          has_ir: torch.Tensor | None = None, has_raman: torch.Tensor | None = None,
          extra_callbacks: list[L.Callback] | None = None,
          cache: EmbeddingCache | None = None) -> TrainResult:
    """Train (or load a finished run of) `config`; resumes from last.ckpt after an interruption.

    Missing spectra come from `config.missing_ir` / `missing_raman` (see `missing_masks`), or
    from explicit `has_ir` / `has_raman` masks (then give the run its own `tag`). A frozen graph
    encoder's outputs are computed once, through `cache` when one is given. `fast_train` is
    resolved for the trainer's device first (`training_path`): the run is keyed, trained and
    recorded with the path it takes."""
    path = training_path(config, trainer_device(trainer_kwargs))
    config = config.replace(fast_train=path.fast_train)
    data = data if data is not None else prepare(config)
    # masks given by the caller are not in the config: such a run is its own, never a prefix
    own_masks = has_ir is not None or has_raman is not None
    if has_ir is None and has_raman is None and (config.missing_ir or config.missing_raman):
        has_ir, has_raman = missing_masks(config, data)
    dm = VibraDataModule(config, data, has_ir, has_raman)
    out = run_dir(config, data.key, tag)
    out.mkdir(parents=True, exist_ok=True)
    # two processes asking for the same run (parallel chapters, papermill jobs on a cluster)
    # train it once: the second waits here, then loads the finished run. Not for the ranks of
    # one DDP job: they enter here together and must not wait for each other.
    if distributed(trainer_kwargs):
        callbacks = [FrozenGraphFeatures(config.build_dir, cache), *(extra_callbacks or [])]
        return _train_locked(config, dm, out, retrain, trainer_kwargs, callbacks, path)
    with run_lock(out):
        if not retrain and not own_masks and not (out / "done.json").exists():
            shorter = prefix_result(config, data.key)
            if shorter is not None:
                return shorter
        # a run whose budget is longer than the ablation chapters' keeps its first
        # `ablation_epochs` epochs as that shorter run (see PrefixSnapshot)
        budgets = [] if own_masks else prefix_budgets(config)
        snapshots = [PrefixSnapshot(config, k, prefix_dir(config.replace(max_epochs=k), data.key))
                     for k in budgets]
        snapshots = [snap for snap in snapshots if not (snap.folder / "done.json").exists()]
        with ExitStack() as held:  # a process asking for a shorter run meanwhile waits for it
            for snap in snapshots:
                snap.folder.mkdir(parents=True, exist_ok=True)
                held.enter_context(run_lock(snap.folder))
            callbacks = [FrozenGraphFeatures(config.build_dir, cache), *snapshots,
                         *(extra_callbacks or [])]
            result = _train_locked(config, dm, out, retrain, trainer_kwargs, callbacks, path)
            for snap in snapshots:
                snap.finish(result, data)
        return result


# Shorter runs kept from a longer one: a run of `config` that trains for k < max_epochs epochs
# is the first k epochs of the longer run, bit for bit (the data order, augmentation and
# dropout are seeded per step, and neither the plateau scheduler nor early stopping looks at
# max_epochs), so the longer run keeps its best checkpoint of those epochs as that run.
PREFIX_TAG = "prefix"


def prefix_budgets(config: Config) -> list[int]:
    """Epoch budgets shorter than `config.max_epochs` that a pretraining run of `config` also
    keeps: the ablation chapters' (`ablation_epochs`), so that Chapter 4's all-pairs + mass run
    at that budget is the first epochs of Chapter 2's main run instead of a second training.
    None for a run that continues from a checkpoint (realignment)."""
    k = config.ablation_epochs
    pretraining = config.init_checkpoint is None and config.trainable == "all"
    return [k] if pretraining and k is not None and 0 < k < config.max_epochs else []


def prefix_dir(short: Config, data_key: str) -> Path:
    """build/runs/prefix-<config hash>-<hash of the whole data key>: the shorter run `short`,
    whatever its tag. The whole key: run folders keep its first 12 characters and tell runs
    on subsets of one data set (the learning curve's) apart by their tags, which a shorter
    run asked for under another tag cannot use."""
    digest = hashlib.sha256(data_key.encode()).hexdigest()[:16]
    return Path(short.build_dir) / "runs" / f"{PREFIX_TAG}-{short.digest()}-{digest}"


def prefix_result(config: Config, data_key: str) -> TrainResult | None:
    """The run of `config` as kept by a longer run of the same config (None if none was); while
    such a run is still training, waits for it."""
    folder = prefix_dir(config, data_key)
    if not folder.is_dir():
        return None
    with run_lock(folder):
        done = folder / "done.json"
        if not done.exists():
            return None
        info = json.loads(done.read_text())
    log.info("%s: the first %d epochs of %s", config.digest(), config.max_epochs, info["source"])
    return TrainResult(folder, folder / info["best"], read_history(folder), config)


class PrefixSnapshot(L.Callback):
    """Keeps a run's first `epochs` epochs as the run of the same config with max_epochs =
    `epochs`: the best checkpoint of those epochs, copied with the shorter config in its
    hyperparameters as the next epoch starts (or as training ends, if it stopped early), then,
    in `finish`, those epochs' history, the mass statistics and done.json."""

    def __init__(self, config: Config, epochs: int, folder: Path) -> None:
        self.config, self.epochs, self.folder = config, epochs, folder
        self.short = config.replace(max_epochs=epochs)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # epoch `epochs` starts: ModelCheckpoint's best is the best of the epochs before it
        if trainer.current_epoch == self.epochs:
            self._copy_best(trainer)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # stopped early by epoch `epochs`: the shorter run would have stopped at the same epoch
        if trainer.current_epoch <= self.epochs:
            self._copy_best(trainer)

    def _copy_best(self, trainer: L.Trainer) -> None:
        if trainer.global_rank != 0 or (self.folder / "done.json").exists():
            return  # a finished shorter run is never overwritten
        best = Path(trainer.checkpoint_callback.best_model_path)
        state = torch.load(best, map_location="cpu", weights_only=True)
        state["hyper_parameters"]["config"] = self.short.to_dict()
        with atomic_path(self.folder / "best.ckpt") as tmp:
            torch.save(state, tmp)

    def finish(self, result: TrainResult, data: PreparedData) -> None:
        """Complete the shorter run once the longer one is done (nothing if it was resumed past
        `epochs` without the checkpoint, e.g. a run trained before snapshots existed)."""
        if not (self.folder / "best.ckpt").exists() or (self.folder / "done.json").exists():
            return
        rows = [h for h in result.history if h["epoch"] < self.epochs]
        names = sorted({k for h in rows for k in h} - {"epoch"})
        history = self.folder / "logs" / "version_0" / "metrics.csv"
        history.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(history) as tmp, tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["epoch", *names])
            writer.writeheader()
            writer.writerows(rows)
        self.short.write_json(self.folder / "config.json")
        write_mass_stats(self.folder, data)
        for extra in ("augment_ranges.json", RECORD_FILE):
            if (result.run_dir / extra).exists():
                shutil.copyfile(result.run_dir / extra, self.folder / extra)
        (self.folder / "done.json").write_text(json.dumps(
            {"best": "best.ckpt", "epochs": len(rows), "source": result.run_dir.name}))


def _train_locked(config: Config, dm: VibraDataModule, out: Path, retrain: bool,
                  trainer_kwargs: dict[str, Any] | None,
                  extra_callbacks: list[L.Callback], path: TrainingPath) -> TrainResult:
    done = out / "done.json"
    if done.exists() and not retrain:
        log.info("loading finished run %s", out)
        info = json.loads(done.read_text())
        return TrainResult(out, out / info["best"], read_history(out), config)
    config.write_json(out / "config.json")
    write_record(out, path, trainer_device(trainer_kwargs))
    L.seed_everything(config.seed, workers=True, verbose=False)
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=out, filename="best", monitor="val_loss",
                                               save_last=True)
    stop = L.pytorch.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience)
    # every metric is logged once per epoch: log_every_n_steps only silences the logger's
    # warning about epochs shorter than its default interval
    kwargs = dict(max_epochs=config.max_epochs, callbacks=[ckpt, stop, *extra_callbacks],
                  logger=history_logger(out), log_every_n_steps=1, deterministic=True,
                  enable_model_summary=False, default_root_dir=out, num_sanity_val_steps=0)
    kwargs.update(trainer_kwargs or {})
    trainer = L.Trainer(**kwargs)
    retain_freed_memory()
    last = out / "last.ckpt"
    module = VibraCLIPModule(config.to_dict())
    trainer.fit(module, datamodule=dm, ckpt_path=str(last) if last.exists() else None)
    best = Path(ckpt.best_model_path) if ckpt.best_model_path else last
    if trainer.global_rank == 0:
        write_mass_stats(out, dm.data)  # what `vibraclip identify` needs to standardize masses
        if config.augment:  # the position ranges measured on this run's training split
            dm.augment_ranges.write_json(out / "augment_ranges.json")
        done.write_text(json.dumps({"best": best.name, "epochs": trainer.current_epoch}))
    return TrainResult(out, best, read_history(out), config)
