import json

import pandas as pd

from vibraclip_core.ablations import PUBLISHED
from vibraclip_core.summary import chapter_timings, headline_table


def test_headline_table_reads_saved_results_and_keeps_published_apart(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    pd.DataFrame({"query": ["ir", "ir+raman library", "ir+raman paper"], "top1": [10.0, 20, 30],
                  "top25": [50.0, 60, 70]}).set_index("query").to_csv(res / "02_pretraining.csv")
    table, missing = headline_table(tmp_path)
    assert "03_loss_ablations" in missing and "02_pretraining" not in missing
    row = table.set_index("result").loc["main model, IR + Raman, paper score"]
    assert row["measured top-1 %"] == 30.0
    assert row["published top-1 % (QM9S)"] == PUBLISHED["all_pairs+mass"]["top1"]
    assert pd.isna(table.set_index("result").loc["main model, IR only", "published top-1 % (QM9S)"])


def test_chapter_timings(tmp_path):
    (tmp_path / "book-timings.json").write_text(json.dumps(
        {"cpu": {"01_data": {"seconds": 12.5, "finished": "x"}}}))
    assert chapter_timings(tmp_path, "cpu").to_dict() == {"01_data": 12.5}
    assert chapter_timings(tmp_path, "tiny").empty
