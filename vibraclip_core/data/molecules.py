"""SMILES -> RDKit conformer -> the graph the encoder reads (z, positions), mass; pure-torch DimeNet++
geometry helpers."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from rdkit import Chem, rdBase
from rdkit.Chem import AllChem, Descriptors, rdDistGeom, rdFingerprintGenerator, rdMolDescriptors

from vibraclip_core.data.formulas import ELEMENTS
from vibraclip_core.data.jobs import Progress, spawn_pool, stop_pool

logger = logging.getLogger(__name__)


class MoleculeError(ValueError):
    """A molecule that cannot be featurised; `reason` is a short machine string for counting."""

    def __init__(self, smiles: str, reason: str, detail: str = "") -> None:
        self.smiles = smiles
        self.reason = reason
        message = f"SMILES {smiles!r}: {reason}"
        super().__init__(f"{message} ({detail})" if detail else message)


def _parse(smiles: str) -> Chem.Mol:
    """Parse and sanitise without adding H; checks emptiness and the element set."""
    with rdBase.BlockLogs():  # failures are reported through MoleculeError, not RDKit's stderr
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise MoleculeError(smiles, "unparseable_smiles", "RDKit could not parse/sanitise it")
    if mol.GetNumAtoms() == 0:
        raise MoleculeError(smiles, "empty", "the SMILES contains no atoms")
    bad = sorted({a.GetSymbol() for a in mol.GetAtoms()} - set(ELEMENTS))
    if bad:
        raise MoleculeError(
            smiles, "unknown_element", f"elements {bad} are outside the allowed {list(ELEMENTS)}"
        )
    return mol


def mol_from_smiles(smiles: str) -> Chem.Mol:
    """RDKit molecule with explicit hydrogens; raises MoleculeError (bad SMILES / elements)."""
    return Chem.AddHs(_parse(smiles))


def canonical_identity(smiles: str) -> str:
    """Canonical heavy-atom SMILES with stereochemistry removed.

    This string is THE molecular identity of the package: splits group molecules by it (so
    stereoisomers never straddle train/test) and a retrieval hit counts as correct when the
    retrieved molecule has the same identity as the query.
    """
    mol = _parse(smiles)
    Chem.RemoveStereochemistry(mol)
    return Chem.MolToSmiles(mol)


def candidate_identity(smiles: str) -> str:
    """canonical_identity of a SMILES that names one neutral closed-shell molecule of the element
    set without isotope labels; else MoleculeError with reason 'mixture', 'charged', 'radical' or
    'isotope' (or _parse's reasons), since the encoder would embed it as a neutral molecule."""
    mol = _parse(smiles)
    if len(Chem.GetMolFrags(mol)) > 1:
        raise MoleculeError(smiles, "mixture", "several molecules or a salt ('.'); list each "
                            "neutral molecule on a line of its own")
    charge = Chem.GetFormalCharge(mol)  # net: nitro groups and zwitterions are neutral molecules
    if charge:
        raise MoleculeError(smiles, "charged", f"net charge {charge:+d}; give the neutral molecule")
    if any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        raise MoleculeError(smiles, "radical", "unpaired electrons (a radical or carbene); "
                            "check the hydrogens written in brackets")
    if any(a.GetIsotope() for a in mol.GetAtoms()):
        raise MoleculeError(smiles, "isotope", "isotope labels change the spectrum; the model "
                            "knows natural-abundance molecules only")
    Chem.RemoveStereochemistry(mol)
    return Chem.MolToSmiles(mol)


def stereo_smiles(smiles: str) -> str:
    """Canonical heavy-atom SMILES keeping stereochemistry: tells E/Z and R/S isomers apart
    where canonical_identity merges them."""
    return Chem.MolToSmiles(_parse(smiles))


def is_smiles(text: str) -> bool:
    """Whether RDKit parses `text` as a SMILES (any elements, no checks); logs nothing."""
    with rdBase.BlockLogs():
        return bool(text) and Chem.MolFromSmiles(text) is not None


# the baselines' structure fingerprints (Chapter 3)
FINGERPRINT_BITS, FINGERPRINT_RADIUS = 2048, 2


def morgan_fingerprints(smiles: Sequence[str], n_bits: int = FINGERPRINT_BITS,
                       radius: int = FINGERPRINT_RADIUS) -> np.ndarray:
    """(n, n_bits) float32 0/1 Morgan (ECFP-like) bit vectors of heavy-atom graphs."""
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    return np.stack([gen.GetFingerprintAsNumPy(_parse(s)) for s in smiles]).astype(np.float32)


def _smiles_of(mol: Chem.Mol) -> str:
    return Chem.MolToSmiles(Chem.RemoveHs(mol))


def embed_conformer(
    mol: Chem.Mol, seed: int = 0, optimize: bool = False, retry_attempts_per_atom: int = 50,
    retry: bool = True, mmff_max_iters: int = 200,
) -> np.ndarray:
    """(n_atoms, 3) float64 Å coordinates from ETKDGv3 (deterministic in `seed`); `mol` is unchanged.

    The paper uses the plain ETKDG geometry, so MMFF relaxation is off unless `optimize=True`
    (then at most `mmff_max_iters` steps, RDKit's default 200, as the simulator's starting
    geometries of `sources.source_from_smiles` were made).
    If ETKDG fails, retries from random coordinates with `retry_attempts_per_atom` * n_atoms
    attempts (~1 ms each), then once more without chirality enforcement (strained QM9 cages fail
    RDKit's tetrahedral-centre check on almost every attempt), then raises
    MoleculeError(reason="embedding_failed"). `retry=False` fails fast after RDKit's default
    attempts (for callers with a fallback geometry, such as QM9's own).
    """
    work = Chem.Mol(mol)
    work.RemoveAllConformers()
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = int(seed)
    conf_id = _try_embed(work, params)
    if conf_id < 0 and retry:
        # random starting coordinates rescue some strained rings; the budget is capped because
        # the remaining cages pass the tetrahedral check only about once per 10^4 attempts
        params.useRandomCoords = True
        params.maxIterations = max(1, retry_attempts_per_atom * work.GetNumAtoms())
        conf_id = _try_embed(work, params)
    if conf_id < 0 and retry:
        # last resort for strained cages: skip the chirality/tetrahedral-centre enforcement,
        # which rejects nearly every attempt for them; the geometry is still a valid embedding
        params.enforceChirality = False
        conf_id = _try_embed(work, params)
    if conf_id < 0:
        raise MoleculeError(
            _smiles_of(mol), "embedding_failed", "ETKDGv3 failed, also from random coordinates"
        )
    if optimize:
        if AllChem.MMFFHasAllMoleculeParams(work):
            AllChem.MMFFOptimizeMolecule(work, confId=conf_id, maxIters=mmff_max_iters)
        else:
            logger.warning("%s: no MMFF parameters, keeping the ETKDG geometry", _smiles_of(mol))
    return np.asarray(work.GetConformer(conf_id).GetPositions(), dtype=np.float64)


def _try_embed(mol: Chem.Mol, params: rdDistGeom.EmbedParameters) -> int:
    try:
        with rdBase.BlockLogs():
            return rdDistGeom.EmbedMolecule(mol, params)
    except RuntimeError:  # RDKit raises for some pathological inputs instead of returning -1
        return -1


def molecular_mass_da(mol: Chem.Mol) -> float:
    """Average molecular weight in Da (RDKit Descriptors.MolWt)."""
    return float(Descriptors.MolWt(mol))


def molecular_formula(mol: Chem.Mol) -> str:
    """Hill formula, e.g. 'C2H6O'."""
    return rdMolDescriptors.CalcMolFormula(mol)


@dataclass
class MoleculeGraph:
    """One molecule as the graph encoder reads it (n atoms incl. H): DimeNet++ needs only the
    atomic numbers and positions."""

    z: np.ndarray  # (n,) int64 atomic numbers
    pos_ang: np.ndarray  # (n, 3) float32 Å
    mass_da: float
    smiles: str


def smiles_to_graph(smiles: str, seed: int = 0) -> MoleculeGraph:
    """Featurise one SMILES (explicit H, ETKDGv3 conformer with `seed`); raises MoleculeError."""
    mol = mol_from_smiles(smiles)
    try:
        pos = embed_conformer(mol, seed=seed)
    except MoleculeError as err:  # re-raise naming the SMILES exactly as the caller gave it
        raise MoleculeError(
            smiles, err.reason, "ETKDGv3 failed, also from random coordinates"
        ) from err
    return MoleculeGraph(
        z=np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64),
        pos_ang=pos.astype(np.float32), mass_da=molecular_mass_da(mol), smiles=smiles,
    )


