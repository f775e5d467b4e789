"""A model exported to a folder (`models/` ships one): float16 safetensors weights, the run's
config, its training mass statistics and a manifest that names the run it came from. Written by
`app.shipped.export_model`; read here, below the layers that evaluate and realign it.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file

from vibraclip_core.config.profiles import Config
from vibraclip_core.data.mass import MassStats, mass_stats_for
from vibraclip_core.model.checkpoints import CheckpointError, check_finite
# the folder's file names, its manifest and the integrity check live torch-free in `manifest`
from vibraclip_core.model.manifest import (CONFIG_FILE, MANIFEST_FILE, MODELS_DIR, WEIGHTS_FILE,
                                           ShippedModelError, exported_run, manifest,
                                           verify_exported)
from vibraclip_core.model.vibraclip import VibraCLIP

__all__ = ["CONFIG_FILE", "MANIFEST_FILE", "MODELS_DIR", "WEIGHTS_FILE", "ShippedModelError",
           "exported_run", "load_shipped_model", "manifest", "verify_exported"]


def load_shipped_model(folder: str | Path = MODELS_DIR) -> tuple[VibraCLIP, MassStats | None]:
    """(model in eval mode with float32 weights, its training mass statistics or None).

    The files are checked against the manifest's sha256 first (`manifest.verify_exported`): a
    damaged or changed file, or a missing manifest, raises ShippedModelError naming the file."""
    folder = Path(folder)
    weights, cfg_path = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    for p in (weights, cfg_path):
        if not p.is_file():
            raise ShippedModelError(f"{p}: missing; the shipped model is incomplete (restore "
                                    "models/ from git, or pass --checkpoint)")
    verify_exported(folder)  # before any weight is read: damage is named as damage
    try:
        raw = json.loads(cfg_path.read_text())
        config = Config.from_dict(raw)
    except (ValueError, TypeError) as exc:
        raise ShippedModelError(f"{cfg_path}: not a config this code can read ({exc}); "
                                "re-export the model with `vibraclip export-model`") from exc
    model = VibraCLIP(config)
    try:
        state = load_file(weights)
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ShippedModelError(f"{weights}: unreadable ({exc})") from exc
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    shapes = [k for k in set(state) & set(expected) if state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        raise ShippedModelError(
            f"{weights}: does not fit this code's VibraCLIP (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}, other shapes {shapes[:3]}); re-export it with "
            "`vibraclip export-model` from a checkpoint trained with this code")
    try:
        check_finite(state, weights)
    except CheckpointError as exc:
        raise ShippedModelError(str(exc)) from exc
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    stats = mass_stats_for(weights) if config.mass else None
    return model.eval(), stats
