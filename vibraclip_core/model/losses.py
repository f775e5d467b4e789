"""Contrastive losses: a symmetric CLIP loss per modality pair and VibraCLIP's pair averages.

Modes (the paper's ablation, defined in `loss_modes.LOSS_MODES`): "graph_ir" = L(G, IR);
"graph_centred" = ½[L(G, IR) + L(G, R)]; "all_pairs" = ⅓[L(G, IR) + L(G, R) + L(IR, R)]. Each
pair term uses only the molecules that have both of its modalities. pair_loss="reference" is the
released code's variant instead: soft targets shared by all terms, weights 2/5, 2/5, 1/5 in
all_pairs and a one-way IR->Raman term (`reference_loss_terms`).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vibraclip_core.config.loss_modes import LOSS_MODES, PAIR_LOSSES, PAIRS

# Per mode, its pair terms (LOSS_MODES)
MODE_TERMS: dict[str, tuple[str, ...]] = {name: m.terms for name, m in LOSS_MODES.items()}
# The released code's temperature: its logits are dot products divided by it
REFERENCE_TEMPERATURE = 141.0


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


# The released code's soft-target loss (LopezGroup-ICIQ/vibraclip, models/vibraclip_ir.py and
# vibraclip_ir_raman.py), per mode (LOSS_MODES): the similarity matrices x @ y.T whose mean,
# times the temperature, is row-softmaxed into ONE target matrix shared by all terms, and the
# weight of each pair term in the total
REFERENCE_TARGET_SIMILARITIES: dict[str, tuple[tuple[str, str], ...]] = {
    name: m.reference_targets for name, m in LOSS_MODES.items()}
REFERENCE_WEIGHTS: dict[str, dict[str, float]] = {
    name: m.reference_weights for name, m in LOSS_MODES.items()}
# Per term, (row modality, column modality, whether the reverse direction is added): the row
# modality's logits take the targets, the reverse direction takes the targets' transpose
# (the released code contrasts the graph pairs both ways and the IR->Raman pair one way)
REFERENCE_DIRECTIONS: dict[str, tuple[str, str, bool]] = {
    name: (y, x, True) if x == "graph" else (x, y, False) for name, (x, y) in PAIRS.items()}


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """0-d mean over rows of -sum_j targets_ij * log_softmax(logits_i)_j; both (m, k)."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def term_masks(has_ir: Tensor | None, has_raman: Tensor | None) -> dict[str, Tensor | None]:
    """Per pair term, the (n,) bool mask of molecules that have both modalities (None: all)."""
    present = {"graph": None, "ir": has_ir, "raman": has_raman}

    def both(x: Tensor | None, y: Tensor | None) -> Tensor | None:
        return y if x is None else x if y is None else x & y

    return {name: both(present[x], present[y]) for name, (x, y) in PAIRS.items()}


def _present_rows(e: Tensor, present: Tensor | None) -> Tensor:
    """(n, d) `e` with the rows of absent molecules set to 0 (gradient 0 there, NaN-safe)."""
    if present is None:
        return e
    return torch.where(present[:, None], e, torch.zeros_like(e))


def reference_target_logits(emb: dict[str, Tensor], pairs: Sequence[tuple[str, str]],
                            present: dict[str, Tensor | None] | None = None) -> Tensor:
    """(n, n) mean of the similarity matrices emb[x] @ emb[y].T over `pairs`, entry (i, j)
    averaging only the matrices for which molecule i has x and molecule j has y.

    present maps a modality to its (n,) bool mask (absent or None: every molecule has it). The
    rows of a missing modality are replaced by zeros before any product (torch.where, so neither
    a placeholder's values nor NaNs reach the result or its gradient) and left out of the mean;
    with nothing missing this is the released code's plain mean.
    """
    present = present or {}
    clean = {m: _present_rows(e, present.get(m)) for m, e in emb.items()}
    total: Tensor | float = 0.0
    count: Tensor | float = 0.0
    for x, y in pairs:
        sim = clean[x] @ clean[y].T
        px, py = present.get(x), present.get(y)
        if px is None and py is None:
            total, count = total + sim, count + 1.0
            continue
        n = sim.size(0)
        rows = torch.ones(n, dtype=torch.bool, device=sim.device) if px is None else px
        cols = torch.ones(n, dtype=torch.bool, device=sim.device) if py is None else py
        valid = rows[:, None] & cols[None, :]
        total = total + torch.where(valid, sim, torch.zeros_like(sim))
        count = count + valid.to(sim.dtype)
    if not isinstance(total, Tensor):
        raise ValueError("reference_target_logits: `pairs` is empty; give at least one (x, y)")
    return total / (count.clamp(min=1.0) if isinstance(count, Tensor) else count)


def reference_targets(target_logits: Tensor, temperature: float = REFERENCE_TEMPERATURE) -> Tensor:
    """(m, m) soft targets: row-softmax of the mean similarity (m, m) times the temperature,
    as the released code does (multiplied, where the logits are divided)."""
    return F.softmax(target_logits * temperature, dim=-1)


