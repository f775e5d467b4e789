"""Which training path a run takes (`Config.fast_train`), chosen by the hardware it runs on.

Three paths, the same model and loss:
- "on" (bf16): bf16 autocast for the encoders and heads, with the float32 parts below;
- "float32": the float32 parts of the fast path alone: gathers by index_select and an in-place
  spherical basis in DimeNet++ (same forward values as PyG's blocks, cheaper backward);
- "off" (exact): float32 through PyG's own DimeNet++ blocks.
`fast_train = "auto"` takes bf16 only where the device runs it on bf16 units (CUDA compute
capability 8.0 or newer; CPUs with AVX512_BF16 or AMX-BF16), and float32 elsewhere: a CPU without
bf16 units emulates bf16 arithmetic with conversions and runs the training step slower than in
float32. `choose_training_path` is a pure function of the device kind and its flags, so that a
test checks every kind of hardware; `this_machine` reads them from the running one.

A run is keyed, trained and recorded with the resolved value (`resolved`): a bf16 run and a
float32 run are different computations and never share a run folder.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import torch

from vibraclip_core.config.profiles import Config

log = logging.getLogger(__name__)

# CPU flags (/proc/cpuinfo's names) of units that run bf16 dot products natively
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# CUDA compute capability from which GPUs have bf16 tensor cores (Ampere)
CUDA_BF16_CAPABILITY = (8, 0)
# the path names that tables and sentences use, by resolved `fast_train`
PATH_NAMES = {"on": "bf16", "float32": "float32", "off": "exact"}
RECORD_FILE = "training_path.json"


@dataclass(frozen=True)
class Machine:
    """What the training path depends on, and what a benchmark prints beside its ratios."""

    device: str  # torch device type: "cpu", "cuda", "mps", ...
    name: str  # CPU model or GPU name
    cpu_flags: frozenset[str]  # the CPU's bf16 flags among CPU_BF16_FLAGS
    cpu_capability: str  # torch.backends.cpu.get_cpu_capability(): "AVX2", "AVX512", ...
    cuda_capability: tuple[int, int] | None  # of the GPU, when device is "cuda"
    threads: int  # torch's intra-op threads
    torch_version: str

    def describe(self) -> str:
        """One line: device, model, capability, bf16 flags, threads, torch version."""
        flags = ", ".join(sorted(self.cpu_flags)) or "no " + " / ".join(CPU_BF16_FLAGS)
        gpu = (f", compute capability {self.cuda_capability[0]}.{self.cuda_capability[1]}"
               if self.cuda_capability else "")
        return (f"{self.device}: {self.name}{gpu}; CPU capability {self.cpu_capability} "
                f"({flags}); {self.threads} threads; torch {self.torch_version}")


@dataclass(frozen=True)
class TrainingPath:
    """The path a run trains on: `fast_train` as asked and as resolved, and why."""

    asked: str  # Config.fast_train as given: auto / on / float32 / off
    fast_train: str  # resolved: on / float32 / off
    reason: str

    @property
    def name(self) -> str:
        """bf16, float32 or exact."""
        return PATH_NAMES[self.fast_train]

    @property
    def autocast(self) -> bool:
        """Whether training forwards run in bf16 autocast."""
        return self.fast_train == "on"

    @property
    def fast_blocks(self) -> bool:
        """Whether DimeNet++ gathers by index_select (the float32 parts of the fast path)."""
        return self.fast_train != "off"


def bf16_units(device: str, cpu_flags: Iterable[str] = (),
               cuda_capability: tuple[int, int] | None = None) -> str | None:
    """The device's bf16 units in words, or None where it has none that torch uses."""
    if device == "cuda":
        if cuda_capability is not None and tuple(cuda_capability) >= CUDA_BF16_CAPABILITY:
            return (f"bf16 tensor cores (compute capability {cuda_capability[0]}."
                    f"{cuda_capability[1]})")
        return None
    if device == "cpu":
        found = [f for f in CPU_BF16_FLAGS if f in set(cpu_flags)]
        return f"bf16 units ({', '.join(found)})" if found else None
    return None


def choose_training_path(fast_train: str | bool, device: str, cpu_flags: Iterable[str] = (),
                         cuda_capability: tuple[int, int] | None = None,
                         cpu_capability: str = "") -> TrainingPath:
    """The path `fast_train` (auto / on / float32 / off; True / False as on / off) takes on a
    `device` ("cpu", "cuda", "mps") with these CPU flags / CUDA compute capability."""
    asked = Config(fast_train=fast_train).fast_train  # checked, legacy bools mapped
    units = bf16_units(device, cpu_flags, cuda_capability)
    what = ("this GPU" if device == "cuda" else
            f"this CPU{f' ({cpu_capability})' if cpu_capability else ''}" if device == "cpu"
            else f"the {device} device")
    if asked == "off":
        return TrainingPath(asked, "off", "asked for: float32 through PyG's own DimeNet++ "
                            "blocks (the exact path)")
    if asked == "float32":
        return TrainingPath(asked, "float32", "asked for: the fast path's float32 parts "
                            "without bf16 autocast")
    if asked == "on":
        return TrainingPath(asked, "on", "asked for: bf16 autocast" + (
            f" on {what}'s {units}" if units else
            f" on {what}, which has no bf16 units and runs it slower than float32"))
    if units:
        return TrainingPath(asked, "on", f"{what} has {units}, on which bf16 autocast trains "
                            "faster than float32")
    lacks = ("no bf16 tensor cores (compute capability below "
             f"{CUDA_BF16_CAPABILITY[0]}.{CUDA_BF16_CAPABILITY[1]})" if device == "cuda"
             else f"no {' or '.join(CPU_BF16_FLAGS)} units" if device == "cpu"
             else "no bf16 autocast here")
    return TrainingPath(asked, "float32", f"{what} has {lacks}: bf16 would be emulated, slower "
                        "than float32, so float32 with the fast path's float32 parts")


