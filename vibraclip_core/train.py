"""Training with Lightning: the data module, the LightningModule and `train` (resumable, cached).

The same code runs on a laptop CPU and on GPU nodes; multi-GPU and multi-node go through
Lightning's DDP strategy (`strategy="ddp"`, `devices=...`, `num_nodes=...`).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import lightning as L
import pandas as pd
import torch
from torch_geometric.loader import DataLoader

from . import retrieval
from .augment import AUGMENTED_FRACTION, augment_sticks, padded_sticks, stick_source
from .config import Config
from .datasets import PreparedData, is_qm9s_folder, prepare
from .losses import VibraCLIPLoss
from .embedding import EmbeddingCache, graph_features
from .graphs import MoleculeDataset, geometry_cache
from .mass import write_mass_stats
from .model import VibraCLIP, training_autocast

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


class VibraDataModule(L.LightningDataModule):
    """Train/val/test loaders over the processed data of a config."""

    def __init__(self, config: Config, data: PreparedData | None = None,
                 has_ir: torch.Tensor | None = None, has_raman: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        self.data = data if data is not None else prepare(config)
        self.geometry = geometry_cache(self.data, config.cutoff_ang, config.build_dir)
        self.has_ir, self.has_raman = has_ir, has_raman
        self.graph_features: dict[str, torch.Tensor] = {}  # split -> frozen encoder outputs
        if config.augment and is_qm9s_folder(config.data_path):
            raise ValueError(f"{config.data_path}: augment={config.augment} perturbs stick "
                             "spectra, and a QM9S folder holds broadened spectra only; train "
                             "it with augment=() (`--augment none`)")
        self.sticks = (padded_sticks(self.data, stick_source(config.data_path))
                       if config.augment else None)

    def dataset(self, split: str) -> MoleculeDataset:
        # masks cover every row: missing-data runs mark training rows only, measured data
        # without Raman marks all of them (so the validation loss ignores the absent spectra)
        return MoleculeDataset(self.data, self.data.splits[split], self.geometry,
                               self.has_ir, self.has_raman, self.graph_features.get(split),
                               self.sticks if split == "train" else None)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        gen = torch.Generator().manual_seed(self.config.seed)
        return DataLoader(self.dataset(split), batch_size=self.config.batch_size, shuffle=shuffle,
                          generator=gen, drop_last=shuffle and len(self.data.splits[split]) >
                          self.config.batch_size)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)


def topk_accuracy(query: torch.Tensor, library: torch.Tensor, ks: tuple[int, ...]) -> dict[int, float]:
    """Fraction of queries whose own row (same index) is among the top-k by cosine similarity."""
    return _topk_from_scorer(retrieval.cosine_scorer(query, library), len(query), ks)


def _topk_from_scorer(scorer: retrieval.ScoreFn, n: int, ks: tuple[int, ...]) -> dict[int, float]:
    ids = [str(i) for i in range(n)]  # row i's truth is library row i
    ranks = retrieval.rank_of_truth_scored(scorer, ids, ids)
    return {k: float(retrieval.topk_accuracy(ranks, k)) for k in ks}


class VibraCLIPModule(L.LightningModule):
    """VibraCLIP + its loss; logs each loss term and validation top-k retrieval."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.config = Config(**{**config, "split_fractions": tuple(config["split_fractions"])})
        self.model = VibraCLIP(self.config)
        if self.config.init_checkpoint:  # realignment: start from pretrained weights
            self.model.load_state_dict(model_state(self.config.init_checkpoint))
        self.model.set_trainable(self.config.trainable)
        self.loss = VibraCLIPLoss(self.config.loss, pair_loss=self.config.pair_loss)
        self._val: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_start(self) -> None:
        for name in self.model.frozen_parts():
            getattr(self.model, name).eval()

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        return self.model(batch)

    def _common_step(self, batch: Any, stage: str) -> torch.Tensor:
        # the fast path trains in bf16 autocast; validation and test embed in float32
        fast = self.config.fast_train and stage == "train"
        if stage == "train" and self.config.augment:
            self._augment(batch)
        with training_autocast(self.device.type, fast):
            emb = self.model(batch)
        emb = {k: v.float() for k, v in emb.items()}
        terms = self.loss(emb, self.model.logit_scale(), has_ir=batch.has_ir,
                          has_raman=batch.has_raman, output_dict=True)
        n = int(batch.num_graphs)
        for name, value in terms.items():
            self.log(f"{stage}_{name}" if name != "total" else f"{stage}_loss", value,
                     batch_size=n, on_epoch=True, on_step=False, prog_bar=name == "total",
                     sync_dist=stage != "train")
        if stage == "val":
            self._val.append({k: v.detach() for k, v in emb.items()})
        return terms["total"]

    def _augment(self, batch: Any) -> None:
        """Replace a seeded AUGMENTED_FRACTION of the batch's spectra by perturbed ones."""
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.global_step)
        freqs = batch.sticks_freqs_cm1.cpu()
        ir, raman = augment_sticks(freqs, batch.sticks_ir.cpu(), batch.sticks_raman.cpu(),
                                   self.config.augment, self.config.fwhm_cm1, gen)
        pick = (torch.rand(len(freqs), generator=gen) < AUGMENTED_FRACTION).unsqueeze(1)
        batch.ir = torch.where(pick.to(batch.ir.device), ir.to(batch.ir.device), batch.ir)
        batch.raman = torch.where(pick.to(batch.raman.device), raman.to(batch.raman.device),
                                  batch.raman)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        emb = {k: torch.cat([d[k] for d in self._val]) for k in self._val[0]}
        self._val.clear()
        # the same scores as the test evaluation (vibraclip_core.evaluate)
        scorers = {"ir": retrieval.cosine_scorer(emb["ir"], emb["graph"]),
                   "ir_raman": retrieval.library_scorer(emb["graph"], emb["ir"], emb["raman"])}
        for name, scorer in scorers.items():
            for k, acc in _topk_from_scorer(scorer, len(emb["graph"]), (1, 5, 10)).items():
                self.log(f"val_top{k}_{name}", acc, sync_dist=True)

    def configure_optimizers(self) -> dict[str, Any]:
        c, m = self.config, self.model
        groups = [
            {"params": list(m.graph_encoder.parameters()), "lr": c.lr_graph},
            {"params": list(m.ir_encoder.parameters()) + list(m.raman_encoder.parameters()),
             "lr": c.lr_spectra},
            {"params": [p for n in ("graph_head", "ir_head", "raman_head", "logit_scale")
                        for p in getattr(m, n).parameters()], "lr": c.lr_heads},
        ]
        groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in groups]
        opt = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=c.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=c.plateau_factor, patience=c.plateau_patience, min_lr=c.min_lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}


