"""One configuration dataclass and its named profiles (tiny / cpu / paper).

Chapters take the same names as papermill parameters and the CLI as flags, so a papermill job, a
CLI run and an interactive rerun mean the same thing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_DATA_DIR = REPO_ROOT / "data" / "qm9_gfn2"


@dataclass(frozen=True)
class Config:
    """Everything a run depends on. Paths are relative to the working directory unless absolute."""

    profile: str = "cpu"
    seed: int = 0
    # data
    data_dir: str | None = None  # None: the embedded GFN2-xTB QM9 set in data/qm9_gfn2
    n_molecules: int | None = None  # None: all molecules with status ok
    fwhm_cm1: float = 15.0
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    conformer_seed: int = 0
    build_dir: str = "build"
    workers: int = 2
    # model (DimeNet++ graph encoder, MLP spectra encoders, projection heads)
    hidden_channels: int = 128
    out_channels: int = 181
    num_blocks: int = 4
    int_emb_size: int = 64
    basis_emb_size: int = 8
    out_emb_channels: int = 256
    num_spherical: int = 7
    num_radial: int = 6
    cutoff_ang: float = 5.0
    spectra_hidden: int = 1262
    spectra_out: int = 497
    latent_dim: int = 861
    head_dropout: float = 0.1
    # training
    loss: str = "all_pairs"
    pair_loss: str = "clip"  # "clip": cosine CLIP loss; "reference": the released code's variant
    temperature: float | None = None  # None: learnable logit scale; a number fixes it
    mass: bool = True
    # fractions of training molecules whose IR / Raman spectrum is withheld (Chapter 5)
    missing_ir: float = 0.0
    missing_raman: float = 0.0
    batch_size: int = 128
    # the fast training path: bf16 autocast for the encoders and heads during training steps
    # (loss, similarities, validation and every embedding stay float32), gathers by
    # index_select and an in-place spherical basis; False trains in float32 through PyG's own
    # DimeNet++ block forwards (model.GraphEncoder)
    fast_train: bool = True
    # perturbations of the training sticks before broadening (augment.TRANSFORMS; () = none):
    # band positions, widths, intensities, baseline, noise and instrument range, so the model
    # meets other levels of theory and measured spectra (Chapter 6)
    augment: tuple[str, ...] = ()
    max_epochs: int = 200
    patience: int = 15
    lr_graph: float = 1e-4
    lr_spectra: float = 1e-4
    lr_heads: float = 1e-3
    weight_decay: float = 1e-4
    # ReduceLROnPlateau on val_loss: lr *= plateau_factor after plateau_patience epochs without
    # improvement, never below min_lr. The class defaults are those every run before these fields
    # existed trained with (factor 0.5, patience 15 // 3, no floor), so an older config.json or
    # checkpoint rebuilds as it ran; the profiles set all three explicitly.
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    min_lr: float = 0.0
    # realignment: start from this checkpoint's weights and train only `trainable`
    init_checkpoint: str | None = None
    trainable: str = "all"  # "all" | "heads" | "last_layer"
    # epochs of the many trainings of the ablation chapters (3-5); None: max_epochs
    ablation_epochs: int | None = None
    # Chapter 5's fractions of training spectra withheld; Chapter 2's reference-loss comparison
    missing_fractions: tuple[float, ...] = (0.0, 0.05, 0.10, 0.15, 0.20, 0.50)
    compare_reference_loss: bool = True
    # candidate libraries beyond the test split (the test structures + QM9 distractors):
    # `library_size` is the second column of Chapters 2-5 (the paper's test library, 12,739),
    # `library_curve_sizes` the sizes of Chapter 2's accuracy-against-library-size curve
    library_size: int = 12_739
    library_curve_sizes: tuple[int, ...] = (3_000, 12_739, 40_000, 130_831)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # JSON (config.json, a CLI flag, papermill) gives lists: tuples keep equality and digest
        if isinstance(self.missing_fractions, (int, float)):
            raise ValueError(f"missing_fractions={self.missing_fractions!r}: give a sequence of "
                             "fractions in [0, 1), e.g. (0.0, 0.5)")
        object.__setattr__(self, "split_fractions", tuple(self.split_fractions))
        object.__setattr__(self, "missing_fractions",
                           tuple(float(f) for f in self.missing_fractions))
        object.__setattr__(self, "augment", tuple(str(a) for a in self.augment))
        object.__setattr__(self, "library_curve_sizes",
                           tuple(int(n) for n in self.library_curve_sizes))

    def replace(self, **overrides: Any) -> "Config":
        """A copy with some fields changed; unknown names raise with the list of valid ones."""
        valid = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; valid fields: {sorted(valid)}")
        return dataclasses.replace(self, **overrides)

    def for_ablation(self) -> "Config":
        """This config with the ablation chapters' epoch budget (`ablation_epochs`)."""
        return self.replace(max_epochs=self.ablation_epochs or self.max_epochs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def digest(self, *fields: str) -> str:
        """Short stable hash of the named fields (when none are named: every field that can
        change a training run, i.e. all but ANALYSIS_FIELDS)."""
        d = self.to_dict()
        d = {k: d[k] for k in fields} if fields else {
            k: v for k, v in d.items() if k not in ANALYSIS_FIELDS
            and not (k in NEUTRAL_WHEN_ABSENT and v == NEUTRAL_WHEN_ABSENT[k])}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else EMBEDDED_DATA_DIR

    def write_json(self, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, default=str))


