import dataclasses

import numpy as np
import pytest
import torch

from vibraclip_core import transfer as T
from vibraclip_core.augment import cross_theory_data
from vibraclip_core.config import get_config
from vibraclip_core.datasets import load_sticks, prepare
from vibraclip_core.experimental import MeasuredIR
from vibraclip_core.realign import scaled_wavenumbers
from vibraclip_core.spectra import Spectrum, broaden_sticks, fine_grid, sticks_to_model_input


def _library(formulas, masses, ids=None):
    n = len(formulas)
    emb = torch.nn.functional.normalize(torch.eye(n)[:, :n] + 0.01, dim=1)
    return T.EmbeddedLibrary(emb, ids or [f"m{i}" for i in range(n)],
                             torch.tensor(masses, dtype=torch.float32), list(formulas))


def test_filters_keep_only_admissible_candidates():
    lib = _library(["C2H6O", "C2H6O", "C3H8", "C2H6O"], [46.07, 46.07, 44.10, 46.07])
    # query 0 looks most like candidate 2 but is m0; query 1 looks like m1 and is m1
    q = torch.stack([lib.emb[2] + 0.2 * lib.emb[0], lib.emb[1]])
    ids, mass = ["m0", "m1"], torch.tensor([46.07, 46.07])
    none = T.filtered_ranks(q, ids, mass, ["C2H6O", "C2H6O"], lib, "none")
    formula = T.filtered_ranks(q, ids, mass, ["C2H6O", "C2H6O"], lib, "formula")
    by_mass = T.filtered_ranks(q, ids, mass, ["C2H6O", "C2H6O"], lib, "mass", mass_tol_da=0.5)
    assert none.tolist() == [1, 0]  # 0-based: m2 outranks m0
    assert formula.tolist() == [0, 0] and by_mass.tolist() == [0, 0]
    with pytest.raises(ValueError, match="filter 'isomer'"):
        T.filtered_ranks(q, ids, mass, ["C2H6O"] * 2, lib, "isomer")


def test_region_scaling_and_its_fit_recover_known_factors():
    x = np.array([1000.0, 2000.0, 3000.0])
    assert scaled_wavenumbers(x, (1.02, 0.97)).tolist() == pytest.approx([1020.0, 2040.0, 2910.0])
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
    below, above = T.fit_region_scales(records, simulated)
    assert below == pytest.approx(1.02, abs=0.003) and above == pytest.approx(0.97, abs=0.003)
    with pytest.raises(ValueError, match="no measured record"):
        T.fit_region_scales(records, {})


def test_lever_table_lays_out_levers_by_library_filter_and_k():
    ranks = {"zero-shot": {(T.LIB_MEASURED, "none"): torch.tensor([0, 3, 20, 0]),
                           (T.LIB_MEASURED, "mass"): torch.tensor([0, 0, 0, 0])},
             "calibrated": {(T.LIB_MEASURED, "none"): torch.tensor([0, 0, 5, 30]),
                            (T.LIB_MEASURED, "mass"): torch.tensor([0, 0, 0, 1])}}
    table = T.lever_table(ranks)
    assert list(table.index) == ["zero-shot", "calibrated"]
    assert table.loc["zero-shot", (T.LIB_MEASURED, "none", "top1")] == 50.0
    assert table.loc["zero-shot", (T.LIB_MEASURED, "none", "top10")] == 75.0
    assert table.loc["calibrated", (T.LIB_MEASURED, "mass", "top1")] == 75.0


def test_cross_theory_queries_replace_only_the_band_positions(tiny_shards, tmp_path):
    cfg = get_config("tiny", data_dir=str(tiny_shards), build_dir=str(tmp_path))
    data = prepare(cfg)
    sticks = load_sticks(tiny_shards).ok()
    same = dataclasses.replace(sticks, ref_offsets=sticks.offsets,
                               ref_freqs_cm1=sticks.freqs_cm1.copy())
    assert torch.allclose(cross_theory_data(data, same, cfg.fwhm_cm1).ir, data.ir, atol=1e-6)
    # these generated shards carry no B3LYP frequencies: give every mode a 3 % higher one
    shifted = dataclasses.replace(same, ref_freqs_cm1=np.clip(sticks.freqs_cm1, 0, None) * 1.03)
    moved = cross_theory_data(data, shifted, cfg.fwhm_cm1)
    assert moved.graphs is data.graphs and moved.key != data.key
    assert (moved.ir - data.ir).abs().amax(1).min() > 0.01  # every molecule's spectrum moved


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    from vibraclip_core.realign import measured_data

    build = tmp_path_factory.mktemp("transfer")
    cfg = get_config("tiny", n_molecules=60, build_dir=str(build))
    qm9 = prepare(cfg)
    recs = [MeasuredIR(f"{n}.jdx", n, s, "", Spectrum(np.array([500.0, 4000.0]), np.ones(2),
                                                      "absorbance", f"{n}.jdx", []))
            for n, s in (("acetone", "CC(C)=O"), ("propanal", "CCC=O"), ("acetone2", "CC(C)=O"))]
    from vibraclip_core.molecules import canonical_identity

    recs = [dataclasses.replace(r, identity=canonical_identity(r.smiles)) for r in recs]
    measured, _ = measured_data(recs)
    return measured, T.measured_libraries(qm9, measured, 80, str(build), 0, 1)


def test_measured_libraries_hold_each_measured_molecule_once(libraries):
    measured, parts = libraries
    truth = set(measured.identity)
    for name, lib in parts.items():
        ids = [p.identity[int(i)] for p, rows in lib for i in rows]
        for ident in truth:
            assert ids.count(ident) == 1, (name, ident)
    assert sum(len(r) for _, r in parts[T.LIB_DISTRACTORS]) == 80
    iso = parts[T.LIB_ISOMERS][1][0]
    assert set(T.query_formulas(iso)) <= {"C3H6O"}  # acetone's and propanal's formula
    assert len(iso) >= 3  # QM9 holds more C3H6O isomers than the two measured ones
