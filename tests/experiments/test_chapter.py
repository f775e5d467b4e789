import logging
import os
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vibraclip_core.config.profiles import get_config
from vibraclip_core.experiments import chapter


def test_setup_quiets_lightning_and_gives_the_chapter_config():
    config = chapter.setup("tiny", seed=3, mass=None)
    assert config.seed == 3 and config.mass == get_config("tiny").mass  # None keeps the profile
    assert logging.getLogger("lightning.pytorch").level == logging.ERROR
    short = chapter.setup("tiny", ablation=True, ablation_epochs=1, max_epochs=9)
    assert short.max_epochs == 1
    with pytest.raises(ValueError, match="unknown config field"):
        chapter.setup("tiny", not_a_field=1)


def test_the_record_is_per_profile_and_rewritten_only_when_it_changes(tmp_path):
    params = {"seed": None, "loss": "graph_centred", "mass": False, "max_epochs": 1,
              "data_dir": None}
    path = chapter.record_pretraining("tiny", tmp_path, params)
    chapter.record_pretraining("cpu", tmp_path, {**params, "loss": "all_pairs"})
    os.utime(path, (0, 0))
    chapter.record_pretraining("tiny", tmp_path, dict(params))  # unchanged: not rewritten
    assert path.stat().st_mtime == 0
    assert chapter.pretraining_parameters("tiny", tmp_path) == params
    assert chapter.pretraining_parameters("cpu", tmp_path)["loss"] == "all_pairs"
    with pytest.raises(ValueError, match="not among the parameters"):
        chapter.record_pretraining("tiny", tmp_path, {"batch_size": 3})
    # Chapter 2 has not run under `paper` here: the profile decides, as Chapter 2 would let it
    assert chapter.pretraining_parameters("paper", tmp_path) == {
        k: None for k in chapter.PRETRAINING_PARAMETERS}


@pytest.fixture
def fake_training(monkeypatch):
    """chapter.pretrained_model with training, loading and data replaced by records of calls."""
    trained = []

    def train(config, data, tag, trainer_kwargs):
        trained.append((config, tag))
        return SimpleNamespace(best_checkpoint=f"{tag}-{config.digest()}.ckpt", history=[])

    monkeypatch.setattr(chapter, "train", train)
    monkeypatch.setattr(chapter, "load_model", lambda ckpt, expected=None: ("model", ckpt))
    monkeypatch.setattr(chapter, "prepare", lambda config: SimpleNamespace(key=config.data_dir))
    return trained


def test_later_chapters_get_the_model_of_chapter_2s_parameters(tmp_path, fake_training):
    build = str(tmp_path)
    ch2 = chapter.pretrained_model("tiny", build, seed=None, loss="graph_centred", mass=False,
                                   max_epochs=1, data_dir=None)
    later = chapter.pretrained_model("tiny", build)
    assert later.config == ch2.config and later.checkpoint == ch2.checkpoint
    assert (later.config.loss, later.config.mass, later.config.max_epochs) == (
        "graph_centred", False, 1)
    assert [tag for _, tag in fake_training] == ["main", "main"]
    # another profile in the same build folder keeps Chapter 2's defaults
    assert chapter.pretrained_model("cpu", build).config == get_config("cpu", build_dir=build)
    augmented = later.retrained(augment=("scale",))
    assert augmented.config == ch2.config.replace(augment=("scale",))
    assert augmented.checkpoint != ch2.checkpoint and augmented.data is later.data


def test_percents_dashes_and_epochs():
    assert chapter.percents([0.0, 0.05, 0.5]) == "0, 5, 50"
    shown = chapter.dashes(pd.DataFrame({"a": [1.5, np.nan]}))
    assert shown["a"].tolist() == [1.5, "—"]
    runs = {"x": SimpleNamespace(result=SimpleNamespace(history=[{}] * 3))}
    assert chapter.epochs_trained(runs).loc["x", "epochs trained"] == 3


def test_retrained_uses_an_export_only_when_its_manifest_names_that_very_run(tmp_path):
    """Chapter 6's augmented model: the shipped export when it is the run asked for (float16
    weights as shipped, a realignment can start from them), else a training of its own."""
    import torch

    from vibraclip_core.app.shipped import export_model, load_shipped_model
    from vibraclip_core.data.datasets import prepare
    from vibraclip_core.model.checkpoints import model_state
    from vibraclip_core.training.runs import MAIN_TAG, run_dir
    from vibraclip_core.training.train import load_model, train

    cfg = get_config("tiny", n_molecules=40, max_epochs=1, ablation_epochs=None,
                     build_dir=str(tmp_path / "build"))
    data = prepare(cfg)
    first = train(cfg, data, tag=MAIN_TAG, trainer_kwargs={"enable_progress_bar": False})
    main = chapter.Pretrained(cfg, data, first, load_model(first.best_checkpoint))
    wanted = cfg.replace(augment=("width",))
    folder = tmp_path / "models"
    export_model(first.best_checkpoint, folder,
                 provenance={"run": run_dir(wanted, data.key, MAIN_TAG).name})
    shipped = main.retrained(exported=folder, augment=("width",))
    assert shipped.exported and shipped.checkpoint == folder / "vibraclip.safetensors"
    assert not run_dir(wanted, data.key, MAIN_TAG).exists()  # nothing trained
    as_shipped, _ = load_shipped_model(folder)
    state = model_state(shipped.checkpoint)  # what a realignment starts from: float32
    assert all(torch.equal(state[k], v) for k, v in as_shipped.state_dict().items())
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    # another run asked for: trained, the export left alone
    other = main.retrained(exported=folder, augment=("width",), augment_strength=0.5)
    assert not other.exported and other.result.run_dir.is_dir()
    assert len(other.result.history) == 1
