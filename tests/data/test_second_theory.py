"""The second level of theory: the simulator's method setting, shards that record it, folders
that refuse to mix methods, and the held-out order drawn as `datasets.prepare` splits."""

from __future__ import annotations

import numpy as np
import pytest

from vibraclip_core.data import second_theory as ST
from vibraclip_core.data.datasets import grouped_split, load_sticks
from vibraclip_core.data.generate import generate
from vibraclip_core.data.molecules import canonical_identity
from vibraclip_core.data.simulate import SimulatorSettings
from vibraclip_core.data.sources import source_from_smiles


def test_method_is_a_checked_setting_and_recorded_in_each_shard(tmp_path):
    with pytest.raises(ValueError, match="GFN3"):
        SimulatorSettings(method="GFN3-xTB")
    smiles = ["O", "C=O"]
    for method in ("GFN1-xTB", "GFN2-xTB"):
        generate(tmp_path / method, np.arange(2), lambda idx: source_from_smiles(smiles), 1,
                 workers=1, shard_size=2, settings=SimulatorSettings(method=method))
    gfn1, gfn2 = (load_sticks(tmp_path / m) for m in ("GFN1-xTB", "GFN2-xTB"))
    assert (gfn1.method, gfn2.method) == ("GFN1-xTB", "GFN2-xTB")
    assert len(gfn1.freqs_cm1) == len(gfn2.freqs_cm1) == 3 + 6  # water 3, formaldehyde 6 modes
    assert np.abs(gfn1.freqs_cm1 - gfn2.freqs_cm1).max() > 20  # another theory, other bands
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "shard_00000.npz").write_bytes((tmp_path / "GFN1-xTB" / "shard_00000.npz")
                                            .read_bytes())
    (mixed / "shard_00001.npz").write_bytes((tmp_path / "GFN2-xTB" / "shard_00000.npz")
                                            .read_bytes())
    with pytest.raises(ValueError, match="several levels of theory"):
        load_sticks(mixed)


def test_heldout_order_is_validation_then_test(tiny_shards):
    sticks = load_sticks(tiny_shards).ok()
    held = ST.heldout_indices(tiny_shards, seed=3, fractions=(0.4, 0.3, 0.3))
    splits = grouped_split([canonical_identity(s) for s in sticks.smiles], 3, (0.4, 0.3, 0.3))
    for name in ("val", "test"):
        assert sorted(held[name]) == sorted(sticks.index[splits[name]])
    order = ST.heldout_order(tiny_shards, seed=3, fractions=(0.4, 0.3, 0.3))
    assert order.tolist() == [*held["val"], *held["test"]]
    assert not set(order) & set(sticks.index[splits["train"]])


def test_training_order_is_a_seeded_permutation_of_the_training_split(tiny_shards):
    sticks = load_sticks(tiny_shards).ok()
    splits = grouped_split([canonical_identity(s) for s in sticks.smiles], 3, (0.4, 0.3, 0.3))
    order = ST.training_order(tiny_shards, seed=3, fractions=(0.4, 0.3, 0.3))
    assert sorted(order) == sorted(sticks.index[splits["train"]])
    assert order.tolist() == ST.training_order(tiny_shards, 3, (0.4, 0.3, 0.3)).tolist()
    assert not set(order) & set(ST.heldout_order(tiny_shards, 3, (0.4, 0.3, 0.3)))
    assert order.tolist() != sorted(order)  # shuffled: any prefix of shards samples the split
