"""Tests for vibraclip_core.model.checkpoints: damaged checkpoint files are named, never a traceback."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from vibraclip_core.app import cli
from vibraclip_core.app.shipped import CONFIG_FILE, WEIGHTS_FILE, ShippedModelError, model_from
from vibraclip_core.config.profiles import get_config
from vibraclip_core.model.checkpoints import CheckpointError, load_model, model_state
from vibraclip_core.model.manifest import MANIFEST_FILE, file_sha256
from vibraclip_core.model.vibraclip import VibraCLIP


def write_checkpoint(path, edit=None):
    """A Lightning-shaped checkpoint of a seeded tiny VibraCLIP; `edit(weights)` damages it."""
    torch.manual_seed(0)
    cfg = get_config("tiny")
    weights = {k: v.clone() for k, v in VibraCLIP(cfg).state_dict().items()}
    if edit:
        edit(weights)
    torch.save({"state_dict": {f"model.{k}": v for k, v in weights.items()},
                "hyper_parameters": {"config": cfg.to_dict()}}, path)
    return path, weights


def test_an_intact_checkpoint_loads_its_weights(tmp_path):
    path, weights = write_checkpoint(tmp_path / "ok.ckpt")
    model = load_model(path)
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[k])
    assert set(model_state(path)) == set(weights)


def _first_key(weights, floating=True):
    return next(k for k, v in weights.items() if v.is_floating_point() == floating and v.ndim)


DAMAGES = {
    "empty": lambda p: p.write_bytes(b""),
    "text": lambda p: p.write_text("epoch,loss\n1,0.5\n"),
    "random": lambda p: p.write_bytes(bytes(range(256)) * 40),
    "pickle": lambda p: p.write_bytes(pickle.dumps([1, 2, 3])),
    "truncated": lambda p: p.write_bytes(write_checkpoint(p)[0].read_bytes()[:5000]),
    "truncated_tail": lambda p: p.write_bytes(write_checkpoint(p)[0].read_bytes()[:-200]),
    "no_state_dict": lambda p: torch.save({"epoch": 3}, p),
    "not_a_dict": lambda p: torch.save(torch.zeros(3), p),
    "other_shape": lambda p: write_checkpoint(
        p, lambda w: w.__setitem__(_first_key(w), torch.zeros(7, 3))),
    "missing_weight": lambda p: write_checkpoint(p, lambda w: w.pop(_first_key(w))),
    "nan": lambda p: write_checkpoint(p, lambda w: w[_first_key(w)].fill_(float("nan"))),
    "inf": lambda p: write_checkpoint(p, lambda w: w[_first_key(w)].view(-1)[0].fill_(
        float("inf"))),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_checkpoints_raise_an_error_naming_the_file(tmp_path, damage):
    path = tmp_path / f"{damage}.ckpt"
    DAMAGES[damage](path)
    with pytest.raises(CheckpointError, match=f"{damage}.ckpt"):
        load_model(path)
    assert issubclass(CheckpointError, ValueError)


@pytest.mark.parametrize("damage", ["random", "truncated", "other_shape", "nan"])
def test_identify_reports_a_damaged_checkpoint_in_one_line(tmp_path, capsys, damage):
    path = tmp_path / f"{damage}.ckpt"
    DAMAGES[damage](path)
    ir = tmp_path / "q.csv"
    ir.write_text("wavenumber,absorbance\n" + "\n".join(f"{x},{(x % 97) / 97}"
                                                         for x in range(500, 4001, 2)))
    with pytest.raises(SystemExit) as exc:
        cli.main(["identify", "--checkpoint", str(path), "--ir", str(ir), "--mass", "58",
                  "--cache-dir", str(tmp_path / "cache")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("vibraclip identify: error: ")
    assert f"{damage}.ckpt" in err and "Traceback" not in err


def test_an_exported_model_with_nan_weights_is_named(tmp_path):
    cfg = get_config("tiny", mass=False)
    weights = {k: v.clone().contiguous() for k, v in VibraCLIP(cfg).state_dict().items()}
    cfg.write_json(tmp_path / CONFIG_FILE)

    def export(weights):  # as export_model writes them: the manifest vouches for the weights
        save_file(weights, tmp_path / WEIGHTS_FILE)
        (tmp_path / MANIFEST_FILE).write_text(json.dumps(
            {"sha256": {WEIGHTS_FILE: file_sha256(tmp_path / WEIGHTS_FILE)}}))
    export(weights)
    assert model_from(tmp_path)[0].config == cfg  # intact: loads
    weights[_first_key(weights)].fill_(float("nan"))
    export(weights)
    with pytest.raises(ShippedModelError, match=f"{WEIGHTS_FILE}: 1 weight tensors hold NaN"):
        model_from(tmp_path)
