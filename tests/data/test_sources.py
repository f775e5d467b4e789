"""Tests for vibraclip_core.data.sources: QM9 records, the seeded QM9 order, SMILES starting geometries."""

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from vibraclip_core.data.sources import (QM9_SIZE, _parse_list, load_qm9_source, qm9_order,
                                         source_from_smiles)


def test_qm9_literal_lists_parse():
    assert _parse_list("[0.,1.5*^-3,2]") == [0.0, 1.5e-3, 2]
    assert _parse_list("['C','H']") == ["C", "H"]
    with pytest.raises((ValueError, SyntaxError)):
        _parse_list("[1, 2")


def test_qm9_records_and_order():
    order = qm9_order()
    assert len(order) == QM9_SIZE and len(set(order.tolist())) == QM9_SIZE
    assert not order.flags.writeable and order is qm9_order()  # computed once per process
    src = load_qm9_source({1, 2, 3})  # methane, ammonia, water
    assert [src[i].numbers.tolist() for i in (1, 2, 3)] == [[6, 1, 1, 1, 1], [7, 1, 1, 1], [8, 1, 1]]
    assert src[3].positions_ang.shape == (3, 3) and len(src[3].ref_freqs_cm1) == 3


def _twin(smiles: str, seed: int) -> np.ndarray:
    """The starting geometry as the committed shards were made: RDKit's ETKDGv3 once, then
    MMFF with RDKit's defaults, written out by hand."""
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    assert AllChem.EmbedMolecule(mol, params) == 0
    AllChem.MMFFOptimizeMolecule(mol)
    return mol.GetConformer().GetPositions()


def test_smiles_geometry_equals_plain_etkdg_plus_mmff_bit_for_bit():
    smiles = ["CC(=O)OCC", "c1ccccc1O", "C1CC2CC1C2", "FC(F)(F)C#N", "OCC(N)C=O"]
    made = source_from_smiles(smiles, seed=3)
    for i, s in enumerate(smiles):
        assert made[i].problem == "" and made[i].smiles == s
        assert np.array_equal(made[i].positions_ang, _twin(s, 3))
        assert made[i].numbers.dtype == np.int32 and len(made[i].numbers) == len(_twin(s, 3))


def test_unusable_smiles_get_a_problem_not_an_error():
    made = source_from_smiles(["C1CC1X", "O"])
    assert "unparseable" in made[0].problem and made[0].numbers.size == 0
    assert made[1].problem == "" and made[1].numbers.tolist() == [8, 1, 1]
