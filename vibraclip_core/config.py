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
    max_epochs: int = 200
    patience: int = 15
    lr_graph: float = 1e-4
    lr_spectra: float = 1e-4
    lr_heads: float = 1e-3
    weight_decay: float = 1e-4
    # realignment: start from this checkpoint's weights and train only `trainable`
    init_checkpoint: str | None = None
    trainable: str = "all"  # "all" | "heads" | "last_layer"
    # epochs of the many trainings of the ablation chapters (3-5); None: max_epochs
    ablation_epochs: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **overrides: Any) -> "Config":
        """A copy with some fields changed; unknown names raise with the list of valid ones."""
        valid = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; valid fields: {sorted(valid)}")
        if "split_fractions" in overrides:
            overrides["split_fractions"] = tuple(overrides["split_fractions"])
        return dataclasses.replace(self, **overrides)

    def for_ablation(self) -> "Config":
        """This config with the ablation chapters' epoch budget (`ablation_epochs`)."""
        return self.replace(max_epochs=self.ablation_epochs or self.max_epochs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def digest(self, *fields: str) -> str:
        """Short stable hash of the named fields (all fields when none are named)."""
        d = self.to_dict()
        if fields:
            d = {k: d[k] for k in fields}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else EMBEDDED_DATA_DIR

    def write_json(self, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, default=str))


PROFILES: dict[str, dict[str, Any]] = {
    # seconds per chapter: used by `make test` through nbval
    "tiny": dict(n_molecules=300, hidden_channels=16, out_channels=16, num_blocks=1,
                 int_emb_size=8, basis_emb_size=4, out_emb_channels=16, spectra_hidden=64,
                 spectra_out=32, latent_dim=32, batch_size=32, max_epochs=2, patience=2,
                 workers=1, ablation_epochs=1),
    # the `make book` default: the whole book within an hour on 2 CPU cores
    "cpu": dict(n_molecules=None, hidden_channels=64, out_channels=128, num_blocks=2,
                int_emb_size=32, basis_emb_size=8, out_emb_channels=128, cutoff_ang=4.0,
                spectra_hidden=1262, spectra_out=497, latent_dim=256, batch_size=128,
                max_epochs=12, patience=5, ablation_epochs=3),
    # the paper's hyperparameters, for GPU nodes
    "paper": dict(),
}


def get_config(profile: str = "cpu", **overrides: Any) -> Config:
    """The named profile with overrides; None-valued overrides keep the profile's value."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    base = Config(profile=profile).replace(**PROFILES[profile])
    return base.replace(**{k: v for k, v in overrides.items() if v is not None})
