import numpy as np
import pytest
from rdkit import Chem

from vibraclip_core.data.ood import candidates_source, ood_order, select_candidates, why_rejected


@pytest.mark.parametrize("smiles, reason", [
    ("CCCCCCCCCCO", ""),                                   # 11 heavy atoms, H/C/O
    ("CCO", "heavy_atoms_out_of_range"),                   # QM9-sized
    ("ClCCCCCCCCCC", "element_outside_HCNOF"),
    ("CCCCCCCCCC[NH3+]", "charged_or_radical"),
    ("CCCCCCCCCCO.O", "several_fragments"),
    ("C" * 22, "too_many_C_N_O"),
])
def test_why_rejected(smiles, reason):
    assert why_rejected(Chem.MolFromSmiles(smiles)) == reason


def test_select_candidates_dedups_by_inchikey_and_counts(tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_text("smiles\nCCCCCCCCCCO\nOCCCCCCCCCC\nCCO\nnot_a_smiles\nCCCCCCCCCCN\n")
    table, counts = select_candidates([csv])
    assert list(table.smiles) == sorted(table.smiles, key=lambda s: table.set_index(
        "smiles").loc[s, "inchikey"])
    assert len(table) == 2 and counts["duplicate"] == 1 and counts["unparseable"] == 1
    assert counts["heavy_atoms_out_of_range"] == 1
    assert (table.heavy_atoms == 11).all()


def test_small_molecules_need_the_qm9_check(tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_text("smiles\nCCO\nCCN\n")
    with pytest.raises(ValueError, match="qm9_identities"):
        select_candidates([csv], min_heavy=2)
    key = Chem.MolToInchiKey(Chem.MolFromSmiles("CCO"))
    table, counts = select_candidates([csv], min_heavy=2, qm9_identities={key})
    assert list(table.smiles) == ["CCN"] and counts["in_qm9"] == 1


def test_order_is_seeded_and_source_keeps_row_indices(tmp_path):
    assert np.array_equal(ood_order(20), ood_order(20)) and sorted(ood_order(20)) == list(range(20))
    csv = tmp_path / "a.csv"
    csv.write_text("smiles\nCCCCCCCCCCO\nCCCCCCCCCCN\nCCCCCCCCCCF\n")
    table, _ = select_candidates([csv])
    src = candidates_source(table)({2, 0})
    assert sorted(src) == [0, 2]
    assert src[2].smiles == table.smiles[2] and len(src[2].numbers) == len(src[2].positions_ang)
