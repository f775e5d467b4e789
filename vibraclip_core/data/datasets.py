"""The embedded stick-spectra dataset, the processed-data cache and the grouped splits.

Raw data (data/qm9_gfn2/shard_*.npz) holds ragged stick spectra. `prepare` turns it into model
inputs: broadened IR and Raman on the 1750-point grid, conformer graphs, a grouped split and mass
statistics, cached under build/cache keyed by a hash of the inputs and parameters.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from vibraclip_core.config.profiles import EMBEDDED_DATA_DIR, Config
from vibraclip_core.data.files import atomic_path
from vibraclip_core.data.molecules import canonical_identity, featurize_many
from vibraclip_core.data.qm9_candidates import ROUTE_B3LYP_UNPARSED, load_positions, qm9_positions
from vibraclip_core.data.qm9s import is_qm9s_folder, qm9s_digest, qm9s_model_inputs
from vibraclip_core.data.shards import check_shard
from vibraclip_core.data.simulate import METHODS, STATUS_OK
from vibraclip_core.data.spectra import sticks_to_model_input

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 2
SPLITS = ("train", "val", "test")
MASS_STD_FLOOR_DA = 1e-6  # added to every mass standard deviation: one mass divides by it


@dataclass
class StickSet:
    """Ragged stick spectra of n molecules: molecule m owns values[offsets[m]:offsets[m+1]]."""

    index: np.ndarray  # (n,) source index (QM9 index for the embedded set)
    smiles: list[str]
    n_atoms: np.ndarray
    status: np.ndarray  # (n,) str: "ok" or the failure reason
    seconds: np.ndarray  # (n,) simulator wall time
    offsets: np.ndarray  # (n + 1,)
    freqs_cm1: np.ndarray
    ir_km_mol: np.ndarray
    raman_a4_amu: np.ndarray
    ref_offsets: np.ndarray
    ref_freqs_cm1: np.ndarray  # reference harmonic frequencies (B3LYP for QM9)
    shard_files: list[str] = field(default_factory=list)
    method: str = METHODS[0]  # the level of theory of every shard (older shards: GFN2-xTB)

    def __len__(self) -> int:
        return len(self.index)

    def sticks(self, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(freqs_cm1, ir_km_mol, raman_a4_amu) of molecule m."""
        s = slice(self.offsets[m], self.offsets[m + 1])
        return self.freqs_cm1[s], self.ir_km_mol[s], self.raman_a4_amu[s]

    def ref_freqs(self, m: int) -> np.ndarray:
        return self.ref_freqs_cm1[self.ref_offsets[m]:self.ref_offsets[m + 1]]

    def select(self, rows: np.ndarray) -> "StickSet":
        """The molecules at `rows`, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        off, vals = take_ragged(self.offsets, [self.freqs_cm1, self.ir_km_mol, self.raman_a4_amu],
                                rows)
        roff, (rvals,) = take_ragged(self.ref_offsets, [self.ref_freqs_cm1], rows)
        return StickSet(self.index[rows], [self.smiles[i] for i in rows], self.n_atoms[rows],
                        self.status[rows], self.seconds[rows], off, *vals, roff, rvals,
                        self.shard_files, self.method)

    def ok(self) -> "StickSet":
        return self.select(np.flatnonzero(self.status == STATUS_OK))

    def failure_counts(self) -> Counter:
        return Counter(str(s) for s in self.status if s != STATUS_OK)


def take_ragged(offsets: np.ndarray, values: list[np.ndarray],
                rows: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rows of ragged arrays sharing `offsets`; returns the new offsets and values."""
    lengths = offsets[rows + 1] - offsets[rows]
    new_off = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if len(rows) == 0 or new_off[-1] == 0:
        return new_off, [v[:0] for v in values]
    flat = np.repeat(offsets[rows] - new_off[:-1], lengths) + np.arange(new_off[-1])
    return new_off, [v[flat] for v in values]


def shard_files(data_dir: Path) -> list[Path]:
    files = sorted(Path(data_dir).glob("shard_*.npz"))
    if not files:
        raise FileNotFoundError(
            f"{data_dir}: no shard_*.npz files. Generate them with "
            f"`vibraclip simulate --out {data_dir} --shards N`, or point data_dir elsewhere.")
    return files


