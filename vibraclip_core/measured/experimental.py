"""Measured gas-phase IR spectra: fetched at build time, never committed, mapped to SMILES by us.

The `jcamp` package's source distribution on PyPI carries about 64 measured IR spectra (NIST
quantitative IR and Coblentz/Dow collections) in `data/infrared_spectra/`. They are real
experiments and not ours to redistribute, so `fetch_jcamp_spectra` downloads the sdist from the
package index into a cache folder (`make experimental`). The files name their molecules but carry
no SMILES: `data/experimental_ir/molecules.csv` is our own table (file, CAS, name, SMILES, or the
reason a file is not used), and `check_formulas` verifies every SMILES against the JCAMP header's
molecular formula. Our GFN2-xTB spectra of the mapped molecules are made by `experimental_gfn2`;
a user's own paired IR + Raman folder is read by `prepared.load_paired`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vibraclip_core.config.profiles import REPO_ROOT
from vibraclip_core.data.formulas import parse_formula
from vibraclip_core.data.molecules import canonical_identity, mol_from_smiles, molecular_formula
from vibraclip_core.data.spectra import Spectrum, SpectrumError
from vibraclip_core.measured.readers import read_spectrum

log = logging.getLogger(__name__)

JCAMP_VERSION = "1.3.2"
MAPPING_CSV = REPO_ROOT / "data" / "experimental_ir" / "molecules.csv"
DEFAULT_CACHE = REPO_ROOT / "build" / "cache" / "experimental"
GFN2_DIR = MAPPING_CSV.parent / "gfn2"  # our GFN2-xTB spectra of the mapped molecules (committed)
# our GFN2-xTB spectra of every QM9 isomer of a mapped molecule's formula outside data/qm9_gfn2
ISOMERS_GFN2_DIR = MAPPING_CSV.parent / "qm9_isomers_gfn2"


def fetch_jcamp_spectra(cache_dir: str | Path = DEFAULT_CACHE, version: str = JCAMP_VERSION) -> Path:
    """Folder of the jcamp sdist's measured IR spectra, downloaded from the package index once.

    Runs `pip download --no-deps --no-binary :all: jcamp==<version>` and extracts only
    `data/infrared_spectra/`; the folder appears atomically (extracted beside it, then renamed).
    """
    target = Path(cache_dir) / f"jcamp-{version}" / "infrared_spectra"
    if target.is_dir() and any(target.glob("*.jdx")):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
               ":all:", f"jcamp=={version}", "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        archives = list(Path(tmp).glob(f"jcamp-{version}.tar.gz"))
        if done.returncode != 0 or not archives:
            raise RuntimeError(f"could not download the jcamp {version} sdist from the package "
                               f"index ({' '.join(cmd)}): {done.stderr.strip()[-500:]}")
        prefix = f"jcamp-{version}/data/infrared_spectra/"
        staged = Path(tmp) / "infrared_spectra"
        staged.mkdir()
        with tarfile.open(archives[0]) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.startswith(prefix) and "/" not in \
                        member.name[len(prefix):]:
                    source = tar.extractfile(member)
                    (staged / Path(member.name).name).write_bytes(source.read())
        os.replace(staged, target)
    log.info("measured IR spectra in %s", target)
    return target


def load_mapping(path: str | Path = MAPPING_CSV) -> pd.DataFrame:
    """Our file -> (CAS, name, SMILES | exclusion reason) table, one row per JCAMP file."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    both = table[(table.smiles != "") == (table.excluded != "")]
    if len(both):
        raise ValueError(f"{path}: each row needs exactly one of smiles / excluded; rows "
                         f"{list(both.file)}")
    return table


def header_formula(path: str | Path) -> dict[str, int] | None:
    """Element counts from a JCAMP file's ##MOLFORM line, or None without one."""
    with open(path, encoding="latin-1") as fh:
        for line in fh:
            if line.upper().startswith("##MOLFORM="):
                return parse_formula(line.split("=", 1)[1])
    return None


def smiles_formula(smiles: str) -> dict[str, int]:
    """Element counts (hydrogens included) of a SMILES."""
    return parse_formula(molecular_formula(mol_from_smiles(smiles)))


def check_formulas(folder: str | Path, table: pd.DataFrame | None = None) -> list[str]:
    """Problems found comparing each mapped SMILES with its file's ##MOLFORM (empty: all agree)."""
    table = load_mapping() if table is None else table
    problems = []
    for row in table.itertuples():
        if not row.smiles:
            continue
        path = Path(folder) / row.file
        if not path.is_file():
            problems.append(f"{row.file}: listed in the mapping table but not in {folder}")
            continue
        header = header_formula(path)
        if header is None:
            problems.append(f"{row.file}: no ##MOLFORM to check {row.smiles} against")
        elif header != smiles_formula(row.smiles):
            problems.append(f"{row.file}: header formula {header} but SMILES {row.smiles} is "
                            f"{smiles_formula(row.smiles)}")
    return problems


@dataclass
class MeasuredIR:
    """One usable measured IR spectrum with its molecule."""

    file: str
    name: str
    smiles: str
    identity: str
    spectrum: Spectrum


def load_measured_ir(folder: str | Path) -> tuple[list[MeasuredIR], Counter]:
    """The mapped spectra of `folder` (read, converted to absorbance) and counts of what was
    skipped and why (excluded by the table, not in the table, unreadable)."""
    table = load_mapping()
    known = set(table.file)
    skipped: Counter = Counter()
    for path in sorted(Path(folder).glob("*.jdx")):
        if path.name not in known:
            skipped["not in the mapping table"] += 1
    out = []
    for row in table.itertuples():
        if row.excluded:
            skipped[row.excluded] += 1
            continue
        try:
            spectrum = read_spectrum(Path(folder) / row.file)
        except SpectrumError as exc:
            log.warning("%s", exc)
            skipped["unreadable"] += 1
            continue
        out.append(MeasuredIR(row.file, row.name, row.smiles, canonical_identity(row.smiles),
                              spectrum))
    return out, skipped
