import numpy as np
import pytest
import torch

from vibraclip_core.config.choices import PAPER_LIBRARY_SIZE
from vibraclip_core.config.profiles import get_config
from vibraclip_core.data.datasets import prepare
from vibraclip_core.experiments import learning_curve as LC


def test_subsets_are_nested_seeded_and_keep_the_held_out_splits(tiny_shards, tmp_path):
    cfg = get_config("tiny", data_dir=str(tiny_shards), build_dir=str(tmp_path))
    data = prepare(cfg)
    n_train = len(data.splits["train"])
    small, large = (LC.nested_subset(data, n, seed=3) for n in (2, n_train - 1))
    assert set(small.splits["train"].tolist()) < set(large.splits["train"].tolist())
    assert set(large.splits["train"].tolist()) <= set(data.splits["train"].tolist())
    assert torch.equal(small.splits["test"], data.splits["test"])
    assert torch.equal(LC.nested_subset(data, 2, seed=3).splits["train"], small.splits["train"])
    assert small.key != large.key != data.key
    with pytest.raises(ValueError, match="between 1 and the"):
        LC.nested_subset(data, n_train + 1, seed=3)


def test_power_law_fit_recovers_an_exact_law_and_extrapolates_it():
    n = np.array([1000, 2000, 4000, 9000])
    err = 0.9 * n ** -0.3
    fit = LC.power_law_fit(n, 100 * (1 - err), at=100_000)
    assert fit["exponent b"] == pytest.approx(0.3, abs=1e-9)
    assert fit["predicted top-1 %"] == pytest.approx(100 * (1 - 0.9 * 100_000 ** -0.3))
    assert fit["low"] == pytest.approx(fit["high"], abs=1e-6)  # an exact law: no spread
    noisy = LC.power_law_fit(n, 100 * (1 - err * np.array([1.05, 0.95, 1.04, 0.97])))
    assert noisy["low"] < noisy["predicted top-1 %"] < noisy["high"]
    assert noisy["at"] == 8 * PAPER_LIBRARY_SIZE  # the paper's 80/10/10 training split
    with pytest.raises(ValueError, match="at least 4 sizes"):
        LC.power_law_fit(n[:3], [10, 20, 30])