def load_sticks(data_dir: Path) -> StickSet:
    """All shards of a stick-spectra folder, concatenated in shard order; each shard checked
    (check_shard): a missing array, offsets out of order or NaN sticks raise a ValueError naming
    the file and the array."""
    parts = []
    files = shard_files(data_dir)
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as z:
                parts.append({k: z[k] for k in z.files})
        except Exception as exc:
            raise ValueError(f"{f}: unreadable shard ({exc}); delete it and rerun "
                             f"`vibraclip simulate` to regenerate it") from exc
        check_shard(parts[-1], f)
    methods = {str(p.get("method", METHODS[0])) for p in parts}
    if len(methods) > 1:
        raise ValueError(f"{data_dir}: shards of several levels of theory ({sorted(methods)}); "
                         "keep each method's shards in a folder of its own")

    def cat_offsets(key: str) -> np.ndarray:
        out, base = [np.zeros(1, np.int64)], 0
        for p in parts:
            out.append(p[key][1:] + base)
            base += p[key][-1]
        return np.concatenate(out)

    def cat(key: str) -> np.ndarray:
        return np.concatenate([p[key] for p in parts])

    return StickSet(cat("index"), [str(s) for s in cat("smiles")], cat("n_atoms"),
                    cat("status").astype(str), cat("seconds"), cat_offsets("offsets"),
                    cat("freqs_cm1"), cat("ir_km_mol"), cat("raman_a4_amu"),
                    cat_offsets("ref_offsets"), cat("ref_freqs_cm1"), [f.name for f in files],
                    methods.pop())


