import numpy as np
import pandas as pd
import pytest

from vibraclip_core.analyses import ch5_missing_data as MS
from vibraclip_core.experiments.ablations import MASS_VARIANTS, PUBLISHED_LABEL


def test_with_missing_shares_the_complete_run_and_names_each_fraction():
    base = MASS_VARIANTS[0]
    assert MS.with_missing(base, "missing_ir", 0.0) is base
    v = MS.with_missing(base, "missing_ir", 0.5)
    assert v.key == f"{base.key}+missing-missing_ir-0.5" and v.label == base.label
    assert v.overrides == {**base.overrides, "missing_ir": 0.5}
    assert base.overrides.get("missing_ir") is None  # the base variant is untouched
    with pytest.raises(ValueError, match="missing_ir"):
        MS.with_missing(base, "missing_graph", 0.5)


def test_missing_runs_train_case_a_before_case_b(monkeypatch):
    order = []
    monkeypatch.setattr(MS, "run_variant",
                        lambda config, data, v, kw: order.append(v.key) or v.key)
    runs_ir, runs_raman = MS.missing_runs(None, None, [0.0, 0.5])
    assert order == ["graph_ir+mass", "graph_ir+mass+missing-missing_ir-0.5",
                     "all_pairs+mass", "all_pairs+mass+missing-missing_raman-0.5"]
    assert runs_ir[0.5] == order[1] and runs_raman[0.0] == "all_pairs+mass"


def shown():
    index = pd.MultiIndex.from_tuples([(s, p) for s in ("(a)", "(b)") for p in (0.0, 50.0)])
    return pd.DataFrame({"test": [10.0, 10.04, 30.0, 20.0], "big": [1.0, 1.0, 3.0, 2.0],
                         PUBLISHED_LABEL: [24.2, 0.0, np.nan, np.nan]}, index=index)


def test_change_is_rounded_and_never_negative_zero():
    top1 = MS.by_fraction(shown(), "test")
    assert list(top1.columns) == ["(a)", "(b)"] and list(top1.index) == [0.0, 50.0]
    top1.loc[50.0, "(a)"] = 9.96  # -0.04 points rounds to -0.0
    lo, hi, change = MS.top1_change(top1)
    assert (lo, hi) == (0.0, 50.0)
    assert change.tolist() == [0.0, -10.0] and f"{change['(a)']:+.1f}" == "+0.0"


def test_published_zeros_and_dashed_published_lines():
    assert MS.published_zeros(shown()) == ["50 %"]
    fig = MS.plot_missing(shown(), "test")
    styles = [line.get_linestyle() for line in fig.axes[0].lines]
    assert styles == ["-", "-", "--"]  # ours (a), (b); published (a) only: (b) has none
