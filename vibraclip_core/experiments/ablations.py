"""Named training variants of the analysis chapters (3-5), trained once and shared.

A variant is a set of config overrides plus the query mode that represents it (an IR-only model is
queried with IR, a tri-modal one with IR + Raman). `run_variant` trains or loads the run (cached by
config and data hash, so a variant that two chapters need is trained once) and evaluates it on the
test split (`results.save_results` writes a chapter's headline table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from vibraclip_core.config.choices import PAPER_LIBRARY_SIZE, PAPER_PUBCHEM_SIZE
from vibraclip_core.config.loss_modes import LOSS_MODES
from vibraclip_core.config.profiles import Config, get_config
from vibraclip_core.config.query_modes import (IR_RAMAN, IR_RAMAN_PAPER, model_query_modes,
                                               primary_query_mode)
from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.experiments.library_size import evaluate_library, max_library_size, size_label
from vibraclip_core.model.losses import REFERENCE_TEMPERATURE
from vibraclip_core.retrieval.evaluate import Evaluation, evaluate
from vibraclip_core.training.train import TrainResult, final_metrics, load_model, train

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

# The released missing-data notebook's top-1 % (QM9S) against the fraction of training spectra
# removed: IR removed from the IR + mass model, Raman removed from the all-pairs + mass model.
PUBLISHED_MISSING: dict[str, dict[float, float]] = {
    "graph_ir+mass": {0.0: 24.2, 0.05: 22.7, 0.10: 22.7, 0.15: 20.6, 0.20: 17.2, 0.50: 0.0},
    "all_pairs+mass": {0.0: 81.7, 0.05: 82.0, 0.10: 80.7, 0.15: 76.8, 0.20: 78.2, 0.50: 63.5},
}

# The paper's realignment results (Fig. 3C/3D), all pairs + mass, IR + Raman queries:
# (top-1 %, top-25 %, what the library held)
PUBLISHED_REALIGNMENT: dict[str, tuple[float, float, str]] = {
    "pubchem": (67.6, 98.2, "PubChem molecules (5,500 in the set), realigned, simulated spectra; "
                "library: the held-out 20 % (test_ratio 0.2 in the released "
                f"configs/config_ft.yaml), {PAPER_PUBCHEM_SIZE:,} candidates"),
    "experimental": (34.4, 100.0, "320 experimental IR + Raman spectra, realigned; library: the "
                     "held-out 20 % (test_ratio 0.2), about 64 candidates"),
}


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
    return (f"Epoch budget of these runs: at most **{config.max_epochs}** (`ablation_epochs`; "
            f"early stopping patience {config.patience}); they trained {span} epochs. Chapter "
            f"2's main model, with the same `{config.profile}` profile, trains up to {main}.")


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


def mass_anchoring_table(plain: dict[str, VariantRun], filtered: dict[str, VariantRun],
                         anchored: dict[str, VariantRun], both: dict[str, VariantRun],
                         mass_tol_da: float, labels: tuple[str, str]
                         ) -> tuple[pd.DataFrame, dict[str, dict[str, VariantRun]]]:
    """Chapter 4's table: IR-only and all-pairs models (keys "graph_ir", "all_pairs"), each in
    its own query mode, without mass, filtered, anchored, anchored + filtered; plus the anchored
    all-pairs model under eq. 6, where the paper's Fig. 3B figure sits. Also returns the runs by
    setting name (model key -> run)."""
    unanchor = lambda runs: {k.removesuffix("+mass"): r for k, r in runs.items()}  # noqa: E731
    settings = {"no mass": plain, f"mass filter ±{mass_tol_da} Da": filtered,
                "mass anchoring": unanchor(anchored),
                f"anchoring + filter ±{mass_tol_da} Da": unanchor(both)}
    eq6 = ("all_pairs", "mass anchoring, paper score (eq. 6)", IR_RAMAN_PAPER,
           (anchored["all_pairs+mass"].evaluation, anchored["all_pairs+mass"].library))
    table = library_table([(key, name, primary_query_mode(key),
                            (runs[key].evaluation, runs[key].library))
                           for key in ("graph_ir", "all_pairs") for name, runs in settings.items()]
                          + [eq6], labels)
    table = with_published(table, {("graph_ir", "mass anchoring"): "graph_ir+mass",
                                   eq6[:2]: "all_pairs+mass"})
    return table, settings


def missing_data_table(runs_ir: dict[float, VariantRun], runs_raman: dict[float, VariantRun],
                       labels: tuple[str, str]) -> pd.DataFrame:
    """Chapter 5's table indexed by (series, % of spectra removed): (a) IR + mass with IR
    queries (IR removed), (b) all pairs + mass (Raman removed) with eq. 6, the library score and
    IR alone; published top-1 (PUBLISHED_MISSING) beside the rows the paper scored alike."""
    series = {"(a) IR + mass, IR query": (runs_ir, "ir", "graph_ir+mass"),
              "(b) all pairs + mass, IR + Raman, paper score": (runs_raman, IR_RAMAN_PAPER,
                                                                 "all_pairs+mass"),
              "(b) all pairs + mass, IR + Raman, library score": (runs_raman,
                                                                   IR_RAMAN, ""),
              "(b) all pairs + mass, IR-only query": (runs_raman, "ir", "")}
    table = library_table([(name, round(100 * f, 4), mode, (runs[f].evaluation, runs[f].library))
                           for name, (runs, mode, _) in series.items() for f in runs], labels)
    table[(PUBLISHED_LABEL, "top1 %")] = [PUBLISHED_MISSING.get(key, {}).get(f, float("nan"))
                                          for runs, _, key in series.values() for f in runs]
    return table.rename_axis(["series", "spectra removed from training / %"])


def beside_realignment(ours: dict[str, tuple[str, str, int, pd.Series]]) -> pd.DataFrame:
    """Chapter 6's comparison: per row name, (PUBLISHED_REALIGNMENT key, our query, our number
    of candidates, our evaluation row with top1 / top25) beside the published figures."""
    return pd.DataFrame(
        [{"our query": query, "our candidates": n, "measured top-1 %": row["top1"],
          "measured top-25 %": row["top25"],
          "published top-1 %": PUBLISHED_REALIGNMENT[key][0],
          "published top-25 %": PUBLISHED_REALIGNMENT[key][1],
          "published: set and library": PUBLISHED_REALIGNMENT[key][2]}
         for key, query, n, row in ours.values()], index=list(ours))


def ranked_text(values: dict[str, float], unit: str = " %") -> str:
    """'**a** (62.1 %) > **b** (55.0 %) = **c** (55.0 %)': names by decreasing value, one decimal."""
    order = sorted(values, key=values.get, reverse=True)
    parts = [f"**{order[0]}** ({values[order[0]]:.1f}{unit})"]
    for prev, name in zip(order, order[1:]):
        sign = ">" if round(values[prev], 1) > round(values[name], 1) else "="
        parts.append(f" {sign} **{name}** ({values[name]:.1f}{unit})")
    return "".join(parts)

