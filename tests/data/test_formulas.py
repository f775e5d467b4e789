"""Tests for vibraclip_core.data.formulas: the formula parser, Hill order, RDKit masses."""

import re

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors

from vibraclip_core.app.identify import check_query
from vibraclip_core.config.profiles import get_config
from vibraclip_core.data import formulas as F
from vibraclip_core.data.molecules import mol_from_smiles, molecular_formula
from vibraclip_core.data.sources import load_qm9_source, qm9_order
from vibraclip_core.data.spectra import Spectrum
from vibraclip_core.model.vibraclip import VibraCLIP


@pytest.mark.parametrize("text, counts", [
    ("C2 H6 O", {"C": 2, "H": 6, "O": 1}),
    ("C 4 H 8", {"C": 4, "H": 8}),
    ("C H3 C O C H3", {"C": 3, "H": 6, "O": 1}),
    ("C H2: C H C N", {"C": 3, "H": 3, "N": 1}),
    ("1,2-( C H3)2 C6 H4", {"C": 8, "H": 10}),
    ("( C H3)3 C O C2 H5", {"C": 6, "H": 14, "O": 1}),
    ("H 2 O", {"H": 2, "O": 1}),
    ("C H3 C Cl3", {"C": 2, "H": 3, "Cl": 3}),
    ("OC2H6", {"O": 1, "C": 2, "H": 6}),
])
def test_parse_formula_condensed_spaced_and_jcamp(text, counts):
    assert F.parse_formula(text) == counts


@pytest.mark.parametrize("text", ["C2H6O-", "", "c2h6o", "C2H6O+", "(C+H)2", "C2H6O;"])
def test_parse_formula_rejects_what_it_cannot_read(text):
    with pytest.raises(F.FormulaError, match="formula"):
        F.parse_formula(text)


@pytest.mark.parametrize("text, named", [("C0H4", "zero count for 'C'"),
                                         ("(CH3)0CO", "zero count"),
                                         ("CH4O0", "zero count for 'O'"),
                                         ("Xx2", "unknown element 'Xx'"),
                                         ("C2H6Xx", "unknown element 'Xx'"),
                                         ("CL4", "unknown element 'L'")])
def test_zero_counts_and_unknown_elements_are_errors_naming_them(text, named, capfd):
    # issue 18: 'C0H4' was read as CH4; 'Xx2' passed and failed later after an RDKit C++ dump
    for f in (F.parse_formula, F.hill_formula, F.formula_mass_da):
        with pytest.raises(F.FormulaError, match=re.escape(named)):
            f(text)
    assert capfd.readouterr().err == ""  # refused before RDKit sees the symbol


def test_hill_formula_and_formula_mass():
    assert F.hill_formula("OC2H6") == "C2H6O"
    assert F.hill_formula("H2O") == "H2O" and F.hill_formula("OH2") == "H2O"
    assert F.hill_formula("ClCH3") == "CH3Cl"
    assert F.hill_formula("OFH") == "HFO"  # RDKit's order: H first also without carbon
    mol = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    assert F.formula_mass_da("C2H6O") == pytest.approx(Descriptors.MolWt(mol), abs=1e-6)
    assert F.formula_mass_da("(CH3)2CO") == pytest.approx(58.08, abs=0.01)  # acetone
    with pytest.raises(F.FormulaError, match="C2H6O-"):
        F.hill_formula("C2H6O-")
    with pytest.raises(F.FormulaError, match="Xx"):
        F.formula_mass_da("C2Xx")


def test_hill_formulas_from_atoms_match_rdkit():
    # by hand: water, HF, ammonia, fluoroform, ethanol written O first, NHF2
    z = np.array([8, 1, 1, 9, 1, 7, 1, 1, 1, 6, 1, 9, 9, 9, 8, 6, 6] + [1] * 6 + [9, 7, 9, 1])
    offsets = np.array([0, 3, 5, 9, 14, 23, 27])
    assert F.hill_formulas(z, offsets) == ["H2O", "HF", "H3N", "CHF3", "C2H6O", "HF2N"]
    for smiles, formula in zip(["O", "F", "N", "FC(F)F", "OCC", "FNF"],
                               F.hill_formulas(z, offsets)):
        assert molecular_formula(mol_from_smiles(smiles)) == formula
    # QM9's own atoms (its B3LYP records) against RDKit's formula of its SMILES
    source = load_qm9_source({int(i) for i in qm9_order()[:300]})
    mols = list(source.values())
    offsets = np.concatenate([[0], np.cumsum([len(m.numbers) for m in mols])])
    formulas = F.hill_formulas(np.concatenate([m.numbers for m in mols]), offsets)
    assert formulas == [molecular_formula(mol_from_smiles(m.smiles)) for m in mols]
    assert len(set(formulas)) > 50 and any("F" in f for f in formulas)


def test_element_set_and_masses():
    assert F.ELEMENTS == ("H", "C", "N", "O", "F")
    assert F.ATOMIC_NUMBER == {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
    # the standard atomic weights the simulator used when the embedded data were made
    np.testing.assert_array_equal(F.atomic_masses(np.array([1, 6, 7, 8, 9])),
                                  [1.008, 12.011, 14.007, 15.999, 18.998])
    assert F.atomic_masses(np.array([0]))[0] == 0.0 and len(F.atomic_masses(np.arange(87))) == 87
    assert F.mass_of_numbers(np.array([6, 6, 8, 1, 1, 1, 1, 1, 1])) == pytest.approx(
        Descriptors.MolWt(mol_from_smiles("CCO")), abs=1e-9)


@pytest.mark.parametrize("formula", ["C0H4", "Xx2"])
def test_identify_refuses_such_formulas_before_the_library(formula, capfd):
    # `vibraclip identify --formula` is checked by check_query, before any library is built
    x = np.linspace(500.0, 4000.0, 50)
    ir = Spectrum(x, np.sin(x / 300.0) + 1.0, "absorbance", "q.csv")
    with pytest.raises(F.FormulaError, match=re.escape(repr(formula))):
        check_query(VibraCLIP(get_config("tiny")), ir, None, formula=formula)
    assert capfd.readouterr().err == ""


def test_isotopes_and_elements_outside_the_model_are_named():
    # issue 28: 'D2O' was blamed on capitalisation; Cl sent users to --mass-tol
    for formula, name in (("D2O", "deuterium"), ("CT4", "tritium")):
        with pytest.raises(F.FormulaError, match=f"{name}; isotopes are not supported") as err:
            F.parse_formula(formula)
        assert "'Cl', not 'CL'" not in str(err.value)
    assert F.unknown_elements("C6H5Cl") == ["Cl (chlorine)"]
    assert F.unknown_elements("CH2BrCl") == ["Br (bromine)", "Cl (chlorine)"]
    assert F.unknown_elements("C2H6O") == []
    x = np.linspace(500.0, 4000.0, 50)
    ir = Spectrum(x, np.sin(x / 300.0) + 1.0, "absorbance", "q.csv")
    with pytest.raises(ValueError, match=r"formula 'C6H5Cl': Cl \(chlorine\) is outside the "
                       r"elements the model knows \(H, C, N, O, F\)"):
        check_query(VibraCLIP(get_config("tiny")), ir, None, formula="C6H5Cl")
