from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from vibraclip_core.analyses import ch6_realignment as D
from vibraclip_core.experiments import measured_libraries as ML
from vibraclip_core.retrieval.evaluate import Evaluation
from vibraclip_core.retrieval.rerank import Reranker


def evaluation(top1):
    modes = ["ir+raman library", "ir", "raman"]
    table = pd.DataFrame([{"query": m, "top1": top1 + k, "top5": 50.0, "top10": 60.04,
                           "top25": 70.0} for k, m in enumerate(modes)]).set_index("query")
    return Evaluation(table, {}, {})


def test_topk_frame_stacks_settings_with_the_chosen_modes():
    frame = D.topk_frame({"before": evaluation(1.0), "after": evaluation(2.0)})
    assert list(frame.index) == [("before", "ir+raman library"), ("before", "ir"),
                                 ("after", "ir+raman library"), ("after", "ir")]
    assert frame.loc[("after", "ir"), "top1"] == 3.0 and frame["top10"].iloc[0] == 60.0


def records(*pairs):
    return [SimpleNamespace(name=n, identity=i, file=f"{n}-{k}.jdx")
            for k, (n, i) in enumerate(pairs)]


def test_overlay_example_is_the_first_record_with_a_simulation():
    recs = records(("acetone", "CC(C)=O"), ("acetone", "CC(C)=O"), ("water", "O"))
    assert D.overlay_example(recs, {"CC(C)=O": None}, "acetone") == 0
    assert D.overlay_example(recs[1:], {"CC(C)=O": None}, "acetone") == 0
    with pytest.raises(ValueError, match="choose one of acetone"):
        D.overlay_example(recs, {"CC(C)=O": None}, "water")  # water has no simulation


def test_measured_queries_keep_the_records_whose_molecule_was_built(monkeypatch):
    recs = records(("a", "C"), ("b", "X"), ("c", "CC"))
    monkeypatch.setattr(D.RA, "measured_data",
                        lambda rs, seed: (SimpleNamespace(n=2, seed=seed), [rs[1].file]))
    monkeypatch.setattr(D.RA, "with_mass_stats", lambda data, ckpt: (data, ckpt))
    (measured, ckpt), kept, dropped = D.measured_queries(recs, "main.ckpt", 7)
    assert [r.name for r in kept] == ["a", "c"] and dropped == ["b-1.jdx"]
    assert ckpt == "main.ckpt" and measured.seed == 7


def levers():
    n = 4
    ranks = {lever: {(lib, how): torch.tensor(r) for lib in (ML.LIB_MEASURED, ML.LIB_DISTRACTORS)
                     for how in ("none", "mass")}
             for lever, r in (("zero-shot", [0, 3, 5, 9]), (D.ALL_LEVERS, [0, 0, 1, 2]))}
    chance = pd.DataFrame([{"library": lib, "filter": how, "candidates per query": 10.0,
                            "chance top1 %": 10.0, "chance top10 %": 100.0}
                           for lib in (ML.LIB_MEASURED, ML.LIB_DISTRACTORS)
                           for how in ("none", "mass")]).set_index(["library", "filter"])
    return D.MeasuredLevers(ranks, {}, {}, {ML.LIB_MEASURED: n, ML.LIB_DISTRACTORS: 50}, 0,
                            Reranker(), chance, np.array([True, False, False, False]), {},
                            np.array(["a", "b", "c", "d"]))


def test_lever_curves_table_and_the_comparison_with_the_paper():
    lv = levers()
    curves = lv.curves()
    assert list(curves) == ["zero-shot", D.ALL_LEVERS]
    assert curves["zero-shot"][0] == 0.25 and curves[D.ALL_LEVERS][1] == 0.75  # top-1, top-2
    table = lv.table()
    assert table.loc[D.ALL_LEVERS, (ML.LIB_DISTRACTORS, "none", "top1")] == 50.0
    ood_table = pd.concat({"realigned: last layer": evaluation(40.0).table}).round(1)
    beside = D.beside_paper(SimpleNamespace(splits={"test": torch.arange(7)}), ood_table, lv)
    assert beside["our candidates"].tolist() == [7, 4, 50]
    assert beside["measured top-1 %"].tolist() == [40.0, 50.0, 50.0]
    assert beside.index[1].endswith(ML.LIB_MEASURED)
    assert D.ALL_LEVERS in beside["our query"].iloc[2]  # every lever at once, named
    assert not np.isnan(beside["published top-1 %"]).any()


def test_zero_shot_split_separates_queries_seen_in_pretraining():
    from vibraclip_core.experiments.measured_rerank import zero_shot_split

    ranks = {"m": {(ML.LIB_DISTRACTORS, "none"): torch.tensor([0, 0, 4, 20])}}
    seen = np.array([True, False, False, False])
    t = zero_shot_split(ranks, seen, ML.LIB_DISTRACTORS)
    assert t.loc["m", ("all queries (4)", "top1 %")] == 50.0
    assert t.loc["m", ("unseen in pretraining (3)", "top1 %")] == pytest.approx(33.3)
    assert t.loc["m", ("unseen in pretraining (3)", "top10 %")] == pytest.approx(66.7)


def test_ours_is_compared_paired_and_open_set_from_the_fixed_row():
    from vibraclip_core.experiments.measured_rerank import MATCH_ALONE
    from vibraclip_core.retrieval.spectral_match import MatchSettings

    ours = "augmented + spectrum match (fused over all candidates)"
    keys = [(ML.LIB_DISTRACTORS, "none"), (ML.LIB_MEASURED, "none"), (ML.LIB_ISOMERS, "formula")]
    rows = {"augmented: zero-shot": [3, 0, 5, 9], MATCH_ALONE: [0, 0, 5, 9], ours: [0, 0, 1, 9]}
    ranks = {lever: {k: torch.tensor(r) for k in keys} for lever, r in rows.items()}
    good, poor = [0.5, 0.9, np.log(50)], [0.1, 0.3, np.log(49)]
    key = f"{ours}|{ML.LIB_DISTRACTORS}|none"
    reranker = Reranker(MatchSettings(), 4.0, 0, (-2.0, 0.0, 3.0, 0.0), {},
                        (-6.0, 0.0, 10.0, 0.0), 0.5)
    confidence = {key: np.full(4, 0.5), f"{key}|present": np.array([good, good, poor, good]),
                  f"{key}|absent": np.array([poor, poor, poor, good])}
    lv = D.MeasuredLevers(ranks, {}, {}, {}, 0, reranker, pd.DataFrame(), np.zeros(4, bool),
                          confidence, np.array(["a", "a", "b", "c"]))
    paired = lv.paired()
    row = paired.loc[(ML.LIB_DISTRACTORS, "none", "augmented: zero-shot")]
    assert row["top1 points"] == 25.0  # ours right on 2 of 4, the model alone on 1
    assert paired.loc[(ML.LIB_DISTRACTORS, "none", MATCH_ALONE), "top1 points"] == 0.0
    open_set = lv.open_set()
    assert open_set["'no candidate fits' %"].tolist() == [25.0, 75.0]
    assert open_set["queries"].tolist() == [4, 4]
