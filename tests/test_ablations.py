import numpy as np
import pandas as pd
import pytest
import torch

from vibraclip_core.ablations import (LOSS_VARIANTS, MASS_VARIANTS, PUBLISHED, published_table,
                                      ranked_text, save_results, variant_table, with_rows)
from vibraclip_core.evaluate import Evaluation


def fake_evaluation(modes, top1):
    rows = []
    for m, t in zip(modes, top1):
        rows.append({"query": m, "n": 10, "top1": t, "top1_ci": "0.0–1.0", "top5": t + 1,
                     "top5_ci": "x", "top10": t + 2, "top10_ci": "x", "top25": t + 3,
                     "top25_ci": "x", "mrr": t / 100})
    table = pd.DataFrame(rows).set_index("query")
    return Evaluation(table, {m: np.zeros(25) for m in modes},
                      {m: torch.zeros(10, dtype=torch.long) for m in modes})


ALL = ["ir", "raman", "ir+raman library", "ir+raman paper"]


def test_variant_table_keeps_only_the_query_modes_that_apply():
    ir_only, tri = LOSS_VARIANTS[0], LOSS_VARIANTS[2]
    table = variant_table({"a": (ir_only, fake_evaluation(ALL, [10, 20, 30, 40])),
                           "b": (tri, fake_evaluation(ALL, [11, 21, 31, 41]))})
    assert list(table.index) == [("a", "ir"), ("b", "ir+raman library"),
                                 ("b", "ir+raman paper"), ("b", "ir")]
    assert table.loc[("b", "ir+raman paper"), "top1 %"] == 41
    assert table.loc[("a", "ir"), "top25 %"] == 13


def test_with_rows_appends_a_baseline_with_stripped_mode_names():
    table = variant_table({"a": (LOSS_VARIANTS[0], fake_evaluation(ALL, [10, 20, 30, 40]))})
    out = with_rows(table, "CCA", fake_evaluation(["CCA ir", "CCA ir+raman"], [1.0, 2.0]), "CCA ")
    assert out.loc[("CCA", "ir+raman"), "top1 %"] == 2.0
    assert list(out.columns) == list(table.columns)


def test_published_figures_stay_in_their_own_labelled_columns():
    pub = published_table(LOSS_VARIANTS + MASS_VARIANTS)
    assert all(c.startswith("published") for c in pub.columns)
    assert pub.loc["all pairs + mass", "published top1 % (QM9S, paper)"] == PUBLISHED[
        "all_pairs+mass"]["top1"]


def test_ranked_text_orders_and_marks_ties():
    text = ranked_text({"low": 1.0, "high": 9.04, "tie": 9.0})
    assert text.index("high") < text.index("tie") < text.index("low")
    assert "= **tie**" in text and "> **low**" in text


def test_save_results_writes_csv_and_meta(tmp_path):
    path = save_results(pd.DataFrame({"x": [1]}), tmp_path, "ch", {"profile": "tiny"})
    assert pd.read_csv(path)["x"].tolist() == [1]
    assert '"tiny"' in path.with_suffix(".json").read_text()