def _cpu_info() -> tuple[str, frozenset[str]]:
    """(CPU model name, its flags) from /proc/cpuinfo; ("", {}) where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), frozenset()
    name, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not name:
            name = value.strip()
        elif key.strip() in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return name or platform.machine(), flags


def _torch_cpu_bf16_flags() -> set[str]:
    """The bf16 flags torch's own cpuinfo reports (also where /proc/cpuinfo is absent)."""
    found = set()
    checks = {"avx512_bf16": "_is_avx512_bf16_supported", "amx_bf16": "_is_amx_tile_supported"}
    for flag, fn in checks.items():
        check = getattr(torch.cpu, fn, None)
        try:
            if check is not None and check():
                found.add(flag)
        except RuntimeError:
            pass
    return found


def default_device() -> str:
    """The device Lightning's accelerator "auto" trains on: cuda where there is one, else cpu
    (mps is left out: torch's bf16 autocast there is not what this path measures)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def trainer_device(trainer_kwargs: dict[str, Any] | None) -> str:
    """The device type a Trainer built with `trainer_kwargs` trains on."""
    accelerator = str((trainer_kwargs or {}).get("accelerator", "auto"))
    return {"gpu": "cuda", "cuda": "cuda", "cpu": "cpu", "mps": "mps"}.get(
        accelerator, default_device())


@functools.cache
def this_machine(device: str | None = None) -> Machine:
    """The running machine's facts for `device` (None: `default_device`)."""
    device = device or default_device()
    name, flags = _cpu_info()
    bf16 = {f for f in CPU_BF16_FLAGS if f in flags} | _torch_cpu_bf16_flags()
    capability, cuda_cap = torch.backends.cpu.get_cpu_capability(), None
    if device == "cuda" and torch.cuda.is_available():
        name, cuda_cap = torch.cuda.get_device_name(), tuple(torch.cuda.get_device_capability())
    return Machine(device, name, frozenset(bf16), capability, cuda_cap, torch.get_num_threads(),
                   torch.__version__.split("+")[0])


def training_path(config: Config | str | bool, device: str | None = None) -> TrainingPath:
    """The path `config` (or a `fast_train` value) trains on, on this machine's `device` (None:
    `default_device`); each choice and its reason are logged once per process."""
    fast_train = config.fast_train if isinstance(config, Config) else config
    if isinstance(fast_train, bool):
        fast_train = "on" if fast_train else "off"
    return _chosen_here(fast_train, device or default_device())


@functools.cache  # once per (fast_train, device): the log line, and no re-reading per step
def _chosen_here(fast_train: str, device: str) -> TrainingPath:
    m = this_machine(device)
    path = choose_training_path(fast_train, m.device, m.cpu_flags, m.cuda_capability,
                                m.cpu_capability)
    log.info("training path %s (fast_train = %s: %s) on %s", path.name, path.asked,
             path.reason, m.describe())
    return path


def resolved(config: Config, device: str | None = None) -> Config:
    """`config` with `fast_train` resolved for `device` (auto -> on / float32): the config a
    run is keyed, trained and recorded by."""
    if config.fast_train != "auto":
        return config
    return config.replace(fast_train=training_path(config, device).fast_train)


def write_record(run_folder: Path, path: TrainingPath, device: str | None = None) -> None:
    """Write <run>/training_path.json: fast_train as asked and resolved, the path's name, why,
    and the machine (`this_machine(device)`) that chose it."""
    record = {**asdict(path), "path": path.name, "machine": this_machine(device).describe()}
    Path(run_folder).mkdir(parents=True, exist_ok=True)
    (Path(run_folder) / RECORD_FILE).write_text(json.dumps(record, indent=2))


@dataclass(frozen=True)
class RecordedPath:
    """The path a finished run trained on, as recorded in its folder."""

    path: str  # bf16 / float32 / exact
    asked: str
    reason: str
    machine: str  # "" for a run trained before the record existed


def recorded_path(run_folder: Path) -> RecordedPath:
    """The training path recorded in `run_folder` (training_path.json), or, for a run trained
    before it was written, the one its config.json names."""
    record = Path(run_folder) / RECORD_FILE
    if record.is_file():
        r = json.loads(record.read_text())
        return RecordedPath(r["path"], r["asked"], r["reason"], r.get("machine", ""))
    raw = json.loads((Path(run_folder) / "config.json").read_text())
    value = Config(fast_train=raw.get("fast_train", True)).fast_train
    return RecordedPath(PATH_NAMES.get(value, value), value,
                        "trained before the choice was recorded", "")
