"""Chapter 3's comparison: the three loss variants (IR only, graph-centred, all pairs) beside the
two baselines (CCA, the paper's random projections), at the test split and the larger library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vibraclip_core.config.profiles import Config
from vibraclip_core.config.query_modes import IR_RAMAN
from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.experiments.ablations import (LOSS_VARIANTS, VariantRun, baseline_rows,
                                                  library_table, paper_rows, run_variant, top1,
                                                  variant_rows, with_published)
from vibraclip_core.experiments.library_size import evaluate_baselines_library
from vibraclip_core.retrieval.baselines import RandomProjectionBaseline
from vibraclip_core.retrieval.evaluate import (Evaluation, cca_baselines, cca_evaluation,
                                               random_projection_evaluation)

BASELINE_CURVE_MODE = IR_RAMAN


@dataclass
class BaselineResult:
    """A baseline's test-split and larger-library evaluations; its modes are `prefix` + mode."""

    name: str  # the table's row label
    short: str  # the curves' legend label
    prefix: str
    test: Evaluation
    library: Evaluation

    def best_top1(self) -> float:
        """Its best top-1 % over every mode and both libraries."""
        return max(float(self.test.table["top1"].max()), float(self.library.table["top1"].max()))


def baselines(config: Config, data: PreparedData) -> list[BaselineResult]:
    """[CCA, random projections]: the learned linear baseline fitted on the training split and
    the paper's seeded random projections (nothing fitted), each scored like the model."""
    random_baseline = RandomProjectionBaseline(dim=config.latent_dim, seed=config.seed)
    random_test = random_projection_evaluation(data, "test", dim=config.latent_dim,
                                               seed=config.seed)
    random_lib = evaluate_baselines_library(
        dict.fromkeys(("ir", "raman", IR_RAMAN), random_baseline), data, config,
        "random ")
    cca = cca_evaluation(data, "test", seed=config.seed)
    cca_lib = evaluate_baselines_library(cca_baselines(data), data, config, "CCA ")
    return [BaselineResult("CCA (learned linear baseline)", "CCA", "CCA ", cca, cca_lib),
            BaselineResult("random projection (paper's baseline)", "random projection",
                           "random ", random_test, random_lib)]


def results_table(runs: dict[str, VariantRun], baseline_results: Sequence[BaselineResult],
                  labels: Sequence[str]) -> pd.DataFrame:
    """Every run in each query mode of its variant, then the baselines, at both libraries, with
    the paper's published figures beside the modes it scored."""
    rows = variant_rows(runs)
    for b in baseline_results:
        rows += baseline_rows(b.name, b.test, b.library, b.prefix)
    return with_published(library_table(rows, labels), paper_rows(LOSS_VARIANTS))


def topk_curves(runs: dict[str, VariantRun], baseline_results: Sequence[BaselineResult]
                ) -> dict[str, np.ndarray]:
    """Test-split top-k curves: each run in its own (first) query mode, each baseline in its
    IR + Raman library mode."""
    curves = {f"{label} — {run.variant.query_modes[0]}":
              run.evaluation.curves[run.variant.query_modes[0]] for label, run in runs.items()}
    for b in baseline_results:
        mode = BASELINE_CURVE_MODE
        curves[f"{b.short} — {mode}"] = b.test.curves[b.prefix + mode]
    return curves


def headline_top1(table: pd.DataFrame, runs: dict[str, VariantRun], library: int = 0
                  ) -> dict[str, float]:
    """{run label: top-1 %} of each run in its own query mode, in the first (test split) or
    second library of `results_table`."""
    return {label: top1(table, label, run.variant.query_modes[0], library)
            for label, run in runs.items()}


def loss_variant_runs(config: Config, data: PreparedData, trainer_kwargs: dict
                      ) -> dict[str, VariantRun]:
    """{variant label: run} of the three loss variants (LOSS_VARIANTS), trained or loaded."""
    return {v.label: run_variant(config, data, v, trainer_kwargs) for v in LOSS_VARIANTS}


def ranked_text(values: dict[str, float], unit: str = " %") -> str:
    """'**a** (62.1 %) > **b** (55.0 %) = **c** (55.0 %)': names by decreasing value, one decimal."""
    order = sorted(values, key=values.get, reverse=True)
    parts = [f"**{order[0]}** ({values[order[0]]:.1f}{unit})"]
    for prev, name in zip(order, order[1:]):
        sign = ">" if round(values[prev], 1) > round(values[name], 1) else "="
        parts.append(f" {sign} **{name}** ({values[name]:.1f}{unit})")
    return "".join(parts)
