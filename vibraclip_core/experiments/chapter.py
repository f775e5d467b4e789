"""What every chapter does first, and what several chapters share.

`setup` is a chapter's first call: quiet logging for a rendered page and the chapter's config.
`pretrained_model` is Chapter 2's main model for every chapter that uses it: Chapter 2 passes the
parameters that choose the model and they are recorded in the build folder; later chapters pass
none and get the model of the recorded parameters, so a Chapter 2 run with other values changes
the model of Chapters 6 and 7 too, never silently leaves them on another one.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vibraclip_core.config.profiles import Config, get_config
from vibraclip_core.data.datasets import PreparedData, prepare
from vibraclip_core.experiments.results import results_path
from vibraclip_core.measured.experimental import MeasuredIR, fetch_jcamp_spectra, load_measured_ir
from vibraclip_core.model.exported import WEIGHTS_FILE, exported_run, load_shipped_model
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.training.runs import MAIN_TAG, run_dir
from vibraclip_core.training.train import TrainResult, load_model, train

log = logging.getLogger(__name__)

# Trainer options of every chapter: no progress bars on a rendered page; CPU or GPU as found
TRAINER_KWARGS: dict[str, Any] = {"enable_progress_bar": False, "accelerator": "auto"}

# Chapter 2's parameters that choose its main model (the rest choose what it evaluates)
PRETRAINING_PARAMETERS = ("seed", "loss", "mass", "max_epochs", "data_dir")
PRETRAINING_CHAPTER = "02_pretraining"


def setup(profile: str, ablation: bool = False, **overrides: Any) -> Config:
    """Quiet Lightning's logging and warnings (a page shows results, not progress) and return
    the chapter's config: the profile with the chapter's parameters (None keeps the profile's
    value); with `ablation`, at the ablation chapters' epoch budget (`Config.for_ablation`)."""
    logging.basicConfig(level=logging.WARNING)
    for name in ("lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    config = get_config(profile, **overrides)
    return config.for_ablation() if ablation else config


def _record_path(build_dir: str | Path) -> Path:
    return results_path(build_dir, f"{PRETRAINING_CHAPTER}_model", ".json")


def record_pretraining(profile: str, build_dir: str | Path, parameters: dict[str, Any]) -> Path:
    """Keep Chapter 2's model parameters for `profile` in <build>/results/02_pretraining_model.json
    (rewritten only when they change, so its time says when the main model last changed)."""
    unknown = sorted(set(parameters) - set(PRETRAINING_PARAMETERS))
    if unknown:
        raise ValueError(f"{unknown}: not among the parameters that choose Chapter 2's model "
                         f"{PRETRAINING_PARAMETERS}")
    path = _record_path(build_dir)
    table = json.loads(path.read_text()) if path.exists() else {}
    if table.get(profile) != parameters:
        table[profile] = parameters
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(table, indent=2, sort_keys=True))
    return path


def pretraining_parameters(profile: str, build_dir: str | Path) -> dict[str, Any]:
    """The model parameters Chapter 2 recorded for `profile` in this build folder; when it has
    not run there, None for each (its parameters cell leaves them to the profile)."""
    path = _record_path(build_dir)
    recorded = json.loads(path.read_text()).get(profile) if path.exists() else None
    if recorded is not None:
        return recorded
    log.warning("%s: Chapter 2 has not run for profile %s; using the profile's values",
                path, profile)
    return dict.fromkeys(PRETRAINING_PARAMETERS)  # None: the profile's value, as Chapter 2 has


@dataclass
class Pretrained:
    """Chapter 2's main model: its config, data, training run and weights (eval mode)."""

    config: Config
    data: PreparedData
    result: TrainResult
    model: VibraCLIP

    @property
    def checkpoint(self) -> Path:
        return self.result.best_checkpoint

    def retrained(self, exported: str | Path | None = None, **overrides: Any) -> "Pretrained":
        """The same model trained from scratch on the same data with some fields changed
        (e.g. `augment`): same budget, its own cached run. With `exported` (a folder such as
        `models/`), the model exported there is used instead when its manifest names the very
        run this would train (`exported_run`): `make model` trained it with this config."""
        config = self.config.replace(**overrides)
        if exported is not None and exported_run(exported) == run_dir(config, self.data.key,
                                                                      MAIN_TAG).name:
            model, _ = load_shipped_model(exported)
            weights = Path(exported) / WEIGHTS_FILE
            return Pretrained(config, self.data, TrainResult(Path(exported), weights, [], config),
                              model)
        return _trained(config, self.data)

    @property
    def exported(self) -> bool:
        """Whether the weights are an exported model's (`retrained(exported=...)`), not a run's."""
        return self.checkpoint.suffix == ".safetensors"


def _trained(config: Config, data: PreparedData) -> Pretrained:
    result = train(config, data, tag=MAIN_TAG, trainer_kwargs=TRAINER_KWARGS)
    return Pretrained(config, data, result, load_model(result.best_checkpoint, expected=config))


def pretrained_model(profile: str, build_dir: str = "build", **parameters: Any) -> Pretrained:
    """Chapter 2's main model, trained once and then loaded from the run cache. Chapter 2 passes
    its PRETRAINING_PARAMETERS (None: the profile's value), which are recorded; later chapters
    pass none and get the model of the recorded ones (`pretraining_parameters`)."""
    if parameters:
        record_pretraining(profile, build_dir, parameters)
    else:
        parameters = pretraining_parameters(profile, build_dir)
    config = get_config(profile, build_dir=build_dir, **parameters)
    return _trained(config, prepare(config))


def measured_spectra(experimental_dir: str | None = None
                     ) -> tuple[list[MeasuredIR], Counter[str]]:
    """(measured IR records, Counter of files not used by reason) from `experimental_dir`, or
    from the jcamp package's spectra (fetched once into the build cache) when it is None."""
    return load_measured_ir(Path(experimental_dir) if experimental_dir else fetch_jcamp_spectra())


def epochs_trained(runs: dict[str, Any]) -> pd.DataFrame:
    """Epochs each named run trained (runs with a `result.history`), as a one-column table."""
    return pd.Series({name: len(run.result.history) for name, run in runs.items()},
                     name="epochs trained").to_frame()


def percents(fractions: Sequence[float]) -> str:
    """'0, 5, 50': fractions as per cent, without trailing zeros."""
    return ", ".join(f"{100 * f:g}" for f in fractions)


def dashes(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` for display with "—" where a value is missing (not measured or not published)."""
    return frame.astype(object).where(frame.notna(), "—")
