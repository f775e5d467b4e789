"""Tests for vibraclip_core.app.cli: flags built from the config fields."""

import argparse
from pathlib import Path
from types import SimpleNamespace

import pytest

from vibraclip_core.app import cli
from vibraclip_core.config.choices import AUGMENTATIONS, TRANSFER_AUGMENT
from vibraclip_core.config.loss_modes import LOSS_MODES
from vibraclip_core.config.profiles import FIELD_DOCS, Config, get_config
from vibraclip_core.experiments import chapter


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

    monkeypatch.setattr("vibraclip_core.training.train.train", fake_train)
    monkeypatch.setattr("vibraclip_core.training.train.final_metrics", lambda result: {})
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


@pytest.mark.parametrize("flags, named", [
    (["--batch-size", "0"], "--batch-size 0"),
    (["--workers", "0"], "--workers 0"),
    (["--top", "0"], "--top 0"),
    (["--mass-tol", "-1"], "--mass-tol -1"),
    (["--mass-tol", "nan"], "--mass-tol nan"),
    (["--mass", "nan"], "--mass nan"),
    (["--out", "{tmp}/ranks.xlsx"], "unknown suffix '.xlsx'"),
    (["--out", "{tmp}/a_file/sub/ranks.csv"], "a_file is a file"),
    (["--out", "{tmp}"], "--out"),
    (["--png", "{tmp}/grid.jpg"], "--png"),
    (["--cache-dir", "{tmp}/a_file"], "--cache-dir"),
    (["--cache-dir", "{tmp}/a_file/cache"], "--cache-dir"),
    (["--laser-nm", "18797"], "--laser-nm: laser line 18797 nm is outside 200-1100 nm"),
    (["--laser-nm", "18797"], "1e7/18797 = 532 nm"),
    (["--laser-nm", "150"], "--laser-nm: laser line 150 nm"),
])
def test_identify_flags_are_checked_before_the_model_loads(tmp_path, monkeypatch, capsys, flags,
                                                           named):
    (tmp_path / "a_file").write_text("not a folder")

    def no_model(checkpoint):
        raise AssertionError("the model was loaded before the flags were checked")
    monkeypatch.setattr("vibraclip_core.app.identify_command.model_from", no_model)
    argv = ["identify", "--ir", "q.csv", "--cache-dir", str(tmp_path / "cache")]
    argv += [f.format(tmp=tmp_path) for f in flags]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vibraclip identify: error: --") and "\n" not in err
    assert named.format(tmp=tmp_path) in err and "Traceback" not in err


def test_identify_ends_an_unexpected_failure_in_one_line(tmp_path, monkeypatch, capsys, caplog):
    def broken(checkpoint):
        raise RuntimeError("something\nbroke")
    monkeypatch.setattr("vibraclip_core.app.identify_command.model_from", broken)
    rows = "".join(f"{x},{0.1 + 0.5 * (x % 300 == 0)}\n" for x in range(500, 4001, 4))
    (tmp_path / "q.csv").write_text("x,y\n" + rows)  # a readable spectrum: the model loads next
    argv = ["identify", "--ir", str(tmp_path / "q.csv"), "--cache-dir", str(tmp_path / "cache"),
            "--mass", "46"]  # the shipped model needs a mass: checked before the model loads
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "vibraclip identify: error: RuntimeError: something broke"


def test_an_unreadable_spectrum_fails_before_the_model_loads(tmp_path, monkeypatch, capsys):
    def no_model(checkpoint):
        raise AssertionError("the model was loaded before the spectrum was read")
    monkeypatch.setattr("vibraclip_core.app.identify_command.model_from", no_model)
    (tmp_path / "q.csv").write_text("x,y\n1000,0.5\n")  # one point
    argv = ["identify", "--ir", str(tmp_path / "q.csv"), "--cache-dir", str(tmp_path / "cache"),
            "--mass", "46"]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vibraclip identify: error: ") and "q.csv" in err


def test_identify_checks_flags_and_input_files_without_loading_torch(tmp_path):
    """A bad flag or a missing file fails before the model stack is imported (issue 28: it
    took 9-13 s when torch loaded first)."""
    import subprocess
    import sys
    code = ("import sys\nfrom vibraclip_core.app import cli\ntry:\n    cli.main(sys.argv[1:])\n"
            "except SystemExit as e:\n    print('exit', e.code, 'torch' in sys.modules, "
            "'lightning' in sys.modules)\n")
    for argv, named in ((["--ir", str(tmp_path / "missing.csv")], "missing.csv: file not found"),
                        (["--ir", str(tmp_path), "--top", "3"], "is a folder"),
                        (["--ir", "q.csv", "--top", "0"], "--top 0")):
        run = subprocess.run([sys.executable, "-c", code, "identify", *argv], text=True,
                             capture_output=True, timeout=120)
        assert run.stdout.strip() == "exit 2 False False", run.stdout + run.stderr
        assert named in run.stderr and "Traceback" not in run.stderr


# issue 28: every subcommand fails in one line; -v after the subcommand

def test_verbose_is_accepted_after_the_subcommand():
    parser = cli.build_parser()
    assert parser.parse_args(["identify", "--ir", "q.csv", "--verbose"]).verbose is True
    assert parser.parse_args(["identify", "-v", "--ir", "q.csv"]).verbose is True
    assert parser.parse_args(["-v", "identify", "--ir", "q.csv"]).verbose is True  # kept
    assert parser.parse_args(["identify", "--ir", "q.csv"]).verbose is False
    assert parser.parse_args(["datasheet", "-v"]).verbose is True


