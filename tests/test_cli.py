"""Tests for vibraclip_core.cli: flags built from the config fields."""

import argparse
from types import SimpleNamespace

import pytest

from vibraclip_core import chapter, cli
from vibraclip_core.config import FIELD_DOCS, Config, get_config
from vibraclip_core.config_types import AUGMENTATIONS, TRANSFER_AUGMENT
from vibraclip_core.loss_modes import LOSS_MODES


def _train_actions() -> dict[str, argparse.Action]:
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices["train"]._actions}


def test_train_flags_are_the_config_fields_with_their_choices_and_docs():
    actions = _train_actions()
    assert set(cli.TRAIN_FIELDS) <= set(actions)
    assert list(actions["loss"].choices) == list(LOSS_MODES)
    assert list(actions["pair_loss"].choices) == ["clip", "reference"]
    assert list(actions["profile"].choices) == ["tiny", "cpu", "paper"]
    assert actions["profile"].default == "cpu" and actions["loss"].default is None
    assert actions["max_epochs"].type is int and actions["mass"].nargs == 0
    for name in cli.TRAIN_FIELDS:
        assert actions[name].help.startswith(FIELD_DOCS[name].replace("%", "%%"))
    assert {"accelerator", "devices", "strategy", "retrain"} <= set(actions)  # trainer options


def _parsed_config(argv, monkeypatch) -> Config:
    """The config `vibraclip train <argv>` trains (the training itself replaced)."""
    seen = {}

    def fake_train(config, **kwargs):
        seen["config"] = config
        # the book's run folder: `vibraclip train` and Chapter 2 never train the same config twice
        assert kwargs["tag"] == chapter.MAIN_TAG
        return SimpleNamespace(best_checkpoint="best.ckpt")

    monkeypatch.setattr("vibraclip_core.train.train", fake_train)
    monkeypatch.setattr("vibraclip_core.train.final_metrics", lambda result: {})
    cli.main(["train", *argv])
    return seen["config"]


def test_train_flags_override_the_profile(monkeypatch):
    assert _parsed_config([], monkeypatch) == get_config("cpu")
    cfg = _parsed_config(["--profile", "tiny", "--loss", "graph_ir", "--no-mass", "--seed", "3",
                          "--max-epochs", "4", "--pair-loss", "reference", "--no-fast-train"],
                         monkeypatch)
    assert cfg == get_config("tiny", loss="graph_ir", mass=False, seed=3, max_epochs=4,
                             pair_loss="reference", fast_train=False)


@pytest.mark.parametrize("text, expected", [("all", AUGMENTATIONS), ("none", ()), ("", ()),
                                            ("transfer", TRANSFER_AUGMENT),
                                            ("scale, width", ("scale", "width"))])
def test_augment_flag_takes_presets_and_lists(text, expected, monkeypatch):
    assert _parsed_config(["--augment", text], monkeypatch).augment == expected
    assert cli._sequence_text("augment", expected) in (text, "none", "scale,width")


def test_bad_choices_exit_with_the_allowed_values(capsys):
    for argv in (["--loss", "graph_raman"], ["--augment", "scale,blur"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(["train", *argv])
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "graph_centred" in err and "'blur'" in err and "transfer" in err


def test_identify_defaults_are_the_config_defaults():
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    ide = {a.dest: a for a in sub.choices["identify"]._actions}
    assert ide["mass_tol"].default == Config.mass_tol_da == 0.5
    assert (ide["laser_nm"].default, ide["temperature_k"].default) == (532.0, 298.0)
