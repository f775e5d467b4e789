"""Measured gas-phase IR spectra: fetched at build time, never committed, mapped to SMILES by us.

The `jcamp` package's source distribution on PyPI carries about 64 measured IR spectra (NIST
quantitative IR and Coblentz/Dow collections) in `data/infrared_spectra/`. They are real
experiments and not ours to redistribute, so `fetch_jcamp_spectra` downloads the sdist from the
package index into a cache folder (`make experimental`). The files name their molecules but carry
no SMILES: `data/experimental_ir/molecules.csv` is our own table (file, CAS, name, SMILES, or the
reason a file is not used), and `check_formulas` verifies every SMILES against the JCAMP header's
molecular formula.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .config import REPO_ROOT
from .molecules import canonical_identity, mol_from_smiles, molecular_formula
from .spectra import Spectrum, SpectrumError, raman_intensity_to_activity, read_spectrum

if TYPE_CHECKING:
    from .datasets import PreparedData

log = logging.getLogger(__name__)

JCAMP_VERSION = "1.3.2"
MAPPING_CSV = REPO_ROOT / "data" / "experimental_ir" / "molecules.csv"
DEFAULT_CACHE = REPO_ROOT / "build" / "cache" / "experimental"


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


_GROUP = re.compile(r"\(([^()]*)\)(\d*)")
_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")


def parse_molform(text: str) -> dict[str, int]:
    """Element counts of a JCAMP ##MOLFORM value, condensed or not.

    Handles 'C2 H6 O', 'C 4 H 8', 'C H3 C O C H3', 'C H2: C H C N', '1,2-( C H3)2 C6 H4' and
    '( C H3)3 C O C2 H5' (locant prefixes dropped, parenthesised groups multiplied).
    """
    s = re.sub(r"^[\d,]+-", "", text.strip())
    s = re.sub(r"([A-Z][a-z]?)\s+(\d)", r"\1\2", s).replace(":", " ")
    s = re.sub(r"\s+", "", s)
    while "(" in s:
        s = _GROUP.sub(lambda m: "".join(f"{e}{int(n or 1) * int(m.group(2) or 1)}"
                                         for e, n in _TOKEN.findall(m.group(1))), s)
    counts: Counter = Counter()
    for element, n in _TOKEN.findall(s):
        counts[element] += int(n or 1)
    return dict(counts)


def header_formula(path: str | Path) -> dict[str, int] | None:
    """Element counts from a JCAMP file's ##MOLFORM line, or None without one."""
    with open(path, encoding="latin-1") as fh:
        for line in fh:
            if line.upper().startswith("##MOLFORM="):
                return parse_molform(line.split("=", 1)[1])
    return None


def smiles_formula(smiles: str) -> dict[str, int]:
    """Element counts (hydrogens included) of a SMILES."""
    return {e: int(n or 1) for e, n in _TOKEN.findall(molecular_formula(mol_from_smiles(smiles)))}


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



GFN2_DIR = MAPPING_CSV.parent / "gfn2"


def qm9_index_of(smiles: list[str]) -> dict[str, int]:
    """QM9 index of each SMILES whose canonical identity is in QM9 (qm9pack), others absent."""
    from .generate import qm9pack_csv_paths

    wanted = {canonical_identity(s): s for s in smiles}
    found = {}
    for path in qm9pack_csv_paths():
        df = pd.read_csv(path, usecols=["Index", "SMILES"])
        for index, smi in zip(df.Index, df.SMILES):
            try:
                ident = canonical_identity(smi)
            except Exception:  # a QM9 SMILES RDKit cannot parse is simply not a match
                continue
            if ident in wanted:
                found[wanted[ident]] = int(index)
    return found


def simulate_mapped(out_dir: str | Path = GFN2_DIR, workers: int = 1) -> list[Path]:
    """GFN2-xTB IR + Raman of every distinct mapped molecule (one shard, index = row of the
    unique-SMILES list in table order), for the domain-gap figure and the library-search
    baseline. Molecules in QM9 start from QM9's B3LYP geometry, like the embedded set; the others
    from an ETKDG + MMFF conformer. Our own simulation, so it is committed."""
    import dataclasses

    import numpy as np

    from .generate import generate, load_qm9_source
    from .ood import candidates_source

    table = load_mapping()
    unique = pd.DataFrame({"smiles": list(dict.fromkeys(s for s in table.smiles if s))})
    in_qm9 = qm9_index_of(list(unique.smiles))
    log.info("%d of %d measured molecules are in QM9", len(in_qm9), len(unique))
    qm9 = load_qm9_source(set(in_qm9.values()))
    from_smiles = candidates_source(unique)

    def load(indices: set[int]) -> dict:
        out = from_smiles({i for i in indices if unique.smiles[i] not in in_qm9})
        for i in indices:
            smi = unique.smiles[i]
            if smi in in_qm9:  # QM9 geometry, our SMILES and row index
                out[i] = dataclasses.replace(qm9[in_qm9[smi]], index=i, smiles=smi)
        return out

    return generate(Path(out_dir), np.arange(len(unique)), load, 1, workers=workers,
                    shard_size=len(unique))


def load_paired(folder: str | Path, seed: int = 0, laser_nm: float = 532.0,
                temperature_k: float = 298.0) -> PreparedData:
    """A user's paired measured spectra as PreparedData: `molecules.csv` (name, smiles) and per
    name `<name>_ir.<ext>` and `<name>_raman.<ext>` (.jdx/.dx/.jcamp/.csv/.txt). Raman
    intensities are put on the activity scale the model was trained on for that laser line and
    temperature (`spectra.raman_intensity_to_activity`). Missing or unreadable files raise an
    error naming them."""
    import numpy as np
    import torch

    from .datasets import PreparedData, pack_graphs
    from .molecules import featurize_many
    from .spectra import spectrum_to_model_input

    folder = Path(folder)
    table = pd.read_csv(folder / "molecules.csv", dtype=str)
    if not {"name", "smiles"} <= set(table.columns):
        raise ValueError(f"{folder / 'molecules.csv'}: needs columns name, smiles")

    def find(name: str, kind: str) -> Path:
        hits = [p for p in folder.glob(f"{name}_{kind}.*") if p.is_file()]
        if not hits:
            raise FileNotFoundError(f"{folder}: no {name}_{kind}.jdx/.csv for molecule {name!r}")
        return hits[0]

    ir = [spectrum_to_model_input(read_spectrum(find(n, "ir"))) for n in table.name]
    raman = [spectrum_to_model_input(raman_intensity_to_activity(
        read_spectrum(find(n, "raman")), laser_nm, temperature_k)) for n in table.name]
    graphs, failures = featurize_many(list(table.smiles), seed=seed, workers=1, progress=False)
    bad = [n for n, g in zip(table.name, graphs) if g is None]
    if bad:
        raise ValueError(f"{folder}: no 3-D structure for {bad} ({dict(failures)})")
    mass = np.array([g.mass_da for g in graphs], dtype=np.float32)
    empty = torch.zeros(0, dtype=torch.long)
    return PreparedData(
        smiles=list(table.smiles), identity=[canonical_identity(s) for s in table.smiles],
        index=torch.arange(len(table)), ir=torch.from_numpy(np.stack(ir)),
        raman=torch.from_numpy(np.stack(raman)), mass_da=torch.from_numpy(mass),
        graphs=pack_graphs(graphs), splits={"train": empty, "val": empty, "test": empty},
        mass_mean=float(mass.mean()), mass_std=float(mass.std() + 1e-6),
        report={"pairs": len(table)}, key=f"paired-{folder.name}")