# Fields that choose what the chapters evaluate, not how a model trains: left out of the run
# digest, so changing them never retrains a model
ANALYSIS_FIELDS = ("missing_fractions", "compare_reference_loss", "library_size",
                   "library_curve_sizes")

# Fields added after runs were trained, left out of the run digest at the value that means "not
# used", so runs trained before the field existed keep their folders
NEUTRAL_WHEN_ABSENT: dict[str, Any] = {"augment": ()}

# The optimisation of the CPU profiles, as the book's numbers were computed with it (plateau
# patience was max(1, patience // 3) before it was a field: 1 for both profiles)
_BOOK_OPTIMISATION = dict(seed=0, lr_graph=1e-4, lr_spectra=1e-4, lr_heads=1e-3,
                          weight_decay=1e-4, head_dropout=0.1, plateau_factor=0.5,
                          plateau_patience=1, min_lr=0.0)

PROFILES: dict[str, dict[str, Any]] = {
    # seconds per chapter: used by `make test` through nbval
    "tiny": dict(n_molecules=300, hidden_channels=16, out_channels=16, num_blocks=1,
                 int_emb_size=8, basis_emb_size=4, out_emb_channels=16, spectra_hidden=64,
                 spectra_out=32, latent_dim=32, batch_size=32, max_epochs=2, patience=2,
                 workers=1, ablation_epochs=1, **_BOOK_OPTIMISATION,
                 missing_fractions=(0.0, 0.5), compare_reference_loss=True,
                 library_size=200, library_curve_sizes=(100, 200, 400)),
    # the `make book` default: the whole book within an hour on 2 CPU cores; Chapter 5 keeps
    # the ends of the paper's fractions (each point beyond 0 % is two trainings)
    "cpu": dict(n_molecules=None, hidden_channels=64, out_channels=128, num_blocks=2,
                int_emb_size=32, basis_emb_size=8, out_emb_channels=128, cutoff_ang=4.0,
                spectra_hidden=1262, spectra_out=497, latent_dim=256, batch_size=128,
                max_epochs=12, patience=5, ablation_epochs=8, **_BOOK_OPTIMISATION,
                missing_fractions=(0.0, 0.5), compare_reference_loss=True,
                # the curve stops where the hour does; Chapter 2 states the cost of the rest
                library_curve_sizes=(3_000, 12_739, 40_000)),
    # the released configuration (configs/config.yaml, main_ir_raman.py and the models'
    # configure_optimizers of LopezGroup-ICIQ/vibraclip), for GPU nodes
    "paper": dict(seed=42, lr_graph=4e-4, lr_spectra=4e-4, lr_heads=4e-4, weight_decay=0.1,
                  plateau_factor=0.1, plateau_patience=5, min_lr=1e-6, head_dropout=0.0,
                  batch_size=128, max_epochs=200, patience=15,
                  missing_fractions=(0.0, 0.05, 0.10, 0.15, 0.20, 0.50),
                  compare_reference_loss=True),
}

# Fields whose departures from the released configuration a chapter should state and justify
PAPER_COMPARED_FIELDS = ("lr_graph", "lr_spectra", "lr_heads", "weight_decay", "plateau_factor",
                         "plateau_patience", "min_lr", "head_dropout", "seed", "batch_size",
                         "max_epochs", "patience")

# Why the book's CPU profiles depart from the released configuration (Chapter 2 prints these
# beside the values, from `departures_from_paper`)
DEPARTURE_REASONS = {
    **{f: "this book's optimiser settings for short CPU runs, chosen before the released "
          "configuration was read and kept so the book's numbers stay comparable between "
          "versions; not yet compared with the released values at this budget"
       for f in ("lr_graph", "lr_spectra", "lr_heads", "weight_decay", "plateau_factor",
                 "plateau_patience", "min_lr", "head_dropout")},
    "seed": "the book's seed; the released code seeds with 42",
    "max_epochs": "a budget that fits the whole book into an hour on 2 CPU cores",
    "patience": "early stopping shortened with the epoch budget",
    "batch_size": "a smaller batch for the tiny test profile",
}


def get_config(profile: str = "cpu", **overrides: Any) -> Config:
    """The named profile with overrides; None-valued overrides keep the profile's value."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    base = Config(profile=profile).replace(**PROFILES[profile])
    return base.replace(**{k: v for k, v in overrides.items() if v is not None})


def departures_from_paper(config: Config) -> dict[str, tuple[Any, Any]]:
    """{field: (config's value, `paper` profile's value)} for the optimisation and
    regularisation fields (PAPER_COMPARED_FIELDS) where `config` differs from the paper."""
    paper = get_config("paper")
    return {f: (getattr(config, f), getattr(paper, f)) for f in PAPER_COMPARED_FIELDS
            if getattr(config, f) != getattr(paper, f)}
