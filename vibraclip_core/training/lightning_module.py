"""The LightningModule: VibraCLIP + its loss, one `_common_step` for train/val/test, and the
validation retrieval metric on the whole validation set.

Validation top-k ranks every query against every validation molecule: the embeddings of all
processes are gathered (`self.all_gather`) first, so one process and DDP report the same metric
for the same weights (ranking against one shard only would inflate it).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from vibraclip_core.data.augment import AUGMENTED_FRACTION, DEFAULT_RANGES, augment_sticks
from vibraclip_core.model.checkpoints import config_from_hparams, model_state
from vibraclip_core.model.losses import VibraCLIPLoss
from vibraclip_core.model.vibraclip import VibraCLIP, training_autocast
from vibraclip_core.retrieval import metrics
from vibraclip_core.retrieval import scores as retrieval
from vibraclip_core.training.training_path import training_path

VAL_TOPK = (1, 5, 10)


def topk_accuracy(query: torch.Tensor, library: torch.Tensor, ks: tuple[int, ...]) -> dict[int, float]:
    """Fraction of queries whose own row (same index) is among the top-k by cosine similarity."""
    return _topk_from_scorer(retrieval.cosine_scorer(query, library), len(query), ks)


def _topk_from_scorer(scorer: retrieval.ScoreFn, n: int, ks: tuple[int, ...]) -> dict[int, float]:
    ids = [str(i) for i in range(n)]  # row i's truth is library row i
    ranks = retrieval.rank_of_truth_scored(scorer, ids, ids)
    return {k: float(metrics.topk_accuracy(ranks, k)) for k in ks}


def unique_items(gathered: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The rows of `gathered` ({"item_id": (m,), other keys: (m, ...)}) with the first copy of
    each item_id, in item_id order; "item_id" itself is dropped. DistributedSampler pads the
    last shards with copies of the first items, so that every process runs as many batches."""
    ids = gathered["item_id"]
    unique, inverse = torch.unique(ids, return_inverse=True)
    order = torch.arange(len(ids), device=ids.device)
    first = torch.full_like(unique, len(ids)).scatter_reduce_(0, inverse, order, "amin")
    return {k: v.index_select(0, first) for k, v in gathered.items() if k != "item_id"}


class VibraCLIPModule(L.LightningModule):
    """VibraCLIP + its loss; logs each loss term and validation top-k retrieval."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.config = config_from_hparams(config)
        self.model = VibraCLIP(self.config)
        if self.config.init_checkpoint:  # realignment: start from pretrained weights
            self.model.load_state_dict(model_state(self.config.init_checkpoint))
        self.model.set_trainable(self.config.trainable)
        self.loss = VibraCLIPLoss(self.config.loss, pair_loss=self.config.pair_loss)
        self._val: list[dict[str, torch.Tensor]] = []  # this process's validation embeddings

    def on_train_epoch_start(self) -> None:
        for name in self.model.frozen_parts():
            getattr(self.model, name).eval()

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        return self.model(batch)

    def _common_step(self, batch: Any, stage: str) -> torch.Tensor:
        # the bf16 path trains in bf16 autocast; validation and test embed in float32
        fast = stage == "train" and training_path(self.config, self.device.type).autocast
        if stage == "train" and (self.config.augment or self.config.second_theory_fraction > 0):
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
            self._val.append({**{k: v.detach() for k, v in emb.items()},
                              "item_id": batch.item_id})
        return terms["total"]

    def _augment(self, batch: Any) -> None:
        """Replace a seeded AUGMENTED_FRACTION of the batch's spectra by perturbed ones; with
        `second_theory_fraction`, first swap that share of the molecules that have a
        second-theory spectrum to it (always replaced, perturbed by `augment` like the rest)."""
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.global_step)
        freqs = batch.sticks_freqs_cm1.cpu()
        ir, raman = batch.sticks_ir.cpu(), batch.sticks_raman.cpu()
        second = None
        if self.config.second_theory_fraction > 0:  # its own generator: other runs unchanged
            theory_gen = torch.Generator().manual_seed(
                self.config.seed * 1_000_003 + self.global_step + 2**40)
            draw = torch.rand(len(freqs), generator=theory_gen)
            second = ((batch.sticks_has_second.cpu().flatten() > 0)
                      & (draw < self.config.second_theory_fraction)).unsqueeze(1)
            freqs = torch.where(second, batch.sticks_second_freqs_cm1.cpu(), freqs)
            ir = torch.where(second, batch.sticks_second_ir.cpu(), ir)
            raman = torch.where(second, batch.sticks_second_raman.cpu(), raman)
        dm = self.trainer.datamodule if self._trainer is not None else None
        ranges = getattr(dm, "augment_ranges", DEFAULT_RANGES)  # the training split's
        ir, raman = augment_sticks(freqs, ir, raman, self.config.augment, self.config.fwhm_cm1,
                                   gen, ranges, self.config.augment_strength)
        pick = (torch.rand(len(freqs), generator=gen) < AUGMENTED_FRACTION).unsqueeze(1)
        if second is not None:  # a second-theory spectrum always replaces the GFN2 input
            pick = pick | second
        batch.ir = torch.where(pick.to(batch.ir.device), ir.to(batch.ir.device), batch.ir)
        batch.raman = torch.where(pick.to(batch.raman.device), raman.to(batch.raman.device),
                                  batch.raman)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "test")

    def validation_embeddings(self) -> dict[str, torch.Tensor]:
        """{"graph", "ir", "raman"}: (n_val, latent_dim) embeddings of the whole validation set
        in dataset order, gathered from every process (and emptied here); {} when none."""
        if not self._val:
            return {}
        local = {k: torch.cat([d[k] for d in self._val]) for k in self._val[0]}
        self._val.clear()
        gathered = self.all_gather(local)  # (world_size, n_local, ...) under DDP
        if self.trainer.world_size > 1:
            gathered = {k: v.flatten(0, 1) for k, v in gathered.items()}
        return unique_items(gathered)

    def on_validation_epoch_end(self) -> None:
        emb = self.validation_embeddings()
        if not emb:
            return
        # the same scores as the test evaluation (vibraclip_core.retrieval.evaluate)
        scorers = {"ir": retrieval.cosine_scorer(emb["ir"], emb["graph"]),
                   "ir_raman": retrieval.library_scorer(emb["graph"], emb["ir"], emb["raman"])}
        for name, scorer in scorers.items():
            for k, acc in _topk_from_scorer(scorer, len(emb["graph"]), VAL_TOPK).items():
                # every process holds the same value: "max" keeps it exact where a mean over
                # three processes could round it
                self.log(f"val_top{k}_{name}", acc, sync_dist=True, reduce_fx="max")

    def configure_optimizers(self) -> dict[str, Any]:
        c = self.config
        # the learnable temperature, unless decay_logit_scale: its own group, no weight decay
        exempt = [] if c.decay_logit_scale else [
            p for p in self.model.logit_scale.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if all(p is not q for q in exempt)],
                   "lr": getattr(c, lr_field)}
                  for lr_field, params in self.model.parameter_groups().items()]
        groups = [g for g in groups if g["params"]] + (
            [{"params": exempt, "lr": c.lr_heads, "weight_decay": 0.0}] if exempt else [])
        opt = torch.optim.AdamW(groups, weight_decay=c.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=c.plateau_factor, patience=c.plateau_patience, min_lr=c.min_lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
