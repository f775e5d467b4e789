"""Contrastive losses: a symmetric CLIP loss per modality pair and VibraCLIP's pair averages.

Modes (the paper's ablation): "graph_ir" = L(G, IR); "graph_centred" = ½[L(G, IR) + L(G, R)];
"all_pairs" = ⅓[L(G, IR) + L(G, R) + L(IR, R)]. Each pair term uses only the molecules that
have both of its modalities.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PAIRS: dict[str, tuple[str, str]] = {
    "graph_ir": ("graph", "ir"),
    "graph_raman": ("graph", "raman"),
    "ir_raman": ("ir", "raman"),
}
MODE_TERMS: dict[str, tuple[str, ...]] = {
    "graph_ir": ("graph_ir",),
    "graph_centred": ("graph_ir", "graph_raman"),
    "all_pairs": ("graph_ir", "graph_raman", "ir_raman"),
}
PAIR_LOSSES = ("clip", "reference")


def get_ground_truth(n: int, device: torch.device | None = None) -> Tensor:
    """(n,) long: sample i's positive is column i."""
    return torch.arange(n, device=device, dtype=torch.long)


def get_logits(a: Tensor, b: Tensor, logit_scale: Tensor | float) -> tuple[Tensor, Tensor]:
    """(n, n) logits a->b and b->a: logit_scale * cosine similarity of rows of a (n, d), b (n, d)."""
    logits_ab = logit_scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    return logits_ab, logits_ab.T


def _check_mask(mask: Tensor, n: int, what: str) -> Tensor:
    if mask.dtype != torch.bool or mask.shape != (n,):
        raise ValueError(f"{what}: mask must be a bool tensor of shape ({n},), "
                         f"got {mask.dtype} {tuple(mask.shape)}")
    return mask


def _zero(*tensors: Tensor) -> Tensor:
    """A 0-d zero that stays attached to the graph of `tensors` (so backward() still works)."""
    return sum(t.sum() for t in tensors) * 0.0


def clip_loss(a: Tensor, b: Tensor, logit_scale: Tensor | float,
              mask: Tensor | None = None) -> Tensor:
    """0-d symmetric cross-entropy of scaled cosine similarities between a (n, d) and b (n, d).

    mask (n,) bool keeps only the samples that have both modalities (rows and columns); with
    fewer than 2 such samples the loss is 0 (no negatives), still attached to a and b.
    """
    if mask is not None:
        _check_mask(mask, a.size(0), "clip_loss")
        zero = _zero(a, b)
        a, b = a[mask], b[mask]
    if a.size(0) < 2:
        return zero if mask is not None else _zero(a, b)
    logits_ab, logits_ba = get_logits(a, b, logit_scale)
    labels = get_ground_truth(a.size(0), a.device)
    return (F.cross_entropy(logits_ab, labels) + F.cross_entropy(logits_ba, labels)) / 2


def reference_targets(similarities: Sequence[Tensor], target_temperature: float) -> Tensor:
    """(n, n) soft targets: row-softmax of the mean of the (n, n) similarity matrices / T_target."""
    return F.softmax(torch.stack(list(similarities)).mean(0) / target_temperature, dim=-1)


def reference_clip_loss(
    a: Tensor, b: Tensor, intra: Sequence[Tensor] | None = None, temperature: float = 141.0,
    target_temperature: float | None = None, mask: Tensor | None = None,
) -> Tensor:
    """0-d soft-target loss of the released VibraCLIP code, on raw (LayerNorm-ed) a, b (n, d).

    logits = a @ b.T / temperature (no L2 normalisation); targets = reference_targets(intra,
    target_temperature) with intra = [a @ a.T, b @ b.T] unless given (the released all-pairs
    loss also averages in ir @ raman.T); loss = ½[mean_i H(targets_i, softmax(logits_i)) +
    mean_j H(targets.T_j, softmax(logits.T_j))]. The released code multiplies the mean
    similarity by `temperature` (141), i.e. target_temperature = 1/temperature, the default
    here; with LayerNorm embeddings (|x|² ≈ d) the targets are then one-hot to float precision,
    so this is the CLIP loss on dot products at scale 1/141. Pass target_temperature=temperature
    for the softer variant (targets divided, not multiplied, by the temperature).
    """
    sims = [a @ a.T, b @ b.T] if intra is None else list(intra)
    if mask is not None:
        _check_mask(mask, a.size(0), "reference_clip_loss")
        zero = _zero(a, b)
        a, b = a[mask], b[mask]
        sims = [s[mask][:, mask] for s in sims]
        if a.size(0) < 2:
            return zero
    elif a.size(0) < 2:
        return _zero(a, b)
    t_target = 1.0 / temperature if target_temperature is None else target_temperature
    targets = reference_targets(sims, t_target)
    logits = a @ b.T / temperature
    loss_ab = -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()
    loss_ba = -(targets.T * F.log_softmax(logits.T, dim=-1)).sum(-1).mean()
    return (loss_ab + loss_ba) / 2


