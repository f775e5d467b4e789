"""Tests for vibraclip_core.experiments.results: the registered result tables."""

import numpy as np
import pandas as pd
import pytest

from vibraclip_core.experiments.results import read_meta, read_results, results_path, save_results


def library_frame() -> pd.DataFrame:
    """A (model, query) x (library, metric) table like Chapters 2-5 save."""
    index = pd.MultiIndex.from_tuples([("all pairs", "ir+raman library"), ("all pairs", "ir")],
                                      names=["model", "query"])
    columns = pd.MultiIndex.from_product([["test split (1,123)", "QM9 (12,741)"],
                                          ["top1 %", "top25 %"]])
    return pd.DataFrame(np.array([[83.5, 100.0, 48.7, 95.1], [64.3, 98.8, 30.2, 80.0]]),
                        index=index, columns=columns)


def test_a_library_table_reads_back_with_its_levels_and_meta(tmp_path):
    table = library_frame()
    path = save_results(table, tmp_path, "03_loss_ablations", {"profile": "tiny", "n": 3})
    assert path == results_path(tmp_path, "03_loss_ablations")
    back = read_results(tmp_path, "03_loss_ablations")
    pd.testing.assert_frame_equal(back, table)
    assert read_meta(tmp_path, "03_loss_ablations") == {"profile": "tiny", "n": 3}
    assert sorted(p.name for p in path.parent.iterdir()) == ["03_loss_ablations.csv",
                                                             "03_loss_ablations.json"]


def test_a_three_header_table_reads_back(tmp_path):
    columns = pd.MultiIndex.from_product([["measured molecules"], ["none", "mass"],
                                          ["top1", "top10"]], names=["library", "filter", "top-k %"])
    table = pd.DataFrame([[18.8, 64.6, 75.0, 100.0]], columns=columns,
                         index=pd.Index(["pretrained: zero-shot"]))
    save_results(table, tmp_path, "06_measured_levers")
    pd.testing.assert_frame_equal(read_results(tmp_path, "06_measured_levers"), table,
                                  check_names=False)


def test_unregistered_names_and_wrong_shapes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="'03_ablations' is not registered"):
        save_results(library_frame(), tmp_path, "03_ablations")
    with pytest.raises(ValueError, match="'02_pretraining': 2 index level.*Layout"):
        save_results(library_frame(), tmp_path, "02_pretraining")
    assert read_results(tmp_path, "02_pretraining") is None  # not saved: None, not an error
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())

