"""Chapter 2's tables: model sizes, what a training step costs, what the run departs from, and
the main model against growing candidate libraries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from IPython.display import Markdown

from vibraclip_core.config.profiles import DEPARTURE_REASONS, Config, departures_from_paper
from vibraclip_core.config.query_modes import IR_RAMAN
from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.experiments.ablations import MASS_VARIANTS, Variant, train_variant
from vibraclip_core.experiments.ablations import library_table
from vibraclip_core.experiments.library_size import (LibraryRun, library_curve, library_run,
                                                     max_library_size, size_label)
from vibraclip_core.model.losses import REFERENCE_TEMPERATURE
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.evaluate import Evaluation
from vibraclip_core.training.runs import TrainResult
from vibraclip_core.training.train import final_metrics
from vibraclip_core.training.training_path import RecordedPath, recorded_path

LIBRARY_MODE = IR_RAMAN


def parameter_sizes(configs: dict[str, Config]) -> pd.DataFrame:
    """Parameters per model part (rows, then "total") for each named config (columns)."""
    return pd.concat({name: pd.Series({part: n for part, n, _ in VibraCLIP(cfg).parameter_table()},
                                      name="parameters").rename_axis("part")
                      for name, cfg in configs.items()}, axis=1)


def step_cost(steps: pd.DataFrame, trained: RecordedPath | TrainResult, config: Config,
              n_train: int) -> dict[str, float | str]:
    """What `step_timing.step_time_table` rows "this profile" and "paper size" mean for an epoch on
    the path the run `trained` on (as recorded in its folder: `training_path.recorded_path`):
    the path and why, seconds per step, its speed-up over the exact path, the paper size's
    factor, minutes per epoch of `n_train` molecules."""
    if isinstance(trained, TrainResult):
        trained = recorded_path(trained.run_dir)
    path = trained.path
    step_s = steps[f"{path} path, s/step"]
    epoch_steps = n_train // config.batch_size
    exact = float(steps["exact path, s/step"]["this profile"])
    return {"path": path, "asked": trained.asked, "reason": trained.reason,
            "machine": trained.machine,
            "speedup": exact / float(step_s["this profile"]),
            "step_s": float(step_s["this profile"]),
            "paper_step_s": float(step_s["paper size"]),
            "factor": float(step_s["paper size"] / step_s["this profile"]),
            "epoch_steps": epoch_steps,
            "epoch_min": epoch_steps * float(step_s["this profile"]) / 60,
            "paper_epoch_min": epoch_steps * float(step_s["paper size"]) / 60}


def path_text(cost: dict[str, float | str], config: Config) -> str:
    """The sentences on the path the main run trained on, why, and what its steps cost
    (`step_cost`'s answer)."""
    machine = f" (it ran on {cost['machine']})" if cost["machine"] else ""
    return (
        f"The main run trained on the **{cost['path']}** path (`fast_train = "
        f"{cost['asked']}`), as recorded in its run folder: {cost['reason']}{machine}. On that "
        f"path a step on {config.batch_size} "
        f"molecules takes {cost['step_s']:.2f} s here at this profile's size "
        f"({cost['speedup']:.2f}× the exact path's speed) and {cost['paper_step_s']:.2f} s at "
        f"the paper's ({cost['factor']:.1f}× longer): an epoch of {cost['epoch_steps']} steps "
        f"costs about {cost['epoch_min']:.1f} min here against {cost['paper_epoch_min']:.1f} min "
        "at the paper's size.")


def departures_table(config: Config) -> pd.DataFrame:
    """The fields where `config` departs from the released configuration, with the reason."""
    return pd.DataFrame([(f, here, paper, DEPARTURE_REASONS.get(f, ""))
                         for f, (here, paper) in departures_from_paper(config).items()],
                        columns=["field", "this run", "released", "why"]).set_index("field")


@dataclass
class LibraryComparison:
    """The main model's test queries against nested libraries (`library_size.library_curve`):
    `sizes` are the table's columns (test split, `config.library_size`, the largest)."""

    run: LibraryRun
    curve: pd.DataFrame
    by_size: dict[str, dict[int, Evaluation]]
    sizes: list[int]
    table: pd.DataFrame
    mass_tol_da: float

    def top1(self, mass_filter: bool = False, mode: str = LIBRARY_MODE) -> dict[int, float]:
        """{library size: top-1 %} of `mode`, without or with the ±mass_tol_da filter."""
        setting = f"±{self.mass_tol_da:g} Da mass filter" if mass_filter else "no filter"
        return {n: float(self.by_size[setting][n].table.loc[mode, "top1"]) for n in self.sizes}


def library_comparison(model: VibraCLIP, data: PreparedData, config: Config
                       ) -> LibraryComparison:
    """Rank the test split's queries among the test structures plus QM9 distractors, up to the
    largest of `config.library_curve_sizes` that QM9 holds, without and with the ±
    `config.mass_tol_da` filter."""
    largest = min(max(config.library_curve_sizes), max_library_size(data))
    run = library_run(model, data, largest, config.build_dir, config.conformer_seed,
                      config.workers, progress=False)
    curve, by_size = library_curve(run, config.library_curve_sizes, config.mass_tol_da,
                                   seed=config.seed)
    n_test = len(data.splits["test"])
    sizes = [n_test, *sorted({min(config.library_size, largest), largest} - {n_test})]
    labels = [size_label(n, n_test, max_library_size(data)) for n in sizes]
    plain = by_size["no filter"]
    table = library_table([("main model", m, m, [plain[n] for n in sizes])
                           for m in plain[n_test].table.index], labels)
    return LibraryComparison(run, curve, by_size, sizes, table, config.mass_tol_da)


def on_off(flag: bool) -> str:
    """'on' or 'off'."""
    return "on" if flag else "off"


def history_title(config: Config) -> str:
    """The training-history figure's title."""
    return f"{config.loss}, mass anchoring {on_off(config.mass)}"


def library_title(config: Config) -> str:
    """The library-size figure's title."""
    return f"main model ({config.loss}, mass {on_off(config.mass)})"


def validation_text(result: TrainResult, best: dict[str, float], data: PreparedData) -> str:
    """The sentences on the main run's epochs and its best validation top-k against chance."""
    n_val = len(data.splits["val"])
    chance = {k: k / n_val for k in (1, 5, 10)}
    return (
        f"Training ran {len(result.history)} epochs on {len(data.splits['train'])} molecules. At "
        f"the best epoch ({int(best['epoch'])}), an IR spectrum finds its molecule first among the "
        f"{n_val} validation molecules **{100 * best['val_top1_ir']:.1f} %** of the time, and an "
        f"IR + Raman pair **{100 * best['val_top1_ir_raman']:.1f} %**; top-10: "
        f"{100 * best['val_top10_ir']:.1f} % and {100 * best['val_top10_ir_raman']:.1f} %. Chance "
        f"would be {100 * chance[1]:.2f} % for top-1 and {100 * chance[10]:.2f} % for top-10, so "
        f"the IR + Raman top-1 is {best['val_top1_ir_raman'] / chance[1]:.0f} times chance.")


def library_text(lib: LibraryComparison, routes: dict[str, int], config: Config) -> str:
    """The sentences on top-1 from the test split to the largest library, and the distractors'
    geometry routes."""
    top, filt = lib.top1(), lib.top1(mass_filter=True)
    n_test, n_max = lib.sizes[0], lib.sizes[-1]
    return (
        f"IR + Raman top-1 (library score) falls from **{top[n_test]:.1f} %** among the {n_test:,} "
        f"test molecules to **{top[n_max]:.1f} %** among {n_max:,} candidates; with the "
        f"±{config.mass_tol_da:g} Da filter, from {filt[n_test]:.1f} % to {filt[n_max]:.1f} %. "
        f"The {len(lib.run.distractors):,} distractors took these geometry routes: "
        + ", ".join(f"{k} {v:,}" for k, v in routes.items()) + " (every candidate has a "
        "geometry, none is dropped).")


def reference_loss_section(config: Config, data: PreparedData, trainer_kwargs: dict
                           ) -> tuple[object, ...]:
    """What the loss comparison shows: the validation table of our loss against the released
    one, with its sentence; or, when `compare_reference_loss` is off, a note saying how to run
    it."""
    if not config.compare_reference_loss:
        return (Markdown("Not trained in this run (`compare_reference_loss=False`). Execute this "
                         "chapter with `compare_reference_loss=True` to train both variants."),)
    comparison = reference_loss_comparison(config, data, trainer_kwargs)
    winner = comparison.loc["top1_ir_raman"].idxmax()
    return (comparison, Markdown(
        f"Validation top-k accuracy in %, best epoch of each run (at most "
        f"{config.for_ablation().max_epochs} epochs). Higher IR + Raman top-1 in this run: "
        f"**{winner}**."))


REFERENCE_LOSS_LABELS = {"clip": "cosine CLIP, learnable temperature (this book's)",
                         "reference": f"released loss (dot product / {REFERENCE_TEMPERATURE:g}, "
                                      "shared soft targets)"}


def reference_loss_comparison(config: Config, data: PreparedData,
                              trainer_kwargs: dict[str, Any] | None = None) -> pd.DataFrame:
    """Validation top-1/5/10 % (IR, IR + Raman; best epoch) of all pairs + mass trained with
    this book's loss and with the released one, at the ablation budget (Chapter 2)."""
    short = config.for_ablation()
    runs = {REFERENCE_LOSS_LABELS[loss]: train_variant(
                short, data, Variant(key, REFERENCE_LOSS_LABELS[loss],
                                     {**MASS_VARIANTS[1].overrides, "pair_loss": loss}),
                trainer_kwargs)
            for key, loss in (("all_pairs+mass", "clip"),
                              ("all_pairs+mass+reference-loss", "reference"))}
    keys = [f"val_top{k}_{q}" for q in ("ir", "ir_raman") for k in (1, 5, 10)]
    return pd.DataFrame({label: [100 * final_metrics(r)[k] for k in keys]
                         for label, r in runs.items()},
                        index=[k.replace("val_", "") for k in keys]).round(1)
