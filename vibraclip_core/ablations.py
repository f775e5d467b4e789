"""Named training variants of the analysis chapters (3-5), trained once and shared.

A variant is a set of config overrides plus the query mode that represents it (an IR-only model is
queried with IR, a tri-modal one with IR + Raman). `run_variant` trains or loads the run (cached by
config and data hash, so a variant that two chapters need is trained once) and evaluates it on the
test split; `save_results` writes a chapter's headline table for the book's summary page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .config import Config
from .datasets import PreparedData
from .evaluate import Evaluation, evaluate
from .train import TrainResult, load_model, train

# The paper's QM9S test-set figures (Rocabert-Oriols et al. 2025, Fig. 3A/3B), top-1 / top-25 in %.
# Shown only in columns labelled "published"; never mixed with measured values.
PUBLISHED: dict[str, dict[str, float]] = {
    "graph_ir": {"top1": 12.4, "top25": 63.6},
    "graph_centred": {"top1": 55.1, "top25": 94.0},
    "all_pairs": {"top1": 62.9, "top25": 94.3},
    "graph_ir+mass": {"top1": 24.2},
    "all_pairs+mass": {"top1": 81.7, "top25": 98.9},
}


@dataclass(frozen=True)
class Variant:
    """A labelled set of config overrides and the query modes that evaluate it."""

    key: str  # also the key of PUBLISHED
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def query_modes(self) -> tuple[str, ...]:
        """Evaluation modes that apply: IR-only models answer IR queries only."""
        if self.overrides.get("loss") == "graph_ir":
            return ("ir",)
        return ("ir+raman library", "ir+raman paper", "ir")


LOSS_VARIANTS = (
    Variant("graph_ir", "IR only (graph–IR)", {"loss": "graph_ir", "mass": False}),
    Variant("graph_centred", "IR + Raman (graph-centred)", {"loss": "graph_centred", "mass": False}),
    Variant("all_pairs", "IR + Raman, all pairs", {"loss": "all_pairs", "mass": False}),
)
MASS_VARIANTS = (
    Variant("graph_ir+mass", "IR only + mass", {"loss": "graph_ir", "mass": True}),
    Variant("all_pairs+mass", "all pairs + mass", {"loss": "all_pairs", "mass": True}),
)


# Chapter 5's missing fractions: the paper's four under `paper`; the cpu book keeps the ends only
# to stay within its hour (each point beyond 0 % is two trainings, about 3.5 min each on 2 cores)
MISSING_FRACTIONS = {"paper": [0.0, 0.1, 0.25, 0.5], "cpu": [0.0, 0.5], "tiny": [0.0, 0.5]}

# Chapter 2's comparison with the reference code's loss is one extra training at the ablation
# budget; the cpu book skips it to stay within its hour (the tiny profile keeps it under test)
REFERENCE_LOSS_COMPARISON = {"paper": True, "cpu": False, "tiny": True}


def default_missing_fractions(profile: str) -> list[float]:
    """Missing-spectrum fractions Chapter 5 trains at under `profile`."""
    return MISSING_FRACTIONS.get(profile, MISSING_FRACTIONS["paper"])


def default_compare_reference_loss(profile: str) -> bool:
    """Whether Chapter 2 trains the reference-loss variant beside the default under `profile`."""
    return REFERENCE_LOSS_COMPARISON.get(profile, REFERENCE_LOSS_COMPARISON["paper"])


@dataclass
class VariantRun:
    variant: Variant
    result: TrainResult
    evaluation: Evaluation


def run_variant(config: Config, data: PreparedData, variant: Variant,
                trainer_kwargs: dict[str, Any] | None = None, **eval_kwargs: Any) -> VariantRun:
    """Train (or load) `config` with the variant's overrides and evaluate it on the test split."""
    cfg = config.replace(**variant.overrides)
    tag = "ablation-" + variant.key.replace("+", "-")
    result = train(cfg, data, tag=tag, trainer_kwargs=trainer_kwargs)
    model = load_model(result.best_checkpoint, expected=cfg)
    evaluation = evaluate(model, data, "test", cfg.build_dir, seed=cfg.seed, **eval_kwargs)
    return VariantRun(variant, result, evaluation)


def reevaluate(run: VariantRun, data: PreparedData, **eval_kwargs: Any) -> Evaluation:
    """The same trained run evaluated differently (a mass filter, a wrong query mass, ...)."""
    cfg = run.result.config
    model = load_model(run.result.best_checkpoint, expected=cfg)
    return evaluate(model, data, "test", cfg.build_dir, seed=cfg.seed, **eval_kwargs)


def variant_table(runs: dict[str, tuple[Variant, Evaluation]],
                  ks: tuple[int, ...] = (1, 5, 10, 25)) -> pd.DataFrame:
    """One row per (row name, query mode that applies): top-k in % with 95 % intervals, MRR."""
    rows = [evaluation_row(name, mode, evaluation, ks)
            for name, (variant, evaluation) in runs.items() for mode in variant.query_modes]
    return pd.DataFrame(rows).set_index(["model", "query"])


def evaluation_row(name: str, mode: str, evaluation: Evaluation,
                   ks: tuple[int, ...] = (1, 5, 10, 25), query: str | None = None
                   ) -> dict[str, Any]:
    """One table row from `evaluation.table.loc[mode]`, labelled (name, query or mode)."""
    r = evaluation.table.loc[mode]
    row: dict[str, Any] = {"model": name, "query": query or mode}
    for k in ks:
        row[f"top{k} %"] = round(float(r[f"top{k}"]), 1)
        row[f"top{k} 95% CI"] = r[f"top{k}_ci"]
    row["MRR"] = round(float(r["mrr"]), 3)
    return row


def with_rows(table: pd.DataFrame, name: str, evaluation: Evaluation,
              strip: str = "") -> pd.DataFrame:
    """`table` plus one row per mode of `evaluation` under model `name` (`strip` is removed
    from the mode names, e.g. "CCA ")."""
    extra = pd.DataFrame([evaluation_row(name, mode, evaluation, query=mode.replace(strip, ""))
                          for mode in evaluation.table.index]).set_index(["model", "query"])
    return pd.concat([table, extra[table.columns]])


def published_table(variants: tuple[Variant, ...]) -> pd.DataFrame:
    """The paper's figures for these variants, in their own clearly labelled frame."""
    rows = {v.label: {f"published {k} % (QM9S, paper)": val
                      for k, val in PUBLISHED.get(v.key, {}).items()} for v in variants}
    return pd.DataFrame.from_dict(rows, orient="index")


def save_results(table: pd.DataFrame, build_dir: str | Path, name: str,
                 meta: dict[str, Any] | None = None) -> Path:
    """Write a chapter's headline table as build/results/<name>.csv (+ .json metadata)."""
    out = Path(build_dir) / "results" / f"{name}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out)
    out.with_suffix(".json").write_text(json.dumps(meta or {}, indent=2, default=str))
    return out


def ranked_text(values: dict[str, float], unit: str = " %") -> str:
    """'**a** (62.1 %) > **b** (55.0 %) = **c** (55.0 %)': names by decreasing value, one decimal."""
    order = sorted(values, key=values.get, reverse=True)
    parts = [f"**{order[0]}** ({values[order[0]]:.1f}{unit})"]
    for prev, name in zip(order, order[1:]):
        sign = ">" if round(values[prev], 1) > round(values[name], 1) else "="
        parts.append(f" {sign} **{name}** ({values[name]:.1f}{unit})")
    return "".join(parts)
