import numpy as np
import pytest

from vibraclip_core import datastats
from vibraclip_core.config import EMBEDDED_DATA_DIR, REPO_ROOT
from vibraclip_core.datasets import load_sticks


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
    from vibraclip_core.plots import BAND_WINDOWS

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
    from vibraclip_core.ood import OOD_DIR

    copy = tmp_path / "README.md"
    copy.write_text((OOD_DIR / "README.md").read_text())
    changed = datastats.update_datasheet(copy, load_sticks(OOD_DIR))
    assert not changed, "run `vibraclip datasheet --data data/ood_datamol --readme ...`"
    table = datastats.render_datasheet_tables(load_sticks(OOD_DIR))
    assert "B3LYP" not in table and "heavy atoms" in table
