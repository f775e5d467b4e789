import numpy as np
import pytest

from vibraclip_core.config.profiles import EMBEDDED_DATA_DIR, REPO_ROOT
from vibraclip_core.data import datastats
from vibraclip_core.data.datasets import load_sticks


def test_status_table_and_agreement_on_known_numbers(tiny_shards):
    s = load_sticks(tiny_shards)
    t = datastats.status_table(s)
    assert t.iloc[0]["status"] == "ok" and t["molecules"].sum() == len(s)
    assert t["percent"].sum() == pytest.approx(100.0)
    ref = np.array([1000.0, 2000.0, 3000.0])
    agree = datastats.frequency_agreement(ref, ref * 0.98)
    assert agree["mean_shift_cm1"] == pytest.approx(-40.0)
    assert agree["scale_factor"] == pytest.approx(1 / 0.98)
    assert agree["mad_after_scaling_cm1"] == pytest.approx(0.0, abs=1e-9)


def test_find_examples_picks_matching_groups(tiny_shards):
    s = load_sticks(tiny_shards)
    from vibraclip_core.experiments.plots import BAND_WINDOWS

    found = datastats.find_examples(s, {"nitrile": "[CX2]#[NX1]", "carbonyl": "[CX3]=[OX1]"},
                                    BAND_WINDOWS)
    assert s.smiles[found["nitrile"]] == "CC#N" and s.smiles[found["carbonyl"]] == "CC=O"


def test_committed_datasheet_matches_committed_shards(tmp_path):
    """data/README.md's generated block must describe the shards it ships with."""
    readme = REPO_ROOT / "data" / "README.md"
    copy = tmp_path / "README.md"
    copy.write_text(readme.read_text())
    changed = datastats.update_datasheet(copy, load_sticks(EMBEDDED_DATA_DIR))
    assert not changed, "run `vibraclip datasheet` after adding shards"


def test_committed_ood_datasheet_matches_its_shards(tmp_path):
    """data/ood_datamol/README.md's generated block must describe the shards it ships with."""
    from vibraclip_core.data.ood import OOD_DIR

    copy = tmp_path / "README.md"
    copy.write_text((OOD_DIR / "README.md").read_text())
    changed = datastats.update_datasheet(copy, load_sticks(OOD_DIR))
    assert not changed, "run `vibraclip datasheet --data data/ood_datamol --readme ...`"
    table = datastats.render_datasheet_tables(load_sticks(OOD_DIR))
    assert "B3LYP" not in table and "heavy atoms" in table


def test_committed_gfn1_datasheet_matches_its_shards(tmp_path):
    """data/qm9_gfn1/README.md's generated block (with its comparison against GFN2) must describe
    the shards it ships with."""
    from vibraclip_core.data.second_theory import GFN1_DIR

    copy = tmp_path / "README.md"
    copy.write_text((GFN1_DIR / "README.md").read_text())
    gfn1 = load_sticks(GFN1_DIR)
    assert gfn1.method == "GFN1-xTB"
    changed = datastats.update_datasheet(copy, gfn1, load_sticks(EMBEDDED_DATA_DIR))
    assert not changed, ("run `vibraclip datasheet --data data/qm9_gfn1 --readme "
                         "data/qm9_gfn1/README.md --compare data/qm9_gfn2`")


def test_theory_comparison_on_known_ratios(tiny_shards):
    import dataclasses

    ref = load_sticks(tiny_shards)
    f = ref.freqs_cm1
    # another "theory": 2 % higher below 1,500 cm-1, 1 % lower above 2,500, intensities kept
    moved = np.where(f < 1500, f * 1.02, np.where(f >= 2500, f * 0.99, f))
    other = dataclasses.replace(ref, freqs_cm1=moved.astype(np.float32), method="GFN1-xTB")
    table = datastats.theory_comparison(other, ref)
    low, high = table.iloc[0], table.iloc[2]
    assert low["median ratio"] == pytest.approx(1.02, abs=1e-4)
    assert high["median ratio"] == pytest.approx(0.99, abs=1e-4)
    assert low["r log IR"] == pytest.approx(1.0) and high["r log Raman"] == pytest.approx(1.0)
    assert table["modes"].sum() == int(((f > 0)).sum())
