"""The numbers the chapters' prose cites, computed from the constants and the config that set
them, so that no chapter types a value the code knows (and the sentences built from them). `glue_facts` hands them to myst-nb's
`glue`; a chapter's markdown cites one as {glue:text}`name`."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from vibraclip_core.config.choices import CPU_BOOK_CORES, CPU_BOOK_MINUTES, PAPER_LIBRARY_SIZE
from vibraclip_core.config.loss_modes import LOSS_MODES
from vibraclip_core.config.profiles import Config
from vibraclip_core.data.augment_ranges import XH_THRESHOLD_CM1
from vibraclip_core.data.molecules import FINGERPRINT_BITS, FINGERPRINT_RADIUS
from vibraclip_core.data.ood import MAX_HEAVY, MIN_HEAVY, QM9_MAX_HEAVY
from vibraclip_core.data.simulate import FIELD_GRADIENTS
from vibraclip_core.data.sources import QM9_SIZE
from vibraclip_core.data.spectra import FINE_POINTS, GRID_MAX_CM1, GRID_MIN_CM1, MODEL_POINTS
from vibraclip_core.experiments.ablations import (PUBLISHED_EPOCHS_FIG3A, PUBLISHED_EPOCHS_FIG3B,
                                                  PUBLISHED_MAX_EPOCHS)
from vibraclip_core.model.losses import REFERENCE_TEMPERATURE
from vibraclip_core.retrieval.baselines import CCA_AXES


def _fractions(values) -> str:
    return "/".join(f"{100 * v:g}" for v in values)


def book_facts(config: Config) -> dict[str, str]:
    """{name: text} of every number the chapters' prose cites."""
    offsets = sorted({abs(v) for v in config.wrong_mass_offsets_da})
    return {
        "grid_range": f"{GRID_MIN_CM1:.0f}–{GRID_MAX_CM1:.0f}",
        "fine_points": f"{FINE_POINTS}",
        "model_points": f"{MODEL_POINTS}",
        "split": _fractions(config.split_fractions),
        "ood_split": _fractions(config.ood_split_fractions),
        "wrong_mass": " and ".join(f"±{v:g} Da" for v in offsets),
        "xh_threshold": f"{XH_THRESHOLD_CM1:,.0f}",
        "field_gradients": f"{FIELD_GRADIENTS}",
        "qm9_max_heavy": f"{QM9_MAX_HEAVY}",
        "ood_heavy": f"{MIN_HEAVY}–{MAX_HEAVY}",
        "book_budget": f"{CPU_BOOK_MINUTES} minutes on {CPU_BOOK_CORES} CPU cores",
        "paper_library": f"{PAPER_LIBRARY_SIZE:,}",
        "qm9_size": f"{QM9_SIZE:,}",
        "reference_temperature": f"{REFERENCE_TEMPERATURE:g}",
        "reference_weights": ", ".join(
            str(Fraction(w).limit_denominator(10))
            for w in LOSS_MODES["all_pairs"].reference_weights.values()),
        "fingerprint_bits": f"{FINGERPRINT_BITS}",
        "fingerprint_radius": f"{FINGERPRINT_RADIUS}",
        "cca_axes": f"{CCA_AXES}",
        "realign_lr": f"{config.realign_lr:g}",
        "realign_weight_decay": f"{config.realign_weight_decay:g}",
    }


def glue_facts(config: Config) -> dict[str, Any]:
    """Glue every book fact (myst-nb) without displaying it; returns them."""
    from myst_nb import glue

    facts = book_facts(config)
    for name, text in facts.items():
        glue(name, text, display=False)
    return facts


def ablation_budget_text(config: Config, n_train: int) -> str:
    """Chapter 3's note on its training budget against the paper's (PUBLISHED_*_EPOCHS)."""
    a, b = PUBLISHED_EPOCHS_FIG3A, PUBLISHED_EPOCHS_FIG3B
    head = (f"Each variant trains for at most **{config.max_epochs} epoch(s)** (early stopping "
            f"patience {config.patience}) on the {n_train} training molecules, with the "
            f"`{config.profile}` profile's model sizes. ")
    if config.max_epochs >= PUBLISHED_MAX_EPOCHS:
        return head + (f"This is the paper's budget: at most {PUBLISHED_MAX_EPOCHS} epochs (its "
                       f"runs stopped early at {a[0]}–{a[1]} epochs in Fig. 3A).")
    return head + (
        f"The paper allowed at most {PUBLISHED_MAX_EPOCHS} epochs, and its runs stopped early at "
        f"{a[0]}–{a[1]} epochs (Fig. 3A) and {b[0]}/{b[1]} (Fig. 3B); the `{config.profile}` "
        f"profile shortens these ablation runs so that all chapters together fit in "
        f"{CPU_BOOK_MINUTES} minutes on {CPU_BOOK_CORES} CPU cores, which lowers every accuracy "
        "below what full training reaches. Compare the variants with each other, not with "
        "Chapter 2's longer run. Rerun with `profile = \"paper\"` for full training.")