def reference_loss_terms(
    emb: dict[str, Tensor], mode: str = "all_pairs", temperature: float = REFERENCE_TEMPERATURE,
    has_ir: Tensor | None = None, has_raman: Tensor | None = None,
) -> dict[str, Tensor]:
    """{term: 0-d loss} of the released code's soft-target loss, on raw (LayerNorm-ed) (n, d)
    embeddings; weight the terms with REFERENCE_WEIGHTS[mode] for its total.

    logits x @ y.T / temperature (no L2 normalisation); targets = reference_targets of
    reference_target_logits(emb, REFERENCE_TARGET_SIMILARITIES[mode]): one matrix for all terms
    (graph_ir: graph, IR; graph_centred: + Raman; all_pairs: + the IR @ Raman.T cross term). A
    graph-spectrum term is ½[H(targets, spectrum->graph) + H(targets.T, graph->spectrum)] (rows
    of targets.T need not sum to 1, as released); the IR-Raman term is H(targets, IR->Raman)
    alone. A term uses only the molecules that have its modalities, restricting the shared
    target logits to them before the softmax; with fewer than 2 such molecules it is an attached
    0. The released temperature of 141 multiplies LayerNorm similarities (|x|² ≈ d), so the
    targets are nearly one-hot and the loss is close to CLIP on dot products at scale 1/141.
    """
    if mode not in REFERENCE_WEIGHTS:
        raise ValueError(f"loss mode {mode!r} unknown; valid modes: {list(REFERENCE_WEIGHTS)}")
    present = {"ir": has_ir, "raman": has_raman}
    for name, mask in present.items():
        if mask is not None:
            _check_mask(mask, emb["graph"].size(0), f"reference loss has_{name}")
    needed = {m for pair in REFERENCE_TARGET_SIMILARITIES[mode] for m in pair}
    used = {m: emb[m] for m in needed}
    target_logits = reference_target_logits(used, REFERENCE_TARGET_SIMILARITIES[mode], present)
    clean = {m: _present_rows(e, present.get(m)) for m, e in used.items()}
    masks = term_masks(has_ir, has_raman)
    terms = {}
    for term in MODE_TERMS[mode]:
        rows, cols, both_ways = REFERENCE_DIRECTIONS[term]
        q, k, s = clean[rows], clean[cols], target_logits
        keep = masks[term]
        if keep is not None:
            q, k, s = q[keep], k[keep], s[keep][:, keep]
        if q.size(0) < 2:
            terms[term] = _zero(clean[rows], clean[cols])
            continue
        targets = reference_targets(s, temperature)
        loss = soft_cross_entropy(q @ k.T / temperature, targets)
        if both_ways:
            loss = (loss + soft_cross_entropy(k @ q.T / temperature, targets.T)) / 2
        terms[term] = loss
    return terms


def reference_clip_loss(a: Tensor, b: Tensor, temperature: float = REFERENCE_TEMPERATURE,
                        mask: Tensor | None = None) -> Tensor:
    """0-d released loss of the IR-only model between graph a (n, d) and spectrum b (n, d):
    reference_loss_terms in mode "graph_ir"; mask (n,) bool keeps the molecules with b."""
    return reference_loss_terms({"graph": a, "ir": b}, "graph_ir", temperature,
                                has_ir=mask)["graph_ir"]


class VibraCLIPLoss(nn.Module):
    """The loss of `mode` from CLIP pair losses ("clip": their average) or the released code's
    soft-target terms ("reference": its weights); forward returns the total or named terms."""

    def __init__(self, mode: str = "all_pairs", pair_loss: str = "clip",
                 temperature: float = REFERENCE_TEMPERATURE) -> None:
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

    term_masks = staticmethod(term_masks)

    def pair(self, a: Tensor, b: Tensor, logit_scale: Tensor | float,
             mask: Tensor | None = None) -> Tensor:
        """0-d CLIP loss of one modality pair (the reference loss is not per pair: see forward)."""
        return clip_loss(a, b, logit_scale, mask)

    def forward(
        self, emb: dict[str, Tensor], logit_scale: Tensor | float,
        has_ir: Tensor | None = None, has_raman: Tensor | None = None, output_dict: bool = False,
    ) -> Tensor | dict[str, Tensor]:
        """0-d total loss, or {term: 0-d loss} for the mode's terms plus "total".

        emb maps "graph" / "ir" / "raman" to (n, d) embeddings; has_ir / has_raman (n,) bool
        mark molecules that have that spectrum (None: all); an absent spectrum's row enters no
        term (the model leaves zeros there). "clip" weights the mode's terms equally, also
        when a term has fewer than 2 usable molecules and contributes 0; "reference" is
        `reference_loss_terms` at `temperature` (logit_scale unused), weighted by
        REFERENCE_WEIGHTS.
        """
        needed = {m for t in self.terms for m in PAIRS[t]}
        if self.pair_loss == "reference":
            needed |= {m for pair in REFERENCE_TARGET_SIMILARITIES[self.mode] for m in pair}
        missing = sorted(needed - set(emb))
        if missing:
            raise ValueError(f"loss mode {self.mode!r} needs embeddings {missing}; "
                             f"got keys {sorted(emb)}")
        if self.pair_loss == "reference":
            terms = reference_loss_terms(emb, self.mode, self.temperature, has_ir, has_raman)
            weights = REFERENCE_WEIGHTS[self.mode]
            total = torch.stack([weights[t] * terms[t] for t in self.terms]).sum()
        else:
            masks = self.term_masks(has_ir, has_raman)
            terms = {t: self.pair(emb[PAIRS[t][0]], emb[PAIRS[t][1]], logit_scale, masks[t])
                     for t in self.terms}
            total = torch.stack(list(terms.values())).mean()
        return {**terms, "total": total} if output_dict else total
