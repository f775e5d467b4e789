from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vibraclip_core.analyses.ch3_loss_ablations import ranked_text
from vibraclip_core.config import profiles as C
from vibraclip_core.experiments.ablations import (LOSS_VARIANTS, PUBLISHED, PUBLISHED_LABEL,
                                                  VariantRun, baseline_rows, library_table,
                                                  paper_rows, top1, variant_table, with_published)
from vibraclip_core.retrieval.evaluate import Evaluation


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


def _run(variant, test, library):
    return VariantRun(variant, None, test, library)


LABELS = ("test split: 10 candidates", "12,741 candidates (the paper's size)")


def test_variant_table_keeps_only_the_query_modes_that_apply_at_both_libraries():
    ir_only, tri = LOSS_VARIANTS[0], LOSS_VARIANTS[2]
    lib_modes = ALL[:3]  # no paper score beyond the test split: it needs candidates' spectra
    table = variant_table({"a": _run(ir_only, fake_evaluation(ALL, [10, 20, 30, 40]),
                                     fake_evaluation(lib_modes, [1, 2, 3])),
                           "b": _run(tri, fake_evaluation(ALL, [11, 21, 31, 41]),
                                     fake_evaluation(lib_modes, [4, 5, 6]))}, LABELS)
    assert list(table.index) == [("a", "ir"), ("b", "ir+raman library"),
                                 ("b", "ir+raman paper"), ("b", "ir")]
    assert table.loc[("b", "ir+raman paper"), (LABELS[0], "top1 %")] == 41
    assert np.isnan(table.loc[("b", "ir+raman paper"), (LABELS[1], "top1 %")])
    assert table.loc[("b", "ir+raman library"), (LABELS[1], "top1 %")] == 6
    assert table.loc[("a", "ir"), (LABELS[0], "top25 %")] == 13
    assert table.loc[("a", "ir"), (LABELS[1], "top1 %")] == 1
    assert top1(table, "b", "ir", library=1) == 4 and top1(table, "b", "ir") == 11


def test_baseline_rows_strip_the_prefix_and_published_values_sit_on_the_paper_mode():
    ir_only, tri = LOSS_VARIANTS[0], LOSS_VARIANTS[2]
    table = variant_table({ir_only.label: _run(ir_only, fake_evaluation(ALL, [10, 20, 30, 40]),
                                               fake_evaluation(ALL[:3], [1, 2, 3])),
                           tri.label: _run(tri, fake_evaluation(ALL, [10, 20, 30, 40]),
                                           fake_evaluation(ALL[:3], [1, 2, 3]))}, LABELS)
    modes = ["CCA ir", "CCA ir+raman library"]
    rows = baseline_rows("CCA", fake_evaluation(modes, [1.0, 2.0]),
                         fake_evaluation(modes, [0.5, 0.7]), "CCA ")
    out = library_table(rows, LABELS)
    assert out.loc[("CCA", "ir+raman library"), (LABELS[1], "top1 %")] == 0.7
    pub = with_published(table, paper_rows((ir_only, tri)))
    assert pub.loc[(ir_only.label, "ir"), (PUBLISHED_LABEL, "top1 %")] == PUBLISHED["graph_ir"][
        "top1"]
    assert pub.loc[(tri.label, "ir+raman paper"), (PUBLISHED_LABEL, "top25 %")] == PUBLISHED[
        "all_pairs"]["top25"]
    assert np.isnan(pub.loc[(tri.label, "ir+raman library"), (PUBLISHED_LABEL, "top1 %")])
    with pytest.raises(ValueError, match="rows must be \\(model, query\\) pairs"):
        with_published(table, {tri.label: tri.key})  # a model alone would fill all its rows


def test_ranked_text_orders_and_marks_ties():
    text = ranked_text({"low": 1.0, "high": 9.04, "tie": 9.0})
    assert text.index("high") < text.index("tie") < text.index("low")
    assert "= **tie**" in text and "> **low**" in text


def test_missing_fractions_are_the_profile_config_field(monkeypatch):
    assert C.get_config("paper").missing_fractions == (0.0, 0.05, 0.10, 0.15, 0.20, 0.50)
    assert C.get_config("cpu").missing_fractions == (0.0, 0.5)
    # the chapter's answer follows the profile's field, not a table of its own
    monkeypatch.setitem(C.PROFILES, "cpu", {**C.PROFILES["cpu"], "missing_fractions": [0, 0.3]})
    assert C.get_config("cpu").missing_fractions == (0.0, 0.3)


def test_epoch_budget_text_states_budget_and_epochs_trained():
    from types import SimpleNamespace

    from vibraclip_core.experiments.ablations import epoch_budget_text

    config = C.get_config("cpu", ablation_epochs=7).for_ablation()

    def run(n: int, folder: str = "ablation-x-1-2", label: str = "IR") -> SimpleNamespace:
        return SimpleNamespace(variant=SimpleNamespace(label=label),
                               result=SimpleNamespace(history=[{}] * n, run_dir=Path(folder)))

    runs = [run(n) for n in (7, 5, 7)]
    text = epoch_budget_text(config, runs)
    assert "at most **7**" in text and "trained 5–7 epochs" in text
    assert f"trains up to {C.get_config('cpu').max_epochs}" in text
    assert "main model:" not in text  # every run trained here
    assert "trained 4 epochs" in epoch_budget_text(config, [run(4)])
    # a run kept by a longer one (training.train.PrefixSnapshot) is named as such
    kept = epoch_budget_text(config, [run(7), run(7, "prefix-abc-def", "all pairs + mass")])
    assert "The all pairs + mass run is the first 7 epochs of Chapter 2's main model" in kept


def test_loss_variants_are_the_registered_loss_modes(monkeypatch):
    from vibraclip_core.experiments.ablations import Variant
    from vibraclip_core.config.loss_modes import LOSS_MODES, LossMode

    assert [v.key for v in LOSS_VARIANTS] == list(LOSS_MODES)
    assert [v.label for v in LOSS_VARIANTS] == [m.label for m in LOSS_MODES.values()]
    assert all(C.get_config("cpu").replace(**v.overrides).loss == v.key for v in LOSS_VARIANTS)
    # the query modes follow the mode's modalities, not its name
    assert LOSS_VARIANTS[0].query_modes == ("ir",)
    assert "ir+raman paper" in LOSS_VARIANTS[2].query_modes
    monkeypatch.setitem(LOSS_MODES, "ir_raman_only", LossMode(
        "IR–Raman only", ("ir_raman",), {"ir_raman": 1.0}, (("ir", "raman"),)))
    assert Variant("x", "x", {"loss": "ir_raman_only"}).query_modes[0] == "ir+raman library"
    assert Variant("y", "y", {}).query_modes == LOSS_VARIANTS[2].query_modes  # Config.loss