def _featurize_one(args: tuple[str, int]) -> tuple[MoleculeGraph | None, str | None, str]:
    smiles, seed = args
    try:
        return smiles_to_graph(smiles, seed=seed), None, ""
    except MoleculeError as err:
        return None, err.reason, str(err)


def featurize_many(
    smiles: Sequence[str], seed: int = 0, workers: int = 1, progress: bool = True
) -> tuple[list[MoleculeGraph | None], Counter]:
    """One MoleculeGraph per SMILES (None on failure, in input order) and failure counts by reason.

    Every molecule uses the same `seed`, so a conformer depends only on (SMILES, seed) and the
    result is identical for any `workers`. workers > 1 uses a process pool with chunked map.
    """
    jobs = [(s, seed) for s in smiles]
    results = []
    with Progress(len(jobs), "featurize", progress=progress, logger=logger) as bar:
        if workers > 1 and len(jobs) > 1:
            # spawn, not fork: forking a process whose OpenMP runtime (torch, tblite) is already
            # running can deadlock the child
            chunksize = max(1, min(16, len(jobs) // (4 * workers)))
            pool = spawn_pool(workers)
            try:
                for result in pool.map(_featurize_one, jobs, chunksize=chunksize):
                    results.append(result)
                    bar.update(1)
            except BaseException:  # Ctrl-C: stop now, not after the queue
                stop_pool(pool)
                raise
            pool.shutdown()
        else:
            for job in jobs:
                results.append(_featurize_one(job))
                bar.update(1)
    graphs: list[MoleculeGraph | None] = []
    failures: Counter = Counter()
    for graph, reason, message in results:
        graphs.append(graph)
        if reason is not None:
            failures[reason] += 1
            logger.info("skipping molecule: %s", message)
    if failures:
        logger.info("featurized %d/%d molecules; failures %s", len(jobs) - sum(failures.values()),
                    len(jobs), dict(failures))
    return graphs, failures


def radius_edges(
    pos: torch.Tensor, cutoff: float, batch: torch.Tensor | None = None
) -> torch.Tensor:
    """(2, E) long: ordered pairs j->i, i != j, |pos_i - pos_j| < cutoff (Å), same molecule.

    Row 0 = source j, row 1 = target i (PyG radius_graph, flow source_to_target), sorted by
    target then source. Unlike radius_graph there is no max_num_neighbors cap. Cost is
    O(sum of squared molecule sizes), fine for molecules, not for large point clouds.
    """
    n = pos.size(0)
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=pos.device)
    perm = torch.argsort(batch, stable=True)  # group nodes by molecule
    b = batch[perm]
    counts = torch.bincount(b)
    starts = torch.cumsum(counts, 0) - counts
    n_cand = counts[b]  # candidates per (sorted) target node: its own molecule
    tgt = torch.repeat_interleave(torch.arange(n, device=pos.device), n_cand)
    block_start = torch.repeat_interleave(torch.cumsum(n_cand, 0) - n_cand, n_cand)
    src = starts[b[tgt]] + torch.arange(tgt.numel(), device=pos.device) - block_start
    tgt, src = perm[tgt], perm[src]
    dist = (pos[tgt] - pos[src]).norm(dim=-1)
    keep = (tgt != src) & (dist < cutoff)
    tgt, src = tgt[keep], src[keep]
    order = torch.argsort(tgt * n + src)
    return torch.stack([src[order], tgt[order]])


def triplets(edge_index: torch.Tensor, num_nodes: int) -> tuple[torch.Tensor, ...]:
    """(i, j, idx_i, idx_j, idx_k, idx_kj, idx_ji) as PyG 2.8.1 DimeNet.triplets, in pure torch.

    edge_index (2, E) long with row 0 = source j, row 1 = target i. Returns i = edge targets,
    j = edge sources (E,), and for every path k->j->i with k != i (T,): node ids idx_i/idx_j/idx_k,
    the edge id idx_kj of k->j and idx_ji of j->i. Ordering: grouped by idx_ji ascending, and
    within a group by the source k ascending (ties between duplicate edges by edge id) — the same
    order as PyG's SparseTensor version for graphs without duplicate edges.
    """
    row, col = edge_index  # j -> i
    n_edges = row.numel()
    device = row.device
    # incoming edges of every node, sorted by (target, source, edge id)
    key = col * num_nodes + row
    in_order = torch.argsort(key, stable=True)
    in_deg = torch.bincount(col, minlength=num_nodes)
    in_start = torch.cumsum(in_deg, 0) - in_deg
    # for edge j->i, every incoming edge k->j of j is a candidate
    n_cand = in_deg[row]
    idx_ji = torch.repeat_interleave(torch.arange(n_edges, device=device), n_cand)
    block_start = torch.repeat_interleave(torch.cumsum(n_cand, 0) - n_cand, n_cand)
    offset = torch.arange(idx_ji.numel(), device=device) - block_start
    idx_kj = in_order[in_start[row[idx_ji]] + offset]
    idx_i, idx_j, idx_k = col[idx_ji], row[idx_ji], row[idx_kj]
    mask = idx_i != idx_k
    return (col, row, idx_i[mask], idx_j[mask], idx_k[mask], idx_kj[mask], idx_ji[mask])