def grouped_split(identities: list[str], seed: int,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """Row indices per split; all rows sharing an identity land in the same split."""
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions {fractions} must sum to 1")
    groups, inverse = np.unique(np.asarray(identities, dtype=str), return_inverse=True)
    perm = np.random.default_rng(seed).permutation(len(groups))
    n_train = int(round(fractions[0] * len(groups)))
    n_val = int(round(fractions[1] * len(groups)))
    group_split = np.empty(len(groups), dtype=np.int64)
    group_split[perm[:n_train]] = 0
    group_split[perm[n_train:n_train + n_val]] = 1
    group_split[perm[n_train + n_val:]] = 2
    row_split = group_split[inverse]
    return {name: np.flatnonzero(row_split == k) for k, name in enumerate(SPLITS)}


def _file_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(hashlib.sha256(Path(p).read_bytes()).digest())
    return h.hexdigest()[:12]


@dataclass
class PreparedData:
    """Model-ready data: spectra (n, 1750) float32 in [0, 1], graphs, masses, splits."""

    smiles: list[str]
    identity: list[str]
    index: torch.Tensor  # (n,) source index
    ir: torch.Tensor  # (n, 1750) float32
    raman: torch.Tensor  # (n, 1750) float32
    mass_da: torch.Tensor  # (n,) float32
    graphs: dict[str, torch.Tensor]  # concatenated graph arrays + node/edge offsets
    splits: dict[str, torch.Tensor]
    mass_mean: float
    mass_std: float
    report: dict[str, int]
    key: str

    def __len__(self) -> int:
        return len(self.smiles)

    def standardized_mass(self) -> torch.Tensor:
        """(n,) mass standardized with training-split statistics."""
        return (self.mass_da - self.mass_mean) / self.mass_std

    def to_state(self) -> dict:
        return {"version": CACHE_FORMAT_VERSION, **{k: getattr(self, k) for k in (
            "smiles", "identity", "index", "ir", "raman", "mass_da", "graphs", "splits",
            "mass_mean", "mass_std", "report", "key")}}

    @classmethod
    def from_state(cls, state: dict) -> "PreparedData":
        state = dict(state)
        if state.pop("version", None) != CACHE_FORMAT_VERSION:
            raise ValueError("processed-data cache from another format version")
        return cls(**state)


def cache_key(config: Config) -> str:
    """Hash of the raw data files and every parameter that changes the processed data."""
    if is_qm9s_folder(config.data_path):
        files_digest = qm9s_digest(config.data_path)
    else:
        files_digest = _file_digest(shard_files(config.data_path))
    params = config.digest("n_molecules", "fwhm_cm1", "split_fractions", "seed", "conformer_seed")
    return f"{files_digest}-{params}-v{CACHE_FORMAT_VERSION}"


def pack_graphs(graphs: list) -> dict[str, torch.Tensor]:
    """What the graph encoder reads of each molecule, concatenated: "z" (atoms,) long, "pos"
    (atoms, 3) float32 Å, "node_offsets" (n + 1,) long."""
    n_nodes = [len(g.z) for g in graphs]
    return {
        "z": torch.from_numpy(np.concatenate([g.z for g in graphs])).long(),
        "pos": torch.from_numpy(np.concatenate([g.pos_ang for g in graphs])).float(),
        "node_offsets": torch.tensor(np.concatenate([[0], np.cumsum(n_nodes)]), dtype=torch.long),
    }


def is_qm9_source(config: Config) -> bool:
    """True when the data's source index is QM9's: the embedded set or a QM9S release."""
    return (is_qm9s_folder(config.data_path)
            or config.data_path.resolve() == EMBEDDED_DATA_DIR.resolve())


def qm9_geometries(index: np.ndarray, config: Config) -> tuple[list, Counter]:
    """Per QM9 index: a graph of z / pos_ang / mass_da from the shared QM9 conformer cache
    (ETKDG, else QM9's B3LYP geometry; the same geometry any candidate library uses), None where
    RDKit cannot read the SMILES; and the count of each geometry route."""
    s = load_positions(qm9_positions(index), Path(config.build_dir) / "cache" / "qm9-conformers",
                       config.conformer_seed, config.workers)
    graphs = []
    for m in range(len(s)):
        a, b = s.atom_offsets[m], s.atom_offsets[m + 1]
        graphs.append(None if s.route[m] == ROUTE_B3LYP_UNPARSED else
                      SimpleNamespace(z=s.z[a:b], pos_ang=s.pos_ang[a:b], mass_da=s.mass_da[m]))
    return graphs, Counter(s.route)


def prepare(config: Config, refresh: bool = False) -> PreparedData:
    """Processed data for `config`, from the cache when its inputs are unchanged."""
    key = cache_key(config)
    path = Path(config.build_dir) / "cache" / f"data-{key}.pt"
    if path.exists() and not refresh:
        log.info("processed data from cache %s", path)
        return PreparedData.from_state(torch.load(path, weights_only=True))

    if is_qm9s_folder(config.data_path):
        smiles, index, ir_all, raman_all, report = qm9s_model_inputs(config.data_path,
                                                                     config.n_molecules)
    else:
        sticks = load_sticks(config.data_path)
        report = {"molecules_in_shards": len(sticks),
                  **{f"simulator_{k}": v for k, v in sticks.failure_counts().items()}}
        sticks = sticks.ok()
        if config.n_molecules is not None:
            sticks = sticks.select(np.arange(min(config.n_molecules, len(sticks))))
        smiles, index = list(sticks.smiles), sticks.index
        ir_all = sticks_to_model_input(sticks.freqs_cm1, sticks.ir_km_mol, sticks.offsets,
                                       config.fwhm_cm1)
        raman_all = sticks_to_model_input(sticks.freqs_cm1, sticks.raman_a4_amu, sticks.offsets,
                                          config.fwhm_cm1)
    if is_qm9_source(config):
        graphs, routes = qm9_geometries(np.asarray(index), config)
        report.update({f"conformer_{k}": v for k, v in routes.items()})
    else:
        graphs, failures = featurize_many(smiles, seed=config.conformer_seed,
                                          workers=config.workers)
        report.update({f"conformer_{k}": v for k, v in failures.items()})
    keep = np.flatnonzero([g is not None for g in graphs])
    graphs = [graphs[i] for i in keep]
    smiles, index = [smiles[i] for i in keep], np.asarray(index)[keep]
    ir, raman = ir_all[keep], raman_all[keep]
    identity = [canonical_identity(s) for s in smiles]
    splits = grouped_split(identity, config.seed, config.split_fractions)
    mass = np.array([g.mass_da for g in graphs], dtype=np.float32)
    train_mass = mass[splits["train"]]
    report.update({"molecules_used": len(graphs), **{f"n_{k}": len(v) for k, v in splits.items()}})
    data = PreparedData(
        smiles=smiles, identity=identity, index=torch.from_numpy(index.astype(np.int64)),
        ir=torch.from_numpy(ir), raman=torch.from_numpy(raman), mass_da=torch.from_numpy(mass),
        graphs=pack_graphs(graphs), splits={k: torch.from_numpy(v) for k, v in splits.items()},
        mass_mean=float(train_mass.mean()), mass_std=float(train_mass.std() + MASS_STD_FLOOR_DA),
        report=report, key=key)
    with atomic_path(path) as tmp:
        torch.save(data.to_state(), tmp)
    log.info("processed data written to %s", path)
    return data
