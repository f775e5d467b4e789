import numpy as np
import pandas as pd
import torch

from vibraclip_core.analyses import ch3_loss_ablations as M
from vibraclip_core.experiments.ablations import (LOSS_VARIANTS, PUBLISHED, PUBLISHED_LABEL,
                                                  VariantRun)
from vibraclip_core.retrieval.evaluate import Evaluation

LABELS = ("test split: 10 candidates", "200 candidates")
ALL = ["ir", "raman", "ir+raman library", "ir+raman paper"]


def evaluation(modes, top1, prefix=""):
    table = pd.DataFrame([{"query": prefix + m, "top1": t, "top1_ci": "x", "top5": t + 1,
                           "top10": t + 2, "top25": t + 3} for m, t in zip(modes, top1)]
                         ).set_index("query")
    return Evaluation(table, {prefix + m: np.full(25, t / 100) for m, t in zip(modes, top1)},
                      {prefix + m: torch.zeros(10, dtype=torch.long) for m in modes})


def runs():
    return {v.label: VariantRun(v, None, evaluation(ALL, [10 * k + 1, 10 * k + 2, 10 * k + 3,
                                                          10 * k + 4]),
                                evaluation(ALL[:3], [k, k, k]))
            for k, v in enumerate(LOSS_VARIANTS)}


def baseline(name, short, prefix, best_test, best_lib):
    modes = ["ir", "raman", "ir+raman library"]
    return M.BaselineResult(name, short, prefix, evaluation(modes, [0.1, best_test, 0.2], prefix),
                            evaluation(modes, [best_lib, 0.0, 0.0], prefix))


def test_results_table_holds_runs_then_baselines_with_published_beside_the_paper_modes():
    cca = baseline("CCA (learned)", "CCA", "CCA ", 5.0, 1.0)
    rnd = baseline("random (paper)", "random projection", "random ", 0.3, 0.05)
    table = M.results_table(runs(), [cca, rnd], LABELS)
    models = list(dict.fromkeys(table.index.get_level_values(0)))
    assert models == [v.label for v in LOSS_VARIANTS] + ["CCA (learned)", "random (paper)"]
    assert table.loc[("CCA (learned)", "raman"), (LABELS[0], "top1 %")] == 5.0
    assert table.loc[("random (paper)", "ir"), (LABELS[1], "top1 %")] == 0.1  # rounded to 0.1
    ir_only = LOSS_VARIANTS[0]
    assert table.loc[(ir_only.label, "ir"), (PUBLISHED_LABEL, "top1 %")] == PUBLISHED[
        ir_only.key]["top1"]
    assert np.isnan(table.loc[("CCA (learned)", "ir"), (PUBLISHED_LABEL, "top1 %")])
    assert rnd.best_top1() == 0.3 and cca.best_top1() == 5.0


def test_curves_and_headline_take_each_run_in_its_own_query_mode():
    r = runs()
    cca = baseline("CCA (learned)", "CCA", "CCA ", 5.0, 1.0)
    curves = M.topk_curves(r, [cca])
    ir_only, tri = LOSS_VARIANTS[0], LOSS_VARIANTS[2]
    assert set(curves) == {f"{ir_only.label} — ir", f"{LOSS_VARIANTS[1].label} — ir+raman library",
                           f"{tri.label} — ir+raman library", "CCA — ir+raman library"}
    assert curves[f"{ir_only.label} — ir"][0] == 0.01  # the IR mode (top-1 1 %) of run 0
    table = M.results_table(r, [cca], LABELS)
    assert M.headline_top1(table, r) == {ir_only.label: 1.0, LOSS_VARIANTS[1].label: 13.0,
                                         tri.label: 23.0}
    assert M.headline_top1(table, r, library=1)[tri.label] == 2.0
