"""Frequency calibration of measured spectra (calibration): region factors fitted against
simulated spectra of the same molecules, and only on the folds that do not rank them."""

import numpy as np
import pytest
import torch

from vibraclip_core.data.spectra import Spectrum, broaden_sticks, fine_grid, sticks_to_model_input
from vibraclip_core.measured import calibration as C
from vibraclip_core.measured.experimental import MeasuredIR


def test_region_scaling_and_its_fit_recover_known_factors():
    x = np.array([1000.0, 2000.0, 3000.0])
    assert C.scaled_wavenumbers(x, (1.02, 0.97)).tolist() == pytest.approx([1020.0, 2040.0, 2910.0])
    sticks = [np.array([700.0, 1150.0, 1450.0, 1700.0, 2950.0, 3350.0]),
              np.array([820.0, 1250.0, 1600.0, 3050.0])]
    ints = [np.array([1.0, 2.0, 0.5, 3.0, 1.5, 1.0]), np.array([2.0, 1.0, 3.0, 2.0])]
    simulated, records = {}, []
    for k, (f, i) in enumerate(zip(sticks, ints)):
        simulated[f"mol{k}"] = sticks_to_model_input(f, i, np.array([0, len(f)]))[0]
        # the measurement lies 2 % below the simulation under 2,500 cm-1 and 3 % above it over
        f_meas = np.where(f > 2500, f / 0.97, f / 1.02)
        y = broaden_sticks(f_meas, i, np.array([0, len(f)]), 15.0, fine_grid())[0]
        records.append(MeasuredIR(f"mol{k}.jdx", f"mol{k}", "C", f"mol{k}",
                                  Spectrum(fine_grid(), y, "absorbance", f"mol{k}.jdx", [])))
    below, above = C.fit_region_scales(records, simulated)
    assert below == pytest.approx(1.02, abs=0.003) and above == pytest.approx(0.97, abs=0.003)
    with pytest.raises(ValueError, match="no measured record"):
        C.fit_region_scales(records, {})


def test_out_of_fold_scales_fit_without_the_test_fold(monkeypatch):
    records = [MeasuredIR(f"m{k}.jdx", f"m{k}", "C", f"m{k}",
                          Spectrum(fine_grid(), np.exp(-0.5 * ((fine_grid() - 1000 - 50 * k) / 9)
                                                       ** 2), "absorbance", f"m{k}.jdx", []))
               for k in range(6)]
    folds = [{"test": torch.tensor([0, 1]), "val": torch.tensor([2, 3]),
              "train": torch.tensor([4, 5])},
             {"test": torch.tensor([2, 3, 4, 5]), "val": torch.tensor([0]),
              "train": torch.tensor([1])}]
    seen = []
    monkeypatch.setattr(C, "fit_region_scales",
                        lambda recs, sim: seen.append({r.file for r in recs}) or (1.01, 0.99))
    out, factors = C.out_of_fold_scales(records, folds, {})
    assert seen == [{"m2.jdx", "m3.jdx", "m4.jdx", "m5.jdx"}, {"m0.jdx", "m1.jdx"}]
    assert factors == [(1.01, 0.99), (1.01, 0.99)]
    torch.testing.assert_close(out, C.scaled_inputs(records, (1.01, 0.99)))
    assert not torch.allclose(out, C.scaled_inputs(records, 1.0))
