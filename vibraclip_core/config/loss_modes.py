"""The loss modes: which modality pairs a VibraCLIP loss contrasts, in one table.

The config's `loss` choices, the CLI's `--loss`, the ablation chapter's variants and the losses
(`losses.MODE_TERMS`, `losses.REFERENCE_*`) all derive from LOSS_MODES, so a new mode built from
the existing pairs is one entry here. Torch-free: the config and `vibraclip --help` read it.
"""

from __future__ import annotations

from dataclasses import dataclass

# The modality pairs a loss term can contrast: term name -> (modality, modality)
PAIRS: dict[str, tuple[str, str]] = {
    "graph_ir": ("graph", "ir"),
    "graph_raman": ("graph", "raman"),
    "ir_raman": ("ir", "raman"),
}
# How one pair term is computed: "clip" (cosine CLIP, `losses.clip_loss`) or "reference" (the
# released code's soft-target loss, `losses.reference_loss_terms`)
PAIR_LOSSES = ("clip", "reference")


@dataclass(frozen=True)
class LossMode:
    """A loss mode: its pair terms (the "clip" total is their mean), the released loss's weight
    of each term, the similarity matrices whose mean gives the released loss's soft targets, and
    the label of its ablation variant (Chapter 3)."""

    label: str
    terms: tuple[str, ...]
    # the released total averages its directed terms (graph<->IR, graph<->Raman both ways,
    # IR->Raman one way: 5 in all_pairs, so 2/5, 2/5, 1/5)
    reference_weights: dict[str, float]
    # the matrices x @ y.T whose mean, times the temperature, is row-softmaxed into ONE target
    # matrix shared by all terms (LopezGroup-ICIQ/vibraclip, models/vibraclip_ir*.py)
    reference_targets: tuple[tuple[str, str], ...]

    @property
    def modalities(self) -> frozenset[str]:
        """The modalities its terms need ("graph", "ir", "raman")."""
        return frozenset(m for t in self.terms for m in PAIRS[t])

    @property
    def uses_raman(self) -> bool:
        """Whether a model trained with it has a trained Raman encoder (and takes Raman queries)."""
        return "raman" in self.modalities


# The paper's ablation (Fig. 3A): "graph_ir" = L(G, IR); "graph_centred" = ½[L(G, IR) + L(G, R)];
# "all_pairs" = ⅓[L(G, IR) + L(G, R) + L(IR, R)]
LOSS_MODES: dict[str, LossMode] = {
    "graph_ir": LossMode(
        "IR only (graph–IR)", ("graph_ir",), {"graph_ir": 1.0},
        (("graph", "graph"), ("ir", "ir"))),
    "graph_centred": LossMode(
        "IR + Raman (graph-centred)", ("graph_ir", "graph_raman"),
        {"graph_ir": 0.5, "graph_raman": 0.5},
        (("graph", "graph"), ("ir", "ir"), ("raman", "raman"))),
    "all_pairs": LossMode(
        "IR + Raman, all pairs", ("graph_ir", "graph_raman", "ir_raman"),
        {"graph_ir": 0.4, "graph_raman": 0.4, "ir_raman": 0.2},
        (("graph", "graph"), ("ir", "ir"), ("raman", "raman"), ("ir", "raman"))),
}


def uses_raman(mode: str) -> bool:
    """Whether loss mode `mode` trains the Raman encoder; raises naming the modes if unknown."""
    if mode not in LOSS_MODES:
        raise ValueError(f"loss mode {mode!r} unknown; valid modes: {list(LOSS_MODES)}")
    return LOSS_MODES[mode].uses_raman
