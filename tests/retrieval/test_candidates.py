"""Candidate files of `vibraclip identify` (candidates.load_candidates): which column and which
part of a line is the SMILES, and which files are refused with the file and line named."""

from __future__ import annotations

import pytest

from vibraclip_core.retrieval import candidates as C


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_smi_lines_are_smiles_then_name(tmp_path):
    path = write(tmp_path, "lib.smi", "smiles name\nCCO ethanol\nCOC dimethyl ether\n"
                                      "CC(C)=O\tC O\nCC#N,acetonitrile\n")
    assert C.load_candidates(path) == ["CCO", "COC", "CC(C)=O", "CC#N"]


@pytest.mark.parametrize("name, text, line", [
    ("lib.smi", "CCO ethanol\nC C O\n", 2),  # the 'name' reads as SMILES: spaces in a SMILES
    ("lib.txt", "CCO\nC C O\n", 2),
    ("lib.txt", "CCO ethanol\n", 1),  # a .txt line is one SMILES; names belong in a .smi file
    ("lib.csv", "smiles,name\nCCO,ethanol\nC C O,propanol\n", 3),
    ("lib.csv", "C C O\n", 1),
])
def test_spaces_inside_a_smiles_are_an_error_naming_file_and_line(tmp_path, name, text, line):
    # issue 18: 'C C O' was read as methane
    path = write(tmp_path, name, text)
    with pytest.raises(C.IdentifyError, match=rf"{name}: line {line}: .* spaces inside a SMILES"):
        C.load_candidates(path)


@pytest.mark.parametrize("text", [
    "name,smiles\nethanol,CCO\nacetone,CC(C)=O\n",
    "Name;SMILES;mass\nethanol;CCO;46.07\nacetone;CC(C)=O;58.08\n",
    "id\tCanonicalSMILES\n1\tCCO\n2\tCC(C)=O\n",
    "name,\"Smiles\"\n\"ethanol\",\"CCO\"\nacetone,CC(C)=O\n,,\n",
])
def test_csv_reads_the_column_named_smiles(tmp_path, text):
    # issue 18: a CSV whose SMILES column is not the first was read from the wrong column
    assert C.load_candidates(write(tmp_path, "lib.csv", text)) == ["CCO", "CC(C)=O"]


def test_csv_without_smiles_header(tmp_path):
    # a header without a smiles column: the first column, when it holds SMILES
    path = write(tmp_path, "lib.csv", "structure,name\nCCO,ethanol\n")
    assert C.load_candidates(path) == ["CCO"]
    assert C.load_candidates(write(tmp_path, "plain.csv", "CCO,ethanol\nCOC\n")) == ["CCO", "COC"]
    # an empty SMILES cell stays, so the library counts it as skipped ('empty')
    assert C.load_candidates(write(tmp_path, "gap.csv", "smiles,n\n,a\nCCO,b\n")) == ["", "CCO"]


@pytest.mark.parametrize("text, message", [
    ("name,structure\nethanol,CCO\n", r"header \['name', 'structure'\] has no 'smiles' column"),
    ("ethanol,CCO\nacetone,CC(C)=O\n", r"line 1: the first column 'ethanol' is no SMILES but "
                                       r"column 2 \('CCO'\) is"),
])
def test_csv_with_smiles_in_an_unnamed_column_is_an_error_naming_the_file(tmp_path, text,
                                                                           message):
    path = write(tmp_path, "lib.csv", text)
    with pytest.raises(C.IdentifyError, match=rf"lib.csv: .*{message}"):
        C.load_candidates(path)


def test_files_without_smiles_are_refused(tmp_path):
    for name, text in (("a.csv", "# only a comment\n"), ("b.csv", ",,\n"), ("c.txt", "\n\n"),
                       ("d.csv", "smiles\n")):
        with pytest.raises(C.IdentifyError, match=rf"{name}: no SMILES found"):
            C.load_candidates(write(tmp_path, name, text))