def test_out_to_an_existing_unwritable_file_is_refused_up_front(tmp_path, monkeypatch, capsys):
    import os

    locked = tmp_path / "ranks.csv"
    locked.write_text("rank,score\n")
    real_access = os.access
    # root may write anywhere, so the permission is simulated for this one file
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == locked
                        else real_access(p, mode, **kw))

    def no_model(checkpoint):
        raise AssertionError("the model was loaded before the flags were checked")
    monkeypatch.setattr("vibraclip_core.app.identify_command.model_from", no_model)
    with pytest.raises(SystemExit) as exc:
        cli.main(["identify", "--ir", "q.csv", "--cache-dir", str(tmp_path / "cache"),
                  "--out", str(locked)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err
    assert err.startswith(f"vibraclip identify: error: --out {locked}: the file exists and "
                          "cannot be overwritten")


def test_datasheet_on_an_empty_folder_ends_in_one_line(tmp_path, capsys, caplog):
    (tmp_path / "empty").mkdir()
    argv = ["datasheet", "--data", str(tmp_path / "empty"), "--readme", str(tmp_path / "R.md")]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith("vibraclip datasheet: error: ") and "empty" in err
    with caplog.at_level("INFO"), pytest.raises(SystemExit):  # -v: the traceback is logged
        cli.main([*argv, "-v"])
    assert any(r.exc_info for r in caplog.records if "datasheet failed" in r.getMessage())


def test_export_model_to_a_read_only_folder_ends_in_one_line(tmp_path, monkeypatch, capsys):
    def read_only(checkpoint, out, provenance):
        raise PermissionError(13, "Permission denied", str(Path(out) / "model.safetensors"))
    monkeypatch.setattr("vibraclip_core.app.shipped.export_model", read_only)
    with pytest.raises(SystemExit) as exc:
        cli.main(["export-model", "--checkpoint", str(tmp_path / "best.ckpt"),
                  "--out", str(tmp_path / "ro")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err
    assert err == (f"vibraclip export-model: error: [Errno 13] Permission denied: "
                   f"'{tmp_path / 'ro' / 'model.safetensors'}'")


def test_export_model_transfer_trains_the_profiles_transfer_recipe_and_records_its_command(
        tmp_path, monkeypatch, capsys):
    seen = {}

    def recipe_config(profile, **overrides):
        return get_config(profile, **overrides).replace(
            transfer_augment=("scale", "width"), transfer_augment_strength=0.5,
            transfer_second_theory_fraction=0.25, transfer_second_theory_molecules=300)

    def fake_train(config, tag, trainer_kwargs):
        seen["config"] = config
        return SimpleNamespace(best_checkpoint=tmp_path / "main-x" / "best.ckpt")

    def fake_export(checkpoint, out, provenance):
        seen["provenance"] = provenance
        raise RuntimeError("stop after the export")

    monkeypatch.setattr(cli, "get_config", recipe_config)
    monkeypatch.setattr("vibraclip_core.training.train.train", fake_train)
    monkeypatch.setattr("vibraclip_core.app.shipped.export_model", fake_export)
    with pytest.raises(SystemExit):
        cli.main(["export-model", "--transfer", "--out", str(tmp_path / "m")])
    c = seen["config"]
    assert (c.augment, c.augment_strength) == (("scale", "width"), 0.5)
    assert (c.second_theory, c.second_theory_fraction, c.second_theory_molecules) == (
        "data/qm9_gfn1_train", 0.25, 300)
    assert seen["provenance"] == {
        "run": "main-x", "command": "vibraclip train --profile cpu --augment scale,width "
        "--augment-strength 0.5 --second-theory data/qm9_gfn1_train --second-theory-fraction "
        "0.25 --second-theory-molecules 300"}
    # the recorded command is one `vibraclip train` takes, and it trains the same config
    argv = seen["provenance"]["command"].split()[1:]
    args = cli.build_parser().parse_args(argv)
    again = get_config(args.profile, **{n: getattr(args, n) for n in cli.TRAIN_FIELDS[1:]})
    assert again.digest() == c.digest()


def test_export_model_transfer_refuses_an_augment_flag_beside_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["export-model", "--transfer", "--augment", "scale", "--out", str(tmp_path)])
    assert "--transfer takes the profile's transfer recipe" in str(exc.value)


def test_calibrate_rerank_names_the_exported_weights_it_was_chosen_for(tmp_path, monkeypatch,
                                                                       capsys):
    import json

    from vibraclip_core.app.shipped import RERANK_WEIGHTS_KEY
    from vibraclip_core.retrieval.rerank import RERANK_FILE, Reranker
    from vibraclip_core.retrieval.spectral_match import MatchSettings

    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"sha256": {"vibraclip.safetensors":
                                                                 "ab" * 32}}))
    monkeypatch.setattr("vibraclip_core.app.shipped.model_from",
                        lambda checkpoint: (None, None, str(checkpoint)))
    monkeypatch.setattr("vibraclip_core.experiments.rerank_choice.choose_reranker",
                        lambda *a, **k: (Reranker(MatchSettings(), 1.0, 50, (0.0, 1.0)), {}))
    cli.main(["calibrate-rerank", "--checkpoint", str(folder), "--out", str(tmp_path)])
    written = json.loads((tmp_path / RERANK_FILE).read_text())["provenance"]
    assert written[RERANK_WEIGHTS_KEY] == "ab" * 32 and written["model"] == str(folder)
    # a Lightning checkpoint has no exported weights to name
    ckpt = tmp_path / "run" / "best.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"")
    cli.main(["calibrate-rerank", "--checkpoint", str(ckpt), "--out", str(tmp_path)])
    assert RERANK_WEIGHTS_KEY not in json.loads((tmp_path / RERANK_FILE).read_text())["provenance"]
