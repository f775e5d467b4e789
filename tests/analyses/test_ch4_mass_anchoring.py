import numpy as np
import pandas as pd
import torch

from vibraclip_core.analyses import ch4_mass_anchoring as A
from vibraclip_core.experiments.ablations import MASS_VARIANTS, VariantRun
from vibraclip_core.retrieval.evaluate import Evaluation

LABELS = ("test split: 10 candidates", "200 candidates")


def evaluation(top1, mode="ir+raman library"):
    table = pd.DataFrame([{"query": m, "top1": top1, "top1_ci": "x", "top5": top1,
                           "top10": top1, "top25": top1} for m in (mode, "ir")]
                         ).set_index("query")
    return Evaluation(table, {m: np.full(25, top1) for m in (mode, "ir")},
                      {m: torch.zeros(3, dtype=torch.long) for m in (mode, "ir")})


def test_filter_gain_divides_filtered_by_plain_top1_per_library():
    f, fb = A.filter_settings(0.5)
    assert (f, fb) == ("mass filter ±0.5 Da", "anchoring + filter ±0.5 Da")
    index = pd.MultiIndex.from_tuples([(k, s) for k in A.MODES for s in ("no mass", f)])
    cols = pd.MultiIndex.from_product([LABELS, ["top1 %"]])
    table = pd.DataFrame([[10.0, 20.0], [30.0, 80.0], [4.0, 1.0], [8.0, 0.0]], index=index,
                         columns=cols)
    t = A.top1_lookup(table, ["no mass", f])
    assert t["graph_ir", "no mass", 1] == 20.0 and t["all_pairs", f, 0] == 8.0
    assert A.filter_gain(t, 0.5) == [2.0, 0.0]
    assert A.filter_gain(t, 0.5, key="graph_ir") == [3.0, 4.0]


def test_curves_cover_both_models_in_their_own_mode_under_the_first_three_settings():
    settings = {name: {key: VariantRun(None, None, evaluation(v, A.MODES[key]), None)
                       for key in A.MODES}
                for v, name in enumerate(["no mass", "filter", "anchoring", "both"])}
    curves = A.anchoring_curves(settings)
    assert list(curves) == [f"{k}, {s}" for k in A.MODES for s in ("no mass", "filter",
                                                                   "anchoring")]
    assert curves["all_pairs, anchoring"][0] == 2


def test_wrong_mass_adds_the_true_mass_and_keeps_offsets_in_order(monkeypatch):
    anchored = VariantRun(MASS_VARIANTS[1], None, evaluation(80.0), evaluation(40.0))
    asked = []

    def reevaluate(run, data, query_mass_offset_da):
        asked.append(query_mass_offset_da)
        return VariantRun(run.variant, None, evaluation(80.0 - abs(query_mass_offset_da)),
                          evaluation(40.0 - abs(query_mass_offset_da)))

    monkeypatch.setattr(A, "reevaluate", reevaluate)
    table, by_offset = A.wrong_mass(anchored, None, [5.0, -1.0], LABELS)
    assert asked == [-1.0, 5.0]  # the true mass is not evaluated again
    assert list(by_offset.index) == [-1.0, 0.0, 5.0]
    assert by_offset[LABELS[0]].tolist() == [79.0, 80.0, 75.0]
    assert by_offset[LABELS[1]].tolist() == [39.0, 40.0, 35.0]
    assert list(table.index.get_level_values(1)) == ["-1 Da", "+0 Da", "+5 Da"]
