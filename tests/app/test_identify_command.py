"""`vibraclip identify` as a chemist runs it, part 3 (issue 37): damaged exported weights, an
exported folder as --checkpoint, flags refused before torch loads, notes printed whenever they
are computed, warnings with the flag that helps, outputs that cannot be written, and Ctrl-C.

Every case writes its input here and checks the outcome: a correct reading, or one line naming
the file or flag and exit 2."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from vibraclip_core.app import cli
from vibraclip_core.model.manifest import (MANIFEST_FILE, MODELS_DIR, WEIGHTS_FILE,
                                           ShippedModelError, verify_exported)


def lorentz(x, centre, fwhm):
    hw = fwhm / 2
    return hw**2 / ((x - centre) ** 2 + hw**2)


def write_query(path: Path, x=None, baseline=0.02, slope=0.0, noise=0.0, seed=0) -> Path:
    """An absorbance CSV with bands at 1720, 2950 and 1100 cm-1."""
    x = np.arange(500.0, 4000.0 + 1e-9, 2.0) if x is None else x
    y = (baseline + lorentz(x, 1720.0, 18.0) + 0.6 * lorentz(x, 2950.0, 30.0)
         + 0.4 * lorentz(x, 1100.0, 20.0) + slope * (x - x[0]) / (x[-1] - x[0]))
    y = y + np.random.default_rng(seed).normal(0, noise, x.size) if noise else y
    path.write_text("wavenumber,absorbance\n" + "".join(f"{a},{b:.6f}\n" for a, b in zip(x, y)))
    return path


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if identify loads the model: everything checked here comes before it."""
    def refuse(checkpoint):
        raise AssertionError("the model was loaded before the checks")
    monkeypatch.setattr("vibraclip_core.app.identify_command.model_from", refuse)


class ModelReached(BaseException):  # passes cli.main's `except Exception`
    pass


@pytest.fixture
def stop_at_model(monkeypatch):
    """End the run where the model would load (everything before it has run)."""
    seen = []

    def reached(checkpoint):
        seen.append(checkpoint)
        raise ModelReached(str(checkpoint))
    monkeypatch.setattr("vibraclip_core.app.identify_command.model_from", reached)
    return seen