class HistoryCallback(L.Callback):
    """Appends each epoch's logged metrics to metrics.jsonl in the run folder (rank 0 only)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # runs after the epoch's validation (and the module's top-k logging) in Lightning 2
        if trainer.global_rank != 0:
            return
        row = {"epoch": trainer.current_epoch,
               **{k: float(v) for k, v in trainer.callback_metrics.items()}}
        with self.path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path
    history: list[dict[str, float]]
    config: Config


def run_dir(config: Config, data_key: str, tag: str = "") -> Path:
    """build/runs/<tag>-<config hash>-<data hash>: one folder per (config, data)."""
    name = f"{tag + '-' if tag else ''}{config.digest()}-{data_key[:12]}"
    return Path(config.build_dir) / "runs" / name


def read_history(path: Path) -> list[dict[str, float]]:
    """Epoch rows of metrics.jsonl; for a resumed run the last row per epoch wins."""
    if not Path(path).exists():
        return []
    rows = {}
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        rows[row["epoch"]] = row
    return [rows[k] for k in sorted(rows)]


def missing_masks(config: Config, data: PreparedData) -> tuple[torch.Tensor, torch.Tensor]:
    """(has_ir, has_raman): (n,) bool over all rows; `config.missing_ir` / `missing_raman` of
    the training rows are marked missing, seeded by `config.seed`, independently per modality.
    Validation and test rows always keep both spectra."""
    masks = []
    for offset, fraction in ((1, config.missing_ir), (2, config.missing_raman)):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"missing fraction {fraction} must lie in [0, 1)")
        keep = torch.ones(len(data), dtype=torch.bool)
        train_rows = data.splits["train"]
        gen = torch.Generator().manual_seed(config.seed * 1000 + offset)
        n_drop = int(round(fraction * len(train_rows)))
        keep[train_rows[torch.randperm(len(train_rows), generator=gen)[:n_drop]]] = False
        masks.append(keep)
    return masks[0], masks[1]


def train(config: Config, data: PreparedData | None = None, tag: str = "", retrain: bool = False,
          trainer_kwargs: dict[str, Any] | None = None,
          has_ir: torch.Tensor | None = None, has_raman: torch.Tensor | None = None,
          extra_callbacks: list[L.Callback] | None = None) -> TrainResult:
    """Train (or load a finished run of) `config`; resumes from last.ckpt after an interruption.

    Missing spectra come from `config.missing_ir` / `missing_raman` (see `missing_masks`), or
    from explicit `has_ir` / `has_raman` masks (then give the run its own `tag`)."""
    data = data if data is not None else prepare(config)
    if has_ir is None and has_raman is None and (config.missing_ir or config.missing_raman):
        has_ir, has_raman = missing_masks(config, data)
    dm = VibraDataModule(config, data, has_ir, has_raman)
    out = run_dir(config, dm.data.key, tag)
    out.mkdir(parents=True, exist_ok=True)
    # two processes asking for the same run (parallel chapters, papermill jobs on a cluster)
    # train it once: the second waits here, then loads the finished run. Not for the ranks of
    # one DDP job: they enter here together and must not wait for each other.
    lock = nullcontext() if _distributed(trainer_kwargs) else run_lock(out)
    with lock:
        return _train_locked(config, dm, out, retrain, trainer_kwargs, extra_callbacks)


def _distributed(trainer_kwargs: dict[str, Any] | None) -> bool:
    """True inside a multi-process launch (DDP ranks, SLURM tasks) or when one is asked for."""
    kw = trainer_kwargs or {}
    return (any(v in os.environ for v in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "SLURM_PROCID"))
            or "ddp" in str(kw.get("strategy", "")) or kw.get("num_nodes", 1) != 1
            or kw.get("devices", 1) not in (1, "1", "auto"))


@contextmanager
def run_lock(run_folder: Path) -> Iterator[None]:
    """Exclusive lock on a run folder (an flock on <run>/.lock), held while it trains."""
    with (Path(run_folder) / ".lock").open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("%s is being trained by another process; waiting for it", run_folder)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _train_locked(config: Config, dm: "VibraDataModule", out: Path, retrain: bool,
                  trainer_kwargs: dict[str, Any] | None,
                  extra_callbacks: list[L.Callback] | None) -> TrainResult:
    done = out / "done.json"
    if done.exists() and not retrain:
        log.info("loading finished run %s", out)
        info = json.loads(done.read_text())
        return TrainResult(out, out / info["best"], read_history(out / "metrics.jsonl"), config)
    config.write_json(out / "config.json")
    L.seed_everything(config.seed, workers=True, verbose=False)
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=out, filename="best", monitor="val_loss",
                                               save_last=True)
    stop = L.pytorch.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience)
    callbacks = [ckpt, stop, HistoryCallback(out / "metrics.jsonl"), *(extra_callbacks or [])]
    kwargs = dict(max_epochs=config.max_epochs, callbacks=callbacks, logger=False, deterministic=True, enable_model_summary=False,
        default_root_dir=out, num_sanity_val_steps=0)
    kwargs.update(trainer_kwargs or {})
    trainer = L.Trainer(**kwargs)
    retain_freed_memory()
    last = out / "last.ckpt"
    module = VibraCLIPModule(config.to_dict())
    dm.graph_features = frozen_graph_features(module, dm.data, config.build_dir)
    trainer.fit(module, datamodule=dm, ckpt_path=str(last) if last.exists() else None)
    best = Path(ckpt.best_model_path) if ckpt.best_model_path else last
    if trainer.global_rank == 0:
        write_mass_stats(out, dm.data)  # what `vibraclip identify` needs to standardize masses
        done.write_text(json.dumps({"best": best.name, "epochs": trainer.current_epoch}))
    return TrainResult(out, best, read_history(out / "metrics.jsonl"), config)


def frozen_graph_features(module: VibraCLIPModule, data: PreparedData, build_dir: str,
                          cache: EmbeddingCache | None = None) -> dict[str, torch.Tensor]:
    """{"train", "val"}: graph-encoder outputs of those rows when the module's encoder is frozen
    (realignment), else {}. A frozen encoder gives the same outputs every epoch, so they are
    computed once per run (and once per `cache`) instead of once per batch."""
    if "graph_encoder" not in module.model.frozen_parts():
        return {}
    out = {s: graph_features(module.model, data, data.splits[s], build_dir, cache=cache)
           for s in ("train", "val")}
    module.model.train()  # graph_features leaves the model in eval mode
    return out


def model_state(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The VibraCLIP weights of a Lightning checkpoint (weights_only load)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if "state_dict" not in state:
        raise ValueError(f"{checkpoint}: not a VibraCLIP Lightning checkpoint (no state_dict)")
    return {k.removeprefix("model."): v for k, v in state["state_dict"].items()
            if k.startswith("model.")}


def load_model(checkpoint: Path, expected: Config | None = None) -> VibraCLIP:
    """The VibraCLIP model of a checkpoint (weights_only load); with `expected`, a config whose
    model fields differ raises a ValueError naming them."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hp = state.get("hyper_parameters", {}).get("config")
    if hp is None:
        raise ValueError(f"{checkpoint}: no VibraCLIP config in the checkpoint")
    config = Config(**{**hp, "split_fractions": tuple(hp["split_fractions"])})
    if expected is not None:
        model_fields = ("hidden_channels", "out_channels", "num_blocks", "int_emb_size",
                        "basis_emb_size", "out_emb_channels", "num_spherical", "num_radial",
                        "cutoff_ang", "spectra_hidden", "spectra_out", "latent_dim", "mass")
        diff = {f: (getattr(config, f), getattr(expected, f)) for f in model_fields
                if getattr(config, f) != getattr(expected, f)}
        if diff:
            raise ValueError(f"{checkpoint}: trained with another model config; mismatched "
                             f"fields (checkpoint, expected): {diff}")
    model = VibraCLIP(config)
    model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()
                           if k.startswith("model.")})
    return model.eval()


