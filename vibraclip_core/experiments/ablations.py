"""Named training variants of the analysis chapters (3-5), trained once and shared, and the
layout of their tables beside the published figures.

A variant is a set of config overrides plus the query mode that represents it (an IR-only model is
queried with IR, a tri-modal one with IR + Raman). `run_variant` trains or loads the run (cached by
config and data hash, so a variant that two chapters need is trained once) and evaluates it on the
test split (`results.save_results` writes a chapter's headline table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from vibraclip_core.config.choices import PAPER_LIBRARY_SIZE
from vibraclip_core.config.loss_modes import LOSS_MODES
from vibraclip_core.config.profiles import Config, get_config
from vibraclip_core.config.query_modes import IR_RAMAN_PAPER, model_query_modes
from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.experiments.library_size import evaluate_library, max_library_size, size_label
from vibraclip_core.retrieval.evaluate import Evaluation, evaluate
from vibraclip_core.training.train import PREFIX_TAG, TrainResult, load_model, train

# The paper's QM9S test-set figures (Rocabert-Oriols et al. 2025, Fig. 3A/3B), top-1 / top-25 in %.
# Shown only in columns labelled "published"; never mixed with measured values.
PUBLISHED: dict[str, dict[str, float]] = {
    "graph_ir": {"top1": 12.4, "top25": 63.6},
    "graph_centred": {"top1": 55.1, "top25": 94.0},
    "all_pairs": {"top1": 62.9, "top25": 94.3},
    "graph_ir+mass": {"top1": 24.2},
    "all_pairs+mass": {"top1": 81.7, "top25": 98.9},
}

# The paper's non-learned baseline (SI S-2, random projections): below this top-k % at every K
PUBLISHED_RANDOM_BASELINE_MAX_TOP_K = 0.30
# The paper's training budget and where its runs stopped early (released logs, Fig. 3A / 3B)
PUBLISHED_MAX_EPOCHS = 200
PUBLISHED_EPOCHS_FIG3A = (95, 153)  # range over the three loss variants
PUBLISHED_EPOCHS_FIG3B = (107, 112)  # the two mass-anchored runs


@dataclass(frozen=True)
class Variant:
    """A labelled set of config overrides and the query modes that evaluate it."""

    key: str  # also the key of PUBLISHED
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def query_modes(self) -> tuple[str, ...]:
        """Evaluation modes that apply: models without a trained Raman encoder answer IR
        queries only."""
        return model_query_modes(self.overrides.get("loss", Config.loss))


# Chapter 3: one variant per loss mode, without mass
LOSS_VARIANTS = tuple(Variant(name, mode.label, {"loss": name, "mass": False})
                      for name, mode in LOSS_MODES.items())
MASS_VARIANTS = (
    Variant("graph_ir+mass", "IR only + mass", {"loss": "graph_ir", "mass": True}),
    Variant("all_pairs+mass", "all pairs + mass", {"loss": "all_pairs", "mass": True}),
)


@dataclass
class VariantRun:
    """A trained variant with its test-split evaluation and its evaluation against the larger
    library (`config.library_size` candidates: the test structures plus QM9 distractors)."""

    variant: Variant
    result: TrainResult
    evaluation: Evaluation
    library: Evaluation


def run_variant(config: Config, data: PreparedData, variant: Variant,
                trainer_kwargs: dict[str, Any] | None = None, **eval_kwargs: Any) -> VariantRun:
    """Train (or load) `config` with the variant's overrides and evaluate it on the test split
    and against `config.library_size` candidates."""
    result = train_variant(config, data, variant, trainer_kwargs)
    return VariantRun(variant, result, *reevaluate_model(result, data, **eval_kwargs))


def epoch_budget_text(config: Config, runs: Sequence[VariantRun]) -> str:
    """One sentence for an ablation chapter: the epoch budget it ran with (`ablation_epochs`),
    the epochs its runs actually trained, and the main model's budget for comparison."""
    trained = sorted({len(r.result.history) for r in runs})
    span = f"{trained[0]}" if len(trained) == 1 else f"{trained[0]}–{trained[-1]}"
    main = get_config(config.profile).max_epochs
    kept = [r.variant.label for r in runs if r.result.run_dir.name.startswith(PREFIX_TAG + "-")]
    shared = (f" The {' and '.join(kept)} run is the first {config.max_epochs} epochs of "
              f"Chapter 2's main model: the same config, seed and data give the same epochs bit "
              "for bit, so that run kept them (`PrefixSnapshot`) instead of a second training."
              if kept else "")
    return (f"Epoch budget of these runs: at most **{config.max_epochs}** (`ablation_epochs`; "
            f"early stopping patience {config.patience}); they trained {span} epochs. Chapter "
            f"2's main model, with the same `{config.profile}` profile, trains up to {main}."
            + shared)


def train_variant(config: Config, data: PreparedData, variant: Variant,
                  trainer_kwargs: dict[str, Any] | None = None) -> TrainResult:
    """Train (or load) `config` with the variant's overrides, without evaluating it."""
    tag = "ablation-" + variant.key.replace("+", "-")
    return train(config.replace(**variant.overrides), data, tag=tag,
                 trainer_kwargs=trainer_kwargs)


