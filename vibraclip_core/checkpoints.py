"""Reading a run's Lightning checkpoints: the VibraCLIP weights and the config they were trained
with, each checkpoint parsed once (`torch.load(..., weights_only=True)`: tensors and plain data,
no pickled code)."""

from __future__ import annotations

from pathlib import Path

import torch

from .config import Config
from .model import VibraCLIP

# the fields that fix the model's shape and inputs: a checkpoint loads only where they agree
MODEL_FIELDS = ("hidden_channels", "out_channels", "num_blocks", "int_emb_size", "basis_emb_size",
                "out_emb_channels", "num_spherical", "num_radial", "cutoff_ang", "spectra_hidden",
                "spectra_out", "latent_dim", "mass")


def config_from_hparams(hp: dict) -> Config:
    """The Config saved by `save_hyperparameters` (JSON-like: tuples come back as lists, which
    Config turns back; fields removed since are dropped: Config.from_dict)."""
    return Config.from_dict(hp)


def _read(checkpoint: str | Path) -> dict:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if "state_dict" not in state:
        raise ValueError(f"{checkpoint}: not a VibraCLIP Lightning checkpoint (no state_dict)")
    return state


def _weights(state: dict) -> dict[str, torch.Tensor]:
    return {k.removeprefix("model."): v for k, v in state["state_dict"].items()
            if k.startswith("model.")}


def model_state(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The VibraCLIP weights of a Lightning checkpoint (weights_only load)."""
    return _weights(_read(checkpoint))


def load_model(checkpoint: str | Path, expected: Config | None = None) -> VibraCLIP:
    """The VibraCLIP model of a checkpoint, in eval mode (weights_only load); with `expected`, a
    config whose model fields (MODEL_FIELDS) differ raises a ValueError naming them."""
    state = _read(checkpoint)
    hp = state.get("hyper_parameters", {}).get("config")
    if hp is None:
        raise ValueError(f"{checkpoint}: no VibraCLIP config in the checkpoint")
    config = config_from_hparams(hp)
    if expected is not None:
        diff = {f: (getattr(config, f), getattr(expected, f)) for f in MODEL_FIELDS
                if getattr(config, f) != getattr(expected, f)}
        if diff:
            raise ValueError(f"{checkpoint}: trained with another model config; mismatched "
                             f"fields (checkpoint, expected): {diff}")
    model = VibraCLIP(config)
    model.load_state_dict(_weights(state))
    return model.eval()
