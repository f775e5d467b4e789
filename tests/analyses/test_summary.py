import json
import math

import numpy as np
import pandas as pd
import torch

from vibraclip_core.analyses.summary import (PUBLISHED_COLUMNS, chapter_timings, headline_table,
                                             library_size_text, measured_columns)
from vibraclip_core.experiments.ablations import (LOSS_VARIANTS, PUBLISHED, PUBLISHED_LABEL,
                                                  library_table, paper_rows, with_published)
from vibraclip_core.experiments.results import save_results
from vibraclip_core.retrieval.evaluate import Evaluation

ALL = ["ir", "raman", "ir+raman library", "ir+raman paper"]
STRUCTURE_ONLY = ALL[:3]  # beyond the test split the paper score does not exist
LABELS = ("test split: 10 candidates", "12,741 candidates (the paper's size)")
TEST, LIB = measured_columns("test split"), measured_columns("12,741")


def fake_evaluation(modes, top1):
    """An Evaluation whose top-1 in mode i is top1[i] and top-25 is top1[i] + 3."""
    table = pd.DataFrame([{"query": m, "n": 10, "top1": t, "top1_ci": "0.0–1.0", "top5": t + 1,
                           "top10": t + 2, "top25": t + 3, "mrr": t / 100}
                          for m, t in zip(modes, top1)]).set_index("query")
    return Evaluation(table, {m: np.zeros(25) for m in modes},
                      {m: torch.zeros(10, dtype=torch.long) for m in modes})


def by_result(table):
    return table.set_index("result")


def test_headline_table_reads_saved_results_and_keeps_published_apart(tmp_path):
    save_results(pd.DataFrame({"query": ["ir", "ir+raman library", "ir+raman paper"],
                               "top1": [10.0, 20, 30], "top25": [50.0, 60, 70]}).set_index("query"),
                 tmp_path, "02_pretraining")
    table, missing = headline_table(tmp_path)
    assert "03_loss_ablations" in missing and "02_pretraining" not in missing
    assert "02_pretraining_library" in missing
    row = by_result(table).loc["main model, IR + Raman, paper score"]
    assert row[TEST[0]] == 30.0 and row[TEST[1]] == 70.0
    assert row[PUBLISHED_COLUMNS[0]] == PUBLISHED["all_pairs+mass"]["top1"]
    assert pd.isna(by_result(table).loc["main model, IR query", PUBLISHED_COLUMNS[0]])
    assert list(table.columns) == ["chapter", "result", *TEST, *PUBLISHED_COLUMNS]


