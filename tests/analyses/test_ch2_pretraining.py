import json

import pandas as pd
import pytest

from vibraclip_core.analyses import ch2_pretraining as P
from vibraclip_core.config.profiles import get_config
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.evaluate import Evaluation
from vibraclip_core.training import training_path as TP
from vibraclip_core.training.runs import TrainResult
from vibraclip_core.training.training_path import RecordedPath


def test_parameter_sizes_lay_out_each_config_by_part():
    tiny, small = get_config("tiny"), get_config("tiny", latent_dim=8)
    sizes = P.parameter_sizes({"tiny": tiny, "small": small})
    assert list(sizes.columns) == ["tiny", "small"] and sizes.index[-1] == "total"
    model = VibraCLIP(tiny)
    assert sizes.loc["total", "tiny"] == sum(p.numel() for p in model.parameters())
    assert sizes["tiny"].drop("total").sum() == sizes.loc["total", "tiny"]
    assert sizes.loc["graph_head", "small"] < sizes.loc["graph_head", "tiny"]  # a smaller space


def test_step_cost_reads_the_path_the_run_recorded(tmp_path):
    steps = pd.DataFrame({"exact path, s/step": [2.0, 8.0], "float32 path, s/step": [1.6, 6.0],
                          "bf16 path, s/step": [1.0, 3.0]}, index=["this profile", "paper size"])
    config = get_config("tiny", batch_size=10)
    bf16 = RecordedPath("bf16", "auto", "this CPU has bf16 units", "cpu: X")
    fast = P.step_cost(steps, bf16, config, 305)
    assert fast["path"] == "bf16" and fast["epoch_steps"] == 30 and fast["speedup"] == 2.0
    assert fast["factor"] == 3.0 and fast["epoch_min"] == pytest.approx(30 * 1.0 / 60)
    text = P.path_text(fast, config)
    assert "**bf16**" in text and "`fast_train = auto`" in text and "bf16 units" in text
    assert "2.00× the exact path's" in text and "cpu: X" in text
    # a run folder: its training_path.json, or for an older run its config.json
    run = tmp_path / "run"
    TP.write_record(run, TP.choose_training_path("auto", "cpu", {"avx2"}), "cpu")
    result = TrainResult(run, run / "best.ckpt", [], config)
    f32 = P.step_cost(steps, result, config, 305)
    assert f32["path"] == "float32" and f32["step_s"] == 1.6 and f32["asked"] == "auto"
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"fast_train": False}))
    exact = P.step_cost(steps, TrainResult(old, old / "best.ckpt", [], config), config, 305)
    assert exact["step_s"] == 2.0 and exact["paper_epoch_min"] == pytest.approx(30 * 8 / 60)
    assert "before the choice was recorded" in P.path_text(exact, config)


def test_departures_name_each_field_and_why():
    table = P.departures_table(get_config("tiny"))
    assert table.loc["seed", "this run"] == 0 and table.loc["seed", "released"] == 42
    assert "42" in table.loc["seed", "why"]
    assert P.departures_table(get_config("paper")).empty


def _evaluation(top1):
    table = pd.DataFrame({"top1": [top1]}, index=pd.Index(["ir+raman library"], name="query"))
    return Evaluation(table, {}, {})


def test_library_comparison_top1_by_size_with_and_without_the_filter():
    by_size = {"no filter": {10: _evaluation(50.0), 100: _evaluation(20.0)},
               "±0.5 Da mass filter": {10: _evaluation(70.0), 100: _evaluation(60.0)}}
    lib = P.LibraryComparison(None, pd.DataFrame(), by_size, [10, 100], pd.DataFrame(), 0.5)
    assert lib.top1() == {10: 50.0, 100: 20.0}
    assert lib.top1(mass_filter=True) == {10: 70.0, 100: 60.0}
    with pytest.raises(KeyError):
        P.LibraryComparison(None, None, by_size, [10], None, 1.0).top1(mass_filter=True)
