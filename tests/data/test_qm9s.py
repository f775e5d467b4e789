"""Tests for vibraclip_core.data.qm9s: pairing by QM9S index, report counts, missing tables."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from vibraclip_core.data import qm9s
from vibraclip_core.data.spectra import FINE_POINTS

# QM9S index -> (QM9 index, SMILES, atom count); 42 has table rows but no molecule file
MOLECULES = {3: (4, "C", 5), 5: (6, "CO", 6), 8: (9, "CC#N", 6), 11: (12, "OCCO", 10),
             17: (18, "c1ccoc1", 9)}
IR_ROWS = [17, 99, 3, 42, 11, 5, 8]  # 99: an extra row found nowhere else
RAMAN_ROWS = [8, 42, 17, 5, 3]  # 11 has no Raman row
# file names whose sorted order differs from the index order
FILE_NAMES = {3: "zeta", 5: "alpha", 8: "omega", 11: "beta", 17: "kappa"}


def ir_row(i: int) -> np.ndarray:
    return i + np.linspace(0.0, 1.0, FINE_POINTS)


def raman_row(i: int) -> np.ndarray:
    return 2.0 * i + np.linspace(0.0, 1.0, FINE_POINTS)


def write_table(path: Path, indices: list[int], row_fn, header: bool) -> None:
    data = np.array([np.concatenate([[i], row_fn(i)]) for i in indices])
    head = ",".join(["index"] + [str(j) for j in range(FINE_POINTS)]) if header else ""
    np.savetxt(path, data, fmt="%.6f", delimiter=",", header=head, comments="")
    if not header:  # savetxt writes an empty first line for header=""
        path.write_text(path.read_text().lstrip("\n"))


def build_folder(root: Path, spelling: str = "broaden", ir_header: bool = True) -> Path:
    mol_dir = root / "qm9s_csv"
    mol_dir.mkdir(parents=True)
    for k, (i, (qm9, smiles, n_atoms)) in enumerate(MOLECULES.items()):
        if k % 2 == 0:  # pandas-written layout: header line and a row-number column
            text = f",0,1,2,3\n0,{i},{qm9},{smiles},{n_atoms}\n1,C,0.0,0.1,0.2\n2,H,1.0,0.0,0.0\n"
        else:  # bare layout: the first row is the record itself
            text = f"{i},{qm9},{smiles},{n_atoms}\nC,0.0,0.1,0.2\n"
        (mol_dir / f"{FILE_NAMES[i]}.csv").write_text(text)
    (mol_dir / "garbage.csv").write_text("not,a,molecule\nat,all,here\n")
    write_table(root / f"ir_{spelling}.csv", IR_ROWS, ir_row, header=ir_header)
    write_table(root / f"raman_{spelling}.csv", RAMAN_ROWS, raman_row, header=not ir_header)
    return root


@pytest.mark.parametrize("spelling,ir_header", [("broaden", True), ("boraden", False)])
def test_pairs_by_index_and_reports_counts(tmp_path, caplog, spelling, ir_header):
    folder = build_folder(tmp_path / "qm9s", spelling, ir_header)
    with caplog.at_level(logging.WARNING):
        data = qm9s.read_qm9s(folder)
    expected = [3, 5, 8, 17]
    assert data.qm9s_index.dtype == np.int64 and data.qm9s_index.tolist() == expected
    assert data.qm9_index.tolist() == [MOLECULES[i][0] for i in expected]
    assert data.smiles == [MOLECULES[i][1] for i in expected]
    assert data.n_atoms.tolist() == [MOLECULES[i][2] for i in expected]
    assert data.ir_fine.shape == data.raman_fine.shape == (4, FINE_POINTS)
    assert data.ir_fine.dtype == data.raman_fine.dtype == np.float32
    for row, i in enumerate(expected):
        np.testing.assert_allclose(data.ir_fine[row], ir_row(i), atol=1e-5)
        np.testing.assert_allclose(data.raman_fine[row], raman_row(i), atol=1e-5)
    report = data.report
    assert report["paired"] == 4
    assert report["molecule_files"] == 6 and report["molecule_files_malformed"] == 1
    assert report["ir_rows"] == 7 and report["raman_rows"] == 5
    assert report["missing_molecule_csv"] == 2  # 42 and 99
    assert report["missing_ir"] == 0
    assert report["missing_raman"] == 2  # 11 and 99
    assert "garbage.csv" in caplog.text and "missing" in caplog.text


def test_duplicate_and_nonfinite_rows_are_dropped(tmp_path):
    folder = build_folder(tmp_path / "qm9s")
    table = folder / "raman_broaden.csv"
    lines = table.read_text().splitlines()
    nan_row = ",".join(["11"] + ["nan"] * FINE_POINTS)
    dup_row = ",".join(["3"] + ["-1"] * FINE_POINTS)
    table.write_text("\n".join(lines + [nan_row, dup_row]) + "\n")
    data = qm9s.read_qm9s(folder)
    assert data.report["raman_rows_nonfinite"] == 1 and data.report["raman_duplicates"] == 1
    assert data.qm9s_index.tolist() == [3, 5, 8, 17]
    np.testing.assert_allclose(data.raman_fine[0], raman_row(3), atol=1e-5)  # first occurrence kept


def test_missing_tables_error_lists_both_spellings(tmp_path):
    folder = build_folder(tmp_path / "qm9s")
    (folder / "ir_broaden.csv").unlink()
    with pytest.raises(FileNotFoundError) as err:
        qm9s.read_qm9s(folder)
    assert "ir_broaden.csv" in str(err.value) and "ir_boraden.csv" in str(err.value)


def test_wrong_column_count_is_named(tmp_path):
    folder = build_folder(tmp_path / "qm9s")
    (folder / "ir_broaden.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(ValueError, match="ir_broaden.csv: 3 columns"):
        qm9s.read_qm9s(folder)


def test_short_rows_are_reported_as_short_with_their_line(tmp_path, caplog):
    folder = build_folder(tmp_path / "qm9s")
    table = folder / "raman_broaden.csv"
    lines = table.read_text().splitlines()
    short_row = ",".join(["11"] + ["0.5"] * 100)  # a table cut off mid-row
    table.write_text("\n".join(lines + [short_row]) + "\n")
    with caplog.at_level(logging.WARNING):
        data = qm9s.read_qm9s(folder)
    assert data.report["raman_rows_short"] == 1 and data.report["raman_rows_nonfinite"] == 0
    assert data.report["raman_rows"] == len(RAMAN_ROWS) + 1
    assert data.qm9s_index.tolist() == [3, 5, 8, 17]
    assert "raman_broaden.csv: dropped 1 short rows" in caplog.text
    assert f"line {len(lines) + 1}" in caplog.text and "NaN/inf" not in caplog.text
