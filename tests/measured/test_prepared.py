"""Tests for vibraclip_core.measured.prepared: measured spectra as PreparedData, a user's paired folder."""

import numpy as np
import pytest
import torch

from vibraclip_core.data.molecules import mol_from_smiles, molecular_mass_da
from vibraclip_core.data.spectra import raman_intensity_to_activity, spectrum_to_model_input
from vibraclip_core.measured.prepared import load_paired, measured_prepared
from vibraclip_core.measured.readers import read_spectrum


def test_rows_that_do_not_featurise_are_dropped_and_rows_stay_paired():
    smiles = ["OCC", "C1CC(", "CC#N", "CCCl"]
    ir = np.random.default_rng(0).random((4, 1750), dtype=np.float32)
    raman = np.zeros_like(ir)
    data, dropped, failures = measured_prepared(smiles, ir, raman, key="k")
    assert dropped == [1, 3] and failures == {"unparseable_smiles": 1, "unknown_element": 1}
    assert data.smiles == ["OCC", "CC#N"] and data.identity == ["CCO", "CC#N"]
    assert torch.equal(data.ir, torch.from_numpy(ir[[0, 2]])) and not data.raman.any()
    assert data.graphs["node_offsets"].tolist() == [0, 9, 15] and torch.equal(data.index,
                                                                               torch.arange(2))
    mass = np.array([molecular_mass_da(mol_from_smiles(s)) for s in ("OCC", "CC#N")], np.float32)
    assert torch.equal(data.mass_da, torch.from_numpy(mass))
    assert data.mass_mean == pytest.approx(float(mass.mean()))
    assert all(len(v) == 0 for v in data.splits.values())
    assert data.report == {"records": 4, "featurised": 2} and data.key == "k"


def _write(path, centre):
    x = np.linspace(500, 3900, 800)
    y = np.exp(-0.5 * ((x - centre) / 10) ** 2)
    path.write_text("\n".join(f"{a:.2f},{b:.5f}" for a, b in zip(x, y)))


def test_paired_folder_reads_ir_and_puts_raman_on_the_activity_scale(tmp_path):
    (tmp_path / "molecules.csv").write_text("name,smiles\nethanol,CCO\nacetone,CC(C)=O\n")
    for name, c in (("ethanol", 1050), ("acetone", 1720)):
        _write(tmp_path / f"{name}_ir.csv", c)
        _write(tmp_path / f"{name}_raman.csv", c + 30)
    paired = load_paired(tmp_path, laser_nm=785.0)
    assert paired.smiles == ["CCO", "CC(C)=O"] and paired.report == {"pairs": 2}
    assert paired.key == f"paired-{tmp_path.name}"
    expected = spectrum_to_model_input(raman_intensity_to_activity(
        read_spectrum(tmp_path / "acetone_raman.csv"), 785.0))
    np.testing.assert_array_equal(paired.raman[1].numpy(), expected)
    np.testing.assert_array_equal(paired.ir[0].numpy(),
                                  spectrum_to_model_input(read_spectrum(tmp_path / "ethanol_ir.csv")))
    (tmp_path / "molecules.csv").write_text("name,smiles\nethanol,CCO\nacetone,CC(C)=O\nbad,C1C(\n")
    _write(tmp_path / "bad_ir.csv", 1000)
    _write(tmp_path / "bad_raman.csv", 1000)
    with pytest.raises(ValueError, match=r"no 3-D structure for \['bad'\]"):
        load_paired(tmp_path)
    (tmp_path / "acetone_raman.csv").unlink()
    with pytest.raises(FileNotFoundError, match="acetone_raman"):
        load_paired(tmp_path)