def run_cli(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err.strip()


def copied_models(tmp_path: Path) -> Path:
    folder = tmp_path / "model_copy"
    shutil.copytree(MODELS_DIR, folder)
    return folder


# --- damaged weights ---

@pytest.mark.parametrize("damage", ["zeroed", "nan_bits", "no_manifest"])
def test_damaged_exported_weights_are_named_before_the_model_loads(tmp_path, capsys, no_model,
                                                                   damage):
    """Zeroing 64 KiB in the middle of the weights still ranked (exit 0, other scores); a
    deleted manifest was not reported; bits that make NaN were blamed on the training."""
    folder = copied_models(tmp_path)
    weights = folder / WEIGHTS_FILE
    if damage == "no_manifest":
        (folder / MANIFEST_FILE).unlink()
    else:
        data = bytearray(weights.read_bytes())
        mid = len(data) // 2
        data[mid:mid + 65536] = (b"\x00" if damage == "zeroed" else b"\xff") * 65536
        weights.write_bytes(bytes(data))
    q = write_query(tmp_path / "q.csv")
    code, _, err = run_cli(["identify", "--checkpoint", str(weights), "--ir", str(q), "--mass",
                            "58", "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith(f"vibraclip identify: error: --checkpoint {weights}: ")
    assert "diverged" not in err and "re-export it with `vibraclip export-model" in err
    if damage == "no_manifest":
        assert f"{folder / MANIFEST_FILE}: missing" in err
    else:
        assert f"{weights}: damaged or changed since export (sha256 " in err


def test_damaged_weights_are_refused_by_the_loader_too(tmp_path):
    """load_shipped_model checks the manifest itself: the book and export-model load it too."""
    from vibraclip_core.model.exported import load_shipped_model

    folder = copied_models(tmp_path)
    data = bytearray((folder / WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0x40  # one flipped bit
    (folder / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ShippedModelError, match=r"vibraclip\.safetensors: damaged or changed"):
        load_shipped_model(folder)
    verify_exported(MODELS_DIR)  # the shipped folder itself is intact


def test_an_exported_folder_is_a_checkpoint(tmp_path, capsys, stop_at_model):
    """`--checkpoint models` (as --help and the README say) was refused: 'is a folder'."""
    q = write_query(tmp_path / "q.csv")
    argv = ["identify", "--ir", str(q), "--mass", "58", "--cache-dir", str(tmp_path / "cache")]
    with pytest.raises(ModelReached):
        cli.main([*argv, "--checkpoint", str(MODELS_DIR)])
    assert stop_at_model == [str(MODELS_DIR)]
    (tmp_path / "empty_folder").mkdir()
    code, _, err = run_cli([*argv, "--checkpoint", str(tmp_path / "empty_folder")], capsys)
    assert code == 2 and err == (
        f"vibraclip identify: error: --checkpoint {tmp_path / 'empty_folder'}: is a folder "
        f"without {WEIGHTS_FILE}; give an exported model folder (as models/) or a trained "
        ".ckpt file")


# --- flags checked before torch ---

def test_raman_for_a_model_without_a_raman_encoder_is_refused_before_it_loads(tmp_path, capsys,
                                                                               no_model):
    import json

    folder = copied_models(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["loss"] = "graph_ir"  # config.json is not hashed: the loader checks it fits
    (folder / "config.json").write_text(json.dumps(config))
    q = write_query(tmp_path / "q.csv")
    code, _, err = run_cli(["identify", "--checkpoint", str(folder), "--raman", str(q),
                            "--mass", "58", "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2 and err.startswith(f"vibraclip identify: error: --raman {q}: "
                                        f"--checkpoint {folder} was trained with "
                                        "loss='graph_ir'")



def test_flags_that_need_no_model_are_refused_before_torch_is_imported(tmp_path):
    """A lowercase formula, no spectrum, an empty candidate file and a missing --mass were
    refused only after the 6-10 s model load."""
    q = write_query(tmp_path / "q.csv")
    (tmp_path / "empty.smi").write_text("# no molecules yet\n\n")
    code = ("import sys\nfrom vibraclip_core.app import cli\ntry:\n    cli.main(sys.argv[1:])\n"
            "except SystemExit as e:\n    print('exit', e.code, 'torch' in sys.modules)\n")
    base = ["identify", "--cache-dir", str(tmp_path / "cache")]
    cases = [
        ([*base, "--ir", str(q), "--formula", "c2h6o"],
         "--formula c2h6o: element symbols start with a capital letter", "--formula C2H6O?"),
        ([*base, "--mass", "46"], "--ir/--raman: no spectrum given", "--ir FILE"),
        ([*base, "--ir", str(q), "--mass", "46", "--candidates", str(tmp_path / "empty.smi")],
         f"--candidates {tmp_path / 'empty.smi'}: no SMILES in the file", "one SMILES per line"),
        ([*base, "--ir", str(q)], "--mass/--formula: the shipped model was trained with mass "
         "anchoring", "give --mass in Da"),
        ([*base, "--ir", str(q), "--formula", "C2H5Cl"], "--formula C2H5Cl: Cl (chlorine) is "
         "outside the elements the model knows", "no candidate"),
    ]
    for argv, named, fix in cases:
        run = subprocess.run([sys.executable, "-c", code, *argv], text=True,
                             capture_output=True, timeout=120)
        assert run.stdout.strip().splitlines()[-1] == "exit 2 False", run.stdout + run.stderr
        err = run.stderr.strip()
        assert err.startswith(f"vibraclip identify: error: {named}"), err
        assert fix in err and "\n" not in err


def test_png_and_out_that_cannot_be_written_are_named_before_the_model(tmp_path, capsys,
                                                                        no_model):
    """`--png /proc/x.png` passed the early check, printed the table, then failed without
    naming --png (permission bits say nothing of /proc, and root may write anywhere else)."""
    q = write_query(tmp_path / "q.csv")
    argv = ["identify", "--ir", str(q), "--mass", "58", "--cache-dir", str(tmp_path / "cache")]
    for flag, value in (("--png", "/proc/x.png"), ("--out", "/proc/ranks.csv"),
                        ("--png", "/proc/new_folder/x.png")):
        code, _, err = run_cli([*argv, flag, value], capsys)
        assert code == 2 and err.startswith(f"vibraclip identify: error: {flag} {value}: cannot "
                                            "write in /proc")
        assert "\n" not in err


def test_export_model_out_that_cannot_be_written_is_named_first(tmp_path, capsys, monkeypatch):
    def no_work(*a, **k):
        raise AssertionError("export-model worked before checking --out")
    monkeypatch.setattr("vibraclip_core.training.train.train", no_work)
    monkeypatch.setattr("vibraclip_core.app.shipped.export_model", no_work)
    for argv in (["export-model", "--out", "/proc/vibraclip_model"],
                 ["export-model", "--checkpoint", str(tmp_path / "best.ckpt"), "--out",
                  "/proc/vibraclip_model"],
                 ["export-model", "--card-only", "--out", "/proc/vibraclip_model"]):
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and err.startswith("vibraclip export-model: error: --out "
                                            "/proc/vibraclip_model: cannot write in /proc")


# --- notes and warnings ---

def test_notes_of_the_model_grid_are_printed_without_verbose(tmp_path, capsys, stop_at_model):
    """'filled ...' (a partial range) and 'y goes down to -0.25' were added after the notes
    were printed, and showed only with -v."""
    x = np.arange(1500.0, 4000.0 + 1e-9, 2.0)
    q = write_query(tmp_path / "partial.csv", x=x, baseline=-0.25)
    with pytest.raises(ModelReached):
        cli.main(["identify", "--ir", str(q), "--mass", "58",
                  "--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert f"note: {q}: filled 500-1500.0 cm-1 (outside the measured range)" in out
    assert f"note: {q}: y goes down to -0.25" in out


def test_notes_added_after_the_ranking_are_printed(tmp_path, capsys):
    """print_notes shows what a later step appended, once."""
    from vibraclip_core.app.identify_flags import print_notes
    from vibraclip_core.data.spectra import Spectrum

    sp = Spectrum(np.arange(3.0), np.arange(3.0), "absorbance", "q.csv", ["first"])
    printed: dict[int, int] = {}
    print_notes((sp, None), printed)
    sp.notes.append("second")
    print_notes((sp, None), printed)
    print_notes((sp, None), printed)
    assert capsys.readouterr().out.splitlines() == ["note: q.csv: first", "note: q.csv: second"]


@pytest.mark.parametrize("kind, said", [
    ("slope", "pass --baseline arpls to subtract it"),
    ("noise", "noise is ~"),
])
def test_a_slope_or_noise_is_warned_with_what_to_do(tmp_path, capsys, stop_at_model, kind,
                                                    said):
    q = write_query(tmp_path / "q.csv", slope=0.7 if kind == "slope" else 0.0,
                    noise=0.03 if kind == "noise" else 0.0)
    argv = ["identify", "--ir", str(q), "--mass", "58", "--cache-dir", str(tmp_path / "cache")]
    with pytest.raises(ModelReached):
        cli.main(argv)
    out = capsys.readouterr().out
    assert sum("WARNING" in ln for ln in out.splitlines()) == 1 and said in out
    if kind == "slope":  # with the flag it suggests, no warning
        with pytest.raises(ModelReached):
            cli.main([*argv, "--baseline", "arpls"])
        out = capsys.readouterr().out
        assert "WARNING" not in out and "baseline subtracted (arPLS" in out


# --- Ctrl-C ---

def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr("vibraclip_core.app.identify_flags.check_identify_flags", interrupted)
    code, out, err = run_cli(["identify", "--ir", "q.csv"], capsys)
    assert code == 130 and "\n" not in err and "Traceback" not in err
    assert err.startswith("vibraclip identify: interrupted (Ctrl-C)")


def test_ctrl_c_during_a_library_build_exits_130_in_one_line_within_2_s(tmp_path):
    """Issue 37: Ctrl-C during a library build printed a 33-line traceback and exited 1. The
    whole process group gets SIGINT, as a terminal sends it; a piped build logs progress (its
    interval shortened here) and the interrupt comes once the build has started."""
    q = write_query(tmp_path / "q.csv")
    smiles = tmp_path / "many.smi"
    smiles.write_text("".join(f"{'C' * (3 + i % 6)}{'O' * (i % 2)}{'N' * (i % 3 == 0)}"
                              f"{'C' * (i // 6 % 5)}\n" for i in range(3000)))
    script = textwrap.dedent(f"""
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)  # also as a background job
        from vibraclip_core.data import jobs
        jobs.PROGRESS_EVERY_S = 0.5
        from vibraclip_core.app import cli
        sys.argv = ["vibraclip", "identify", "--ir", {str(q)!r}, "--mass", "100", "--mass-tol",
                    "500", "--candidates", {str(smiles)!r}, "--workers", "2", "--rerank", "0",
                    "--cache-dir", {str(tmp_path / 'cache')!r}]
        cli.main()  # as the `vibraclip` command runs it
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    before = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        before.append(line)
        if "featurize:" in line:  # the build runs, and says so every 0.5 s
            break
    assert any("featurize:" in ln for ln in before), "".join(before)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)[::-1]
    elapsed = time.monotonic() - t0
    after = [ln for ln in rest.splitlines() if ln.strip() and "featurize:" not in ln]
    assert proc.returncode == 130, rest
    assert len(after) == 1 and after[0].startswith("vibraclip identify: interrupted (Ctrl-C)")
    assert elapsed <= 2.0, f"took {elapsed:.1f} s"
