"""Reading a run's Lightning checkpoints: the VibraCLIP weights and the config they were trained
with, each checkpoint parsed once (`torch.load(..., weights_only=True)`: tensors and plain data,
no pickled code)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from vibraclip_core.config.profiles import Config
from vibraclip_core.model.vibraclip import VibraCLIP

# the fields that fix the model's shape and inputs: a checkpoint loads only where they agree
MODEL_FIELDS = ("hidden_channels", "out_channels", "num_blocks", "int_emb_size", "basis_emb_size",
                "out_emb_channels", "num_spherical", "num_radial", "cutoff_ang", "spectra_hidden",
                "spectra_out", "latent_dim", "mass")


def config_from_hparams(hp: dict) -> Config:
    """The Config saved by `save_hyperparameters` (JSON-like: tuples come back as lists, which
    Config turns back; fields removed since are dropped: Config.from_dict)."""
    return Config.from_dict(hp)


class CheckpointError(ValueError):
    """A checkpoint file that is unreadable, not VibraCLIP's, or holds unusable weights."""


def _read(checkpoint: str | Path) -> dict:
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise  # the OS error already names the file
    except Exception as exc:  # corrupt: RuntimeError, EOFError, UnpicklingError, OSError(22)...
        # the first sentence only: torch goes on to advise weights_only=False, wrong for a user
        first = (str(exc).splitlines() or [""])[0].split(". ")[0][:120]
        raise CheckpointError(f"{checkpoint}: not a readable PyTorch checkpoint, truncated or "
                              f"corrupt ({type(exc).__name__}: {first}); retrain it or point "
                              "--checkpoint at an intact file") from exc
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        raise CheckpointError(f"{checkpoint}: not a VibraCLIP Lightning checkpoint (no "
                              "state_dict)")
    return state


def _weights(state: dict, checkpoint: str | Path) -> dict[str, torch.Tensor]:
    weights = {k.removeprefix("model."): v for k, v in state["state_dict"].items()
               if k.startswith("model.")}
    check_finite(weights, checkpoint)
    return weights


def check_finite(weights: dict[str, torch.Tensor], source: str | Path) -> None:
    """Raise CheckpointError naming `source` when a weight tensor holds NaN or inf (such a model
    scores every candidate NaN)."""
    bad = [k for k, v in weights.items() if isinstance(v, torch.Tensor)
           and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{source}: {len(bad)} weight tensors hold NaN or inf (first: "
                              f"{bad[0]}); the training diverged: use an earlier checkpoint or "
                              "retrain")


def model_state(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The VibraCLIP weights of a Lightning checkpoint (weights_only load), or, float32, of an
    exported model's safetensors file (`model.exported`); CheckpointError when the file is
    unreadable or its weights are not finite."""
    if Path(checkpoint).suffix == ".safetensors":
        try:
            state = load_file(checkpoint)
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise CheckpointError(f"{checkpoint}: unreadable ({exc})") from exc
        check_finite(state, checkpoint)
        return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return _weights(_read(checkpoint), checkpoint)


def load_model(checkpoint: str | Path, expected: Config | None = None) -> VibraCLIP:
    """The VibraCLIP model of a checkpoint, in eval mode (weights_only load); with `expected`, a
    config whose model fields (MODEL_FIELDS) differ raises a ValueError naming them. A file that
    is unreadable, or whose weights do not fit its own config or are not finite, raises a
    CheckpointError (a ValueError) naming it."""
    state = _read(checkpoint)
    hp = (state.get("hyper_parameters") or {}).get("config")
    if not isinstance(hp, dict):
        raise CheckpointError(f"{checkpoint}: no VibraCLIP config in the checkpoint")
    try:
        config = config_from_hparams(hp)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{checkpoint}: its config is not one this code can read ({exc})"
                              ) from exc
    if expected is not None:
        diff = {f: (getattr(config, f), getattr(expected, f)) for f in MODEL_FIELDS
                if getattr(config, f) != getattr(expected, f)}
        if diff:
            raise ValueError(f"{checkpoint}: trained with another model config; mismatched "
                             f"fields (checkpoint, expected): {diff}")
    weights = _weights(state, checkpoint)
    model = VibraCLIP(config)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:  # missing/unexpected keys or other shapes
        what = " ".join(line.strip() for line in str(exc).splitlines()[:3])[:300]
        raise CheckpointError(f"{checkpoint}: its weights do not fit its own config "
                              f"({what}); the file is "
                              "damaged or was edited: retrain or use another checkpoint") from exc
    return model.eval()