def test_library_columns_land_beside_the_test_split_and_published_stay_apart(tmp_path):
    # Chapter 2: three libraries (the third, all of QM9, is not a headline column)
    labels2 = ("test split (10)", "12,741 (paper's size)", "130,831 (all of QM9)")
    evaluations = (fake_evaluation(ALL, [10, 20, 30, 40]), fake_evaluation(STRUCTURE_ONLY, [1, 2, 3]),
                   fake_evaluation(STRUCTURE_ONLY, [.1, .2, .3]))
    save_results(library_table([("main model", m, m, evaluations) for m in ALL], labels2),
                 tmp_path, "02_pretraining_library")
    # Chapter 3: the losses, a baseline and the chapter's own published columns
    rows = [(v.label, m, m, (fake_evaluation(ALL, [11, 21, 31, 41]),
                             fake_evaluation(STRUCTURE_ONLY, [4, 5, 6])))
            for v in LOSS_VARIANTS for m in (["ir"] if v.key == "graph_ir" else ALL)]
    rows.append(("CCA (learned linear baseline)", "ir+raman library", "ir+raman library",
                 (fake_evaluation(ALL, [2, 2, 2, 2]), fake_evaluation(STRUCTURE_ONLY, [.5] * 3))))
    t3 = with_published(library_table(rows, LABELS), paper_rows(LOSS_VARIANTS))
    t3.loc[:, (PUBLISHED_LABEL, "top1 %")] = 99.0  # must never be read as a measured value
    save_results(t3, tmp_path, "03_loss_ablations")
    # Chapter 4
    queries = ("no mass", "mass filter ±0.5 Da", "mass anchoring", "anchoring + filter ±0.5 Da")
    save_results(library_table([(key, q, "ir", (fake_evaluation(ALL, [7 + i] * 4),
                                                fake_evaluation(STRUCTURE_ONLY, [70 + i] * 3)))
                                for key in ("graph_ir", "all_pairs")
                                for i, q in enumerate(queries)]
                               + [("all_pairs", "mass anchoring, paper score (eq. 6)",
                                   "ir+raman paper", (fake_evaluation(ALL, [80] * 4),
                                                      fake_evaluation(STRUCTURE_ONLY, [1] * 3)))],
                               LABELS),
                 tmp_path, "04_mass_anchoring")

    table, missing = headline_table(tmp_path)
    assert "02_pretraining" in missing and "02_pretraining_library" not in missing
    assert list(table.columns) == ["chapter", "result", *TEST, *LIB, *PUBLISHED_COLUMNS]
    assert table.attrs["libraries"] == {"12,741": LABELS[1]}
    r = by_result(table)
    main = r.loc["main model, IR + Raman, library score"]
    assert (main[TEST[0]], main[TEST[1]], main[LIB[0]], main[LIB[1]]) == (30, 33, 3, 6)
    assert r.loc["main model, IR query", LIB[0]] == 1
    paper = r.loc["main model, IR + Raman, paper score"]
    assert paper[TEST[0]] == 40 and math.isnan(paper[LIB[0]])
    assert paper[PUBLISHED_COLUMNS[0]] == PUBLISHED["all_pairs+mass"]["top1"]
    assert paper[PUBLISHED_COLUMNS[1]] == PUBLISHED["all_pairs+mass"]["top25"]
    tri = LOSS_VARIANTS[2]
    row = r.loc[f"{tri.label}, IR + Raman, paper score"]
    assert row[PUBLISHED_COLUMNS[0]] == PUBLISHED[tri.key]["top1"] and row[TEST[0]] == 41
    row = r.loc[f"{tri.label}, IR + Raman, library score"]
    assert row[LIB[0]] == 6 and row[TEST[0]] == 31 and pd.isna(row[PUBLISHED_COLUMNS[0]])
    assert r.loc[f"{LOSS_VARIANTS[0].label}, IR query", LIB[0]] == 4
    assert r.loc["CCA (learned linear baseline), IR + Raman, library score", LIB[0]] == 0.5
    assert 99.0 not in table[[*TEST, *LIB]].to_numpy()
    anchored = r.loc["all_pairs: mass anchoring"]
    assert anchored[LIB[0]] == 72 and anchored[TEST[0]] == 9
    assert pd.isna(anchored[PUBLISHED_COLUMNS[0]])  # library score: not what the paper scored
    eq6 = r.loc["all_pairs: mass anchoring, paper score (eq. 6)"]
    assert eq6[PUBLISHED_COLUMNS[0]] == PUBLISHED["all_pairs+mass"]["top1"]
    assert eq6[TEST[0]] == 80 and pd.isna(eq6[LIB[0]])
    assert r.loc["graph_ir: mass anchoring", PUBLISHED_COLUMNS[0]] == PUBLISHED[
        "graph_ir+mass"]["top1"]
    assert pd.isna(r.loc["all_pairs: anchoring + filter ±0.5 Da", PUBLISHED_COLUMNS[0]])
    assert r.loc["graph_ir: mass filter ±0.5 Da", LIB[0]] == 71


def test_missing_data_rows_take_the_largest_fraction_and_its_published_figure(tmp_path):
    series = ["(a) IR + mass, IR query", "(b) all pairs + mass, IR-only query"]
    rows = [(s, pct, "ir", (fake_evaluation(ALL, [pct + i] * 4),
                            fake_evaluation(STRUCTURE_ONLY, [pct / 10 + i] * 3)))
            for i, s in enumerate(series) for pct in (0.0, 5.0, 50.0)]
    t = library_table(rows, ("test split: 1,234 candidates", "200 candidates"))
    t[(PUBLISHED_LABEL, "top1 %")] = [24.2, 22.7, 0.0, np.nan, np.nan, np.nan]
    save_results(t, tmp_path, "05_missing_data")
    table, _ = headline_table(tmp_path)
    r = by_result(table)
    a = r.loc[f"{series[0]}, 50 % of training spectra removed"]
    assert a[measured_columns("test split")[0]] == 50 and a[measured_columns("200")[0]] == 5
    assert a[PUBLISHED_COLUMNS[0]] == 0.0 and pd.isna(a[PUBLISHED_COLUMNS[1]])
    assert pd.isna(r.loc[f"{series[1]}, 50 % of training spectra removed", PUBLISHED_COLUMNS[0]])
    assert len(table) == 2


def test_library_size_text():
    assert library_size_text("12,741 candidates (the paper's size)") == "12,741"
    assert library_size_text("test split (1,234)") == "1,234"
    assert library_size_text("130,831 (all of QM9)") == "130,831"


def test_chapter_timings(tmp_path):
    (tmp_path / "book-timings.json").write_text(json.dumps(
        {"cpu": {"01_data": {"seconds": 12.5, "finished": "x"}}}))
    assert chapter_timings(tmp_path, "cpu").to_dict() == {"01_data": 12.5}
    assert chapter_timings(tmp_path, "tiny").empty