def reevaluate_model(result: TrainResult, data: PreparedData, mass_tol_da: float | None = None,
                     query_mass_offset_da: float = 0.0) -> tuple[Evaluation, Evaluation]:
    """(test split, larger library) evaluations of a trained run."""
    cfg = result.config
    model = load_model(result.best_checkpoint, expected=cfg)
    kw = dict(mass_tol_da=mass_tol_da, query_mass_offset_da=query_mass_offset_da)
    return (evaluate(model, data, "test", cfg.build_dir, seed=cfg.seed, **kw),
            evaluate_library(model, data, cfg, **kw))


def reevaluate(run: VariantRun, data: PreparedData, **eval_kwargs: Any) -> VariantRun:
    """The same trained run evaluated differently (a mass filter, a wrong query mass, ...)."""
    return VariantRun(run.variant, run.result, *reevaluate_model(run.result, data, **eval_kwargs))


TABLE_METRICS = ("top1 %", "top1 95% CI", "top5 %", "top10 %", "top25 %")


def library_labels(config: Config, data: PreparedData) -> tuple[str, str]:
    """Column labels of the two libraries: the test split and `config.library_size`."""
    n_test, n_all = len(data.splits["test"]), max_library_size(data)
    size = max(min(config.library_size, n_all), n_test)
    return size_label(n_test, n_test), size_label(size, n_test, n_all)


def _cells(evaluation: Evaluation | None, mode: str) -> list[Any]:
    if evaluation is None or mode not in evaluation.table.index:
        return [float("nan")] * len(TABLE_METRICS)  # e.g. the paper score beyond the test split
    r = evaluation.table.loc[mode]
    return [round(float(r["top1"]), 1), r["top1_ci"],
            *(round(float(r[f"top{k}"]), 1) for k in (5, 10, 25))]


def library_table(rows: list[tuple[str, str, str, Sequence[Evaluation | None]]],
                  labels: Sequence[str]) -> pd.DataFrame:
    """Rows (model, query, mode, one evaluation per library) as a table indexed by (model,
    query) with columns (library label, metric); NaN where a library has no value for a mode."""
    index = pd.MultiIndex.from_tuples([(m, q) for m, q, *_ in rows], names=["model", "query"])
    columns = pd.MultiIndex.from_product([list(labels), TABLE_METRICS],
                                         names=["library", "metric"])
    values = []
    for model, _, mode, evaluations in rows:
        if len(evaluations) != len(labels):
            raise ValueError(f"{model}: {len(evaluations)} evaluations for {len(labels)} libraries")
        values.append([c for ev in evaluations for c in _cells(ev, mode)])
    return pd.DataFrame(values, index=index, columns=columns)


def variant_rows(runs: dict[str, VariantRun]
                 ) -> list[tuple[str, str, str, tuple[Evaluation, Evaluation]]]:
    """`library_table` rows of each run in every query mode that applies to its variant."""
    return [(name, mode, mode, (run.evaluation, run.library))
            for name, run in runs.items() for mode in run.variant.query_modes]


def variant_table(runs: dict[str, VariantRun], labels: tuple[str, str]) -> pd.DataFrame:
    """`library_table` of `variant_rows(runs)`."""
    return library_table(variant_rows(runs), labels)


def baseline_rows(name: str, test: Evaluation, library: Evaluation, prefix: str
                  ) -> list[tuple[str, str, str, tuple[Evaluation, Evaluation]]]:
    """`library_table` rows of a baseline whose modes are named "<prefix><mode>"."""
    return [(name, mode.removeprefix(prefix), mode, (test, library)) for mode in test.table.index]


def top1(table: pd.DataFrame, model: str, query: str, library: int = 0) -> float:
    """Top-1 % of (model, query) in the first (test split) or second library of a table."""
    label = table.columns.get_level_values(0).unique()[library]
    return float(table.loc[(model, query), (label, "top1 %")])


PUBLISHED_LABEL = f"published (QM9S, {PAPER_LIBRARY_SIZE:,} candidates)"


def paper_rows(variants: Sequence[Variant]) -> dict[tuple[str, str], str]:
    """{(variant label, query mode the paper scored it with): PUBLISHED key}: IR for the IR-only
    models, eq. 6 ("ir+raman paper") for the tri-modal ones."""
    return {(v.label, IR_RAMAN_PAPER if IR_RAMAN_PAPER in v.query_modes else "ir"): v.key
            for v in variants}


def with_published(table: pd.DataFrame, rows: dict[tuple[str, str], str]) -> pd.DataFrame:
    """`table` plus the paper's top-1 / top-25 in columns under PUBLISHED_LABEL, on the rows
    named in `rows` ((model, query) -> PUBLISHED key); NaN elsewhere."""
    bad = [r for r in rows if not (isinstance(r, tuple) and len(r) == 2)]
    if bad:
        raise ValueError(f"with_published: rows must be (model, query) pairs, got {bad[:3]}; "
                         "see paper_rows(variants)")
    out = table.copy()
    for metric in ("top1 %", "top25 %"):
        out[(PUBLISHED_LABEL, metric)] = float("nan")
    for row, key in rows.items():
        for metric, k in (("top1 %", "top1"), ("top25 %", "top25")):
            if row in out.index and k in PUBLISHED.get(key, {}):
                out.loc[row, (PUBLISHED_LABEL, metric)] = PUBLISHED[key][k]
    return out


