"""Tests for vibraclip_core.training.training_path: which path each kind of hardware trains on."""

import json

import pytest

from vibraclip_core.config.profiles import get_config
from vibraclip_core.training import training_path as TP
from vibraclip_core.training.runs import run_dir

# (device, CPU flags, CUDA capability) -> the path `auto` takes there
HARDWARE = [
    ("cpu", {"avx", "avx2"}, None, "float32"),  # AMD before Zen 4, Intel client chips
    ("cpu", {"avx2", "avx512f", "avx512bw"}, None, "float32"),  # AVX-512 without BF16 (Skylake-SP)
    ("cpu", {"avx512f", "avx512_bf16"}, None, "on"),  # Cooper Lake, Zen 4
    ("cpu", {"avx512f", "amx_tile", "amx_bf16"}, None, "on"),  # Sapphire Rapids
    ("cpu", {"amx_tile"}, None, "float32"),  # AMX tiles without bf16 units
    ("cpu", set(), None, "float32"),  # no /proc/cpuinfo
    ("cuda", set(), (7, 0), "float32"),  # V100: no bf16 tensor cores
    ("cuda", set(), (7, 5), "float32"),  # T4
    ("cuda", set(), (8, 0), "on"),  # A100
    ("cuda", set(), (8, 6), "on"),  # RTX 30xx
    ("cuda", set(), (9, 0), "on"),  # H100
    ("cuda", {"avx512_bf16"}, None, "float32"),  # the host CPU's flags do not decide a GPU run
    ("mps", {"avx512_bf16"}, None, "float32"),
]


@pytest.mark.parametrize("device, flags, capability, expected", HARDWARE)
def test_auto_takes_bf16_only_on_bf16_units(device, flags, capability, expected):
    path = TP.choose_training_path("auto", device, flags, capability)
    assert path.asked == "auto" and path.fast_train == expected
    assert path.autocast is (expected == "on") and path.fast_blocks  # float32 parts always
    assert not path.reason.startswith("asked for")
    assert ("has no" in path.reason or "no bf16" in path.reason) is (expected == "float32")


@pytest.mark.parametrize("device, flags, capability, expected", HARDWARE)
@pytest.mark.parametrize("forced", ["on", "float32", "off", True, False])
def test_on_float32_and_off_force_their_path_on_any_hardware(device, flags, capability,
                                                             expected, forced):
    path = TP.choose_training_path(forced, device, flags, capability)
    value = {True: "on", False: "off"}.get(forced, forced)
    assert path.asked == path.fast_train == value
    assert path.name == {"on": "bf16", "float32": "float32", "off": "exact"}[value]
    assert path.fast_blocks is (value != "off") and path.autocast is (value == "on")
    assert path.reason.startswith("asked for")
    if value == "on":  # forcing bf16 where it is emulated says so
        assert ("slower than float32" in path.reason) is (expected == "float32")


def test_this_machine_reads_its_device_and_flags():
    m = TP.this_machine("cpu")
    assert m.device == "cpu" and m.threads >= 1 and m.torch_version
    assert m.cpu_flags <= set(TP.CPU_BF16_FLAGS)
    line = m.describe()
    assert m.cpu_capability in line and m.torch_version in line
    # the running machine's choice is the pure function's on its facts
    assert TP.training_path("auto", "cpu") == TP.choose_training_path(
        "auto", "cpu", m.cpu_flags, None, m.cpu_capability)


def test_trainer_device_follows_the_accelerator():
    assert TP.trainer_device({"accelerator": "cpu"}) == "cpu"
    assert TP.trainer_device({"accelerator": "gpu"}) == "cuda"
    assert TP.trainer_device(None) == TP.trainer_device({"accelerator": "auto"}) == \
        TP.default_device()


def test_an_auto_run_is_keyed_by_the_path_it_resolves_to(tmp_path):
    cfg = get_config("tiny", build_dir=str(tmp_path))
    resolved = TP.resolved(cfg, "cpu")
    assert resolved.fast_train == TP.training_path(cfg, "cpu").fast_train != "auto"
    assert run_dir(cfg, "k" * 12, "main", "cpu") == run_dir(resolved, "k" * 12, "main", "cpu")
    on, f32 = cfg.replace(fast_train="on"), cfg.replace(fast_train="float32")
    assert run_dir(on, "k" * 12) != run_dir(f32, "k" * 12)  # different computations


def test_the_record_names_the_path_and_why_and_old_runs_read_from_config_json(tmp_path):
    path = TP.choose_training_path("auto", "cpu", {"avx2"})
    TP.write_record(tmp_path / "new", path, "cpu")
    got = TP.recorded_path(tmp_path / "new")
    assert (got.path, got.asked, got.reason) == ("float32", "auto", path.reason)
    assert "torch" in got.machine
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"fast_train": True}))
    got = TP.recorded_path(old)
    assert got.path == "bf16" and "before" in got.reason and got.machine == ""