def final_metrics(result: TrainResult) -> dict[str, float]:
    """Validation metrics of the best epoch (lowest val_loss) of a run."""
    rows = [h for h in result.history if "val_loss" in h]
    if not rows:
        raise ValueError(f"{result.run_dir}: no validation metrics recorded")
    return min(rows, key=lambda h: h["val_loss"])


def make_training_step(config: Config, model: VibraCLIP, batch: Any) -> Callable[[], None]:
    """One optimisation step (forward + backward + AdamW, lr 1e-4) of `model` on `batch`, on
    `config`'s path (`fast_train`) and the batch's device; for timing, not for training."""
    device = batch.z.device.type
    loss_fn = VibraCLIPLoss(config.loss, pair_loss=config.pair_loss)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad()
        with training_autocast(device, config.fast_train):
            emb = model(batch)
        loss_fn({k: v.float() for k, v in emb.items()}, model.logit_scale()).backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def time_training_step(config: Config, data: PreparedData, reps: int = 2) -> float:
    """Seconds per optimisation step (forward + backward + AdamW) on one training batch of
    `config.batch_size` molecules, at `config`'s model size and path (`fast_train`), after one
    warm-up step, in deterministic mode as the trainer runs it; weights seeded by config.seed."""
    import time

    geo = geometry_cache(data, config.cutoff_ang, config.build_dir)
    ds = MoleculeDataset(data, data.splits["train"][:config.batch_size], geo)
    batch = next(iter(DataLoader(ds, batch_size=config.batch_size)))
    torch.manual_seed(config.seed)
    step = make_training_step(config, VibraCLIP(config).train(), batch)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        step()
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        return (time.perf_counter() - t0) / reps
    finally:
        torch.use_deterministic_algorithms(deterministic)


def step_time_table(configs: dict[str, Config], data: PreparedData, reps: int = 1
                    ) -> pd.DataFrame:
    """Seconds per training step of each named config on the exact path (float32, PyG's
    blocks) and on the fast path (`fast_train`), same weights and batch, and their ratio."""
    rows = {}
    for name, cfg in configs.items():
        exact = time_training_step(cfg.replace(fast_train=False), data, reps)
        fast = time_training_step(cfg.replace(fast_train=True), data, reps)
        rows[name] = {"exact path, s/step": exact, "fast path, s/step": fast,
                      "speed-up": exact / fast}
    return pd.DataFrame(rows).T
