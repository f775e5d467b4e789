"""One candidate library: the structures a spectrum is ranked against, embedded by one model.

A library is built from SMILES (featurised: ETKDG with retries; failures, ions, radicals,
mixtures, isotopes and duplicates left out and counted), from rows of a prepared data set (its
graphs, identities and masses) or from packed `Structures` (QM9 candidates and distractors from
the shared conformer cache); libraries concatenate in order.
`embed` runs the one graph path of `embedding` over each part as it was given (its own batches)
and returns the library with its embeddings. `vibraclip identify`, realignment, the gallery, the
library-size curve and Chapter 6's libraries all rank against this type.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch

from vibraclip_core.data.datasets import PreparedData
from vibraclip_core.data.formulas import hill_formulas
from vibraclip_core.data.mass import MassStats
from vibraclip_core.data.molecules import (MoleculeError, MoleculeGraph, candidate_identity,
                                           canonical_identity, featurize_many, mol_from_smiles,
                                           molecular_formula, stereo_smiles)
from vibraclip_core.data.qm9_candidates import ROUTE_ETKDG, Structures
from vibraclip_core.model.vibraclip import VibraCLIP
from vibraclip_core.retrieval.embedding import (BATCH_SIZE, EmbeddingCache, embed_graph_rows,
                                                embed_structures)

log = logging.getLogger(__name__)

# where a run of candidates gets its geometry: rows of a prepared data set (masses standardized
# with that data's own statistics), or packed structures (masses standardized with the library's
# `mass_stats`)
Part = Union[tuple[PreparedData, torch.Tensor], Structures]


@dataclass(eq=False)
class CandidateLibrary:
    """n candidates in ranking order: SMILES, identity, mass, Hill formula; the parts they are
    embedded from; and, once `embed`ded, (n, latent_dim) float32 graph embeddings."""

    smiles: list[str]
    identity: list[str]  # canonical_identity: what makes a retrieved candidate correct
    mass_da: np.ndarray  # (n,) Da; float32 for dataset rows, as PreparedData holds them
    formula: list[str]  # Hill formula ('C2H6O'): RDKit's of a SMILES, else from the atoms
    parts: list[Part] = field(default_factory=list)  # empty for a library read from a cache
    mass_stats: MassStats | None = None
    graph_emb: torch.Tensor | None = None
    skipped: Counter = field(default_factory=Counter)  # SMILES not featurised: reason -> count
    model_digest: str = ""  # the weights that made graph_emb, where a cache records them

    def __post_init__(self) -> None:
        n = len(self.smiles)
        if not len(self.identity) == len(self.mass_da) == len(self.formula) == n:
            raise ValueError(f"candidate library: {n} SMILES, {len(self.identity)} identities, "
                             f"{len(self.mass_da)} masses and {len(self.formula)} formulas")
        if self.graph_emb is not None and len(self.graph_emb) != n:
            raise ValueError(f"candidate library: {len(self.graph_emb)} embeddings for {n} "
                             "candidates")

    def __len__(self) -> int:
        return len(self.smiles)

    @classmethod
    def from_structures(cls, s: Structures, mass_stats: MassStats | None = None,
                        skipped: Counter | None = None) -> "CandidateLibrary":
        """Packed structures as they are (identities, masses and atoms included)."""
        return cls(list(s.smiles), list(s.identity), np.asarray(s.mass_da, dtype=np.float64),
                   hill_formulas(s.z, s.atom_offsets), [s], mass_stats,
                   skipped=Counter(skipped or {}))

    @classmethod
    def from_smiles(cls, smiles: Sequence[str], conformer_seed: int = 0, workers: int = 1,
                    progress: bool = True, mass_stats: MassStats | None = None
                    ) -> "CandidateLibrary":
        """SMILES featurised with `conformer_seed` (ETKDGv3 with retries), each molecule once
        (the first SMILES of each identity). Left out and counted in `skipped` by reason: SMILES
        that cannot be featurised, those that are no neutral closed-shell molecule of natural
        isotopes ('charged', 'radical', 'mixture', 'isotope': the model would embed them as
        one), repeats of an identity ('duplicate') and other stereoisomers of one
        ('stereoisomer': the identity drops stereochemistry, so E/Z and R/S isomers share it)."""
        usable, skipped = [], Counter()
        first: dict[str, str] = {}  # identity -> its first SMILES
        forms: dict[str, set[str]] = {}  # identity -> its stereo SMILES seen
        for s in smiles:
            try:
                identity = candidate_identity(s)
            except MoleculeError as err:
                skipped[err.reason] += 1
                log.info("skipping candidate: %s", err)
                continue
            form = stereo_smiles(s)
            if identity in first:
                reason = "duplicate" if form in forms[identity] else "stereoisomer"
                forms[identity].add(form)
                skipped[reason] += 1
                log.info("skipping candidate %r: a %s of %r%s", s, reason, first[identity],
                         " (the model drops stereochemistry)" if reason == "stereoisomer" else "")
                continue
            first[identity], forms[identity] = s, {form}
            usable.append(s)
        graphs, failed = featurize_many(usable, seed=conformer_seed, workers=workers,
                                        progress=progress)
        skipped += failed
        kept = [g for g in graphs if g is not None]
        log.info("candidate library: %d of %d SMILES featurised, skipped %s", len(kept),
                 len(smiles), dict(skipped) or "none")
        library = cls.from_structures(pack_structures(kept), mass_stats, skipped)
        library.formula = [molecular_formula(mol_from_smiles(g.smiles)) for g in kept]
        return library

    @classmethod
    def from_rows(cls, data: PreparedData, rows: torch.Tensor | None = None
                  ) -> "CandidateLibrary":
        """Rows of a prepared data set (default all), in that order; embedded with the data's
        own mass statistics."""
        rows = torch.arange(len(data)) if rows is None else torch.as_tensor(rows, dtype=torch.long)
        formulas = hill_formulas(data.graphs["z"].numpy(), data.graphs["node_offsets"].numpy())
        r = rows.tolist()
        return cls([data.smiles[i] for i in r], [data.identity[i] for i in r],
                   data.mass_da[rows].numpy(), [formulas[i] for i in r], [(data, rows)])

    @classmethod
    def concat(cls, libraries: Sequence["CandidateLibrary"]) -> "CandidateLibrary":
        """One library of all candidates in order; embedded when every library is, by the same
        model where their digests agree."""
        stats = {lib.mass_stats for lib in libraries if lib.mass_stats is not None}
        if len(stats) > 1:
            raise ValueError(f"cannot concatenate libraries with different mass statistics "
                             f"{sorted(stats, key=str)}; build them with the same MassStats")
        embs = [lib.graph_emb for lib in libraries]
        digests = {lib.model_digest for lib in libraries}
        return cls([s for lib in libraries for s in lib.smiles],
                   [i for lib in libraries for i in lib.identity],
                   np.concatenate([lib.mass_da for lib in libraries]) if libraries
                   else np.zeros(0), [f for lib in libraries for f in lib.formula],
                   [p for lib in libraries for p in lib.parts], next(iter(stats), None),
                   torch.cat(embs) if libraries and all(e is not None for e in embs) else None,
                   sum((lib.skipped for lib in libraries), Counter()),
                   digests.pop() if len(digests) == 1 else "")

    def embed(self, model: VibraCLIP, build_dir: str | Path | None = None,
              batch_size: int = BATCH_SIZE, cache: EmbeddingCache | None = None,
              progress: bool = False) -> "CandidateLibrary":
        """This library with `graph_emb` (n, latent_dim) from `model`, each part in batches of
        `batch_size`; rows of a data set need `build_dir` (their cached geometry)."""
        if not self.parts and len(self):
            raise ValueError("this candidate library holds no structures (it was read from a "
                             "cache); rebuild it from its candidates to embed it with a model")
        out = []
        for part in self.parts:
            if isinstance(part, Structures):
                out.append(embed_structures(model, part, self.mass_stats, batch_size, cache,
                                            progress))
                continue
            if build_dir is None:
                raise ValueError("CandidateLibrary.embed: rows of a prepared data set need "
                                 "build_dir (where their geometry cache lives)")
            out.append(embed_graph_rows(model, part[0], part[1], str(build_dir), batch_size,
                                        cache))
        emb = torch.cat(out) if out else torch.zeros(0, model.config.latent_dim)
        return dataclasses.replace(self, graph_emb=emb, model_digest="")


def pack_structures(graphs: Sequence[MoleculeGraph]) -> Structures:
    """Featurised molecules as packed Structures (no QM9 index: -1; geometry route ETKDG)."""
    zs = [np.asarray(g.z, dtype=np.int64) for g in graphs]
    return Structures(
        np.full(len(graphs), -1, dtype=np.int64), [g.smiles for g in graphs],
        [canonical_identity(g.smiles) for g in graphs],
        np.array([g.mass_da for g in graphs], dtype=np.float64), [ROUTE_ETKDG] * len(graphs),
        np.concatenate([[0], np.cumsum([len(z) for z in zs])]).astype(np.int64),
        np.concatenate(zs) if zs else np.zeros(0, np.int64),
        np.concatenate([g.pos_ang for g in graphs]).astype(np.float32) if graphs
        else np.zeros((0, 3), np.float32))


def unique_rows(data: PreparedData, exclude: set[str] | frozenset = frozenset()) -> torch.Tensor:
    """Rows of the first occurrence of each identity not in `exclude` (a candidate library has
    each molecule once)."""
    seen, rows = set(exclude), []
    for i, ident in enumerate(data.identity):
        if ident not in seen:
            seen.add(ident)
            rows.append(i)
    return torch.tensor(rows, dtype=torch.long)
