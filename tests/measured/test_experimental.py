import pytest

from vibraclip_core.data.spectra import model_grid, spectrum_to_model_input
from vibraclip_core.measured.experimental import (check_formulas, fetch_jcamp_spectra,
                                                  header_formula, load_mapping, load_measured_ir,
                                                  smiles_formula)


def test_mapping_rows_have_smiles_or_a_reason():
    table = load_mapping()
    assert ((table.smiles != "") ^ (table.excluded != "")).all()
    assert smiles_formula("CC(C)=O") == {"C": 3, "H": 6, "O": 1}


@pytest.fixture(scope="module")
def folder():
    # downloads the jcamp sdist once (make test fetches it first through `make experimental`)
    return fetch_jcamp_spectra()


def test_every_mapped_smiles_matches_its_jcamp_formula(folder):
    assert check_formulas(folder) == []
    assert len(list(folder.glob("*.jdx"))) == len(load_mapping())


def test_a_wrong_smiles_is_caught(folder):
    table = load_mapping()
    table.loc[table.file == "acetone.jdx", "smiles"] = "CCC=O"  # propanal: C3H6O as well
    assert check_formulas(folder, table) == []  # isomers pass: the check is by formula
    table.loc[table.file == "acetone.jdx", "smiles"] = "CCCO"
    assert any("acetone.jdx" in p for p in check_formulas(folder, table))


def test_real_files_read_as_absorbance_with_their_unit_conventions(folder):
    records, skipped = load_measured_ir(folder)
    assert len(records) == (load_mapping().smiles != "").sum()
    assert skipped["unreadable"] == 0
    by_file = {r.file: r.spectrum for r in records}
    assert all(s.y_kind == "absorbance" for s in by_file.values())
    nist = by_file["acetone.jdx"]  # NIST absorption coefficient, 14k points
    assert any("NIST absorption coefficient" in n for n in nist.notes)
    assert len(nist.wavenumbers_cm1) > 10_000
    coblentz = by_file["ethanol.jdx"]  # transmittance 0-1, converted
    assert any("-log10(T)" in n for n in coblentz.notes)
    assert header_formula(folder / "water.jdx") == {"H": 2, "O": 1}
    # the carbonyl stretch of acetone (about 1730 cm-1) is among its strongest bands
    x = spectrum_to_model_input(nist)
    grid = model_grid()
    window = (grid > 1650) & (grid < 1800)
    assert x[window].max() > 0.5