class VibraCLIPLoss(nn.Module):
    """Average of pair losses over the pairs of `mode`; forward returns the total or named terms."""

    def __init__(self, mode: str = "all_pairs", pair_loss: str = "clip",
                 temperature: float = 141.0) -> None:
        super().__init__()
        if mode not in MODE_TERMS:
            raise ValueError(f"loss mode {mode!r} unknown; valid modes: {list(MODE_TERMS)}")
        if pair_loss not in PAIR_LOSSES:
            raise ValueError(f"pair_loss {pair_loss!r} unknown; valid: {list(PAIR_LOSSES)}")
        self.mode, self.pair_loss, self.temperature = mode, pair_loss, temperature
        self.terms = MODE_TERMS[mode]

    def get_ground_truth(self, n: int, device: torch.device | None = None) -> Tensor:
        """(n,) long targets of the CLIP pair loss."""
        return get_ground_truth(n, device)

    def get_logits(self, a: Tensor, b: Tensor,
                   logit_scale: Tensor | float) -> tuple[Tensor, Tensor]:
        """(n, n) logits a->b and b->a of the CLIP pair loss."""
        return get_logits(a, b, logit_scale)

    @staticmethod
    def term_masks(has_ir: Tensor | None, has_raman: Tensor | None) -> dict[str, Tensor | None]:
        """Per pair term, the (n,) bool mask of molecules that have both modalities (None: all)."""
        both = has_ir if has_raman is None else has_raman if has_ir is None else has_ir & has_raman
        return {"graph_ir": has_ir, "graph_raman": has_raman, "ir_raman": both}

    def pair(self, a: Tensor, b: Tensor, logit_scale: Tensor | float,
             mask: Tensor | None = None) -> Tensor:
        """0-d loss of one modality pair (clip_loss, or reference_clip_loss at `temperature`)."""
        if self.pair_loss == "reference":  # the released code's fixed temperature; scale unused
            return reference_clip_loss(a, b, temperature=self.temperature, mask=mask)
        return clip_loss(a, b, logit_scale, mask)

    def forward(
        self, emb: dict[str, Tensor], logit_scale: Tensor | float,
        has_ir: Tensor | None = None, has_raman: Tensor | None = None, output_dict: bool = False,
    ) -> Tensor | dict[str, Tensor]:
        """0-d total loss, or {term: 0-d loss} for the mode's terms plus "total".

        emb maps "graph" / "ir" / "raman" to (n, d) embeddings; has_ir / has_raman (n,) bool
        mark molecules that have that spectrum (None: all). The total weights the mode's terms
        equally, also when a term has fewer than 2 usable molecules and contributes 0.
        """
        missing = sorted({m for t in self.terms for m in PAIRS[t]} - set(emb))
        if missing:
            raise ValueError(f"loss mode {self.mode!r} needs embeddings {missing}; "
                             f"got keys {sorted(emb)}")
        masks = self.term_masks(has_ir, has_raman)
        terms = {t: self.pair(emb[PAIRS[t][0]], emb[PAIRS[t][1]], logit_scale, masks[t])
                 for t in self.terms}
        total = torch.stack(list(terms.values())).mean()
        return {**terms, "total": total} if output_dict else total
