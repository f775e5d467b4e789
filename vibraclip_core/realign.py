"""Realignment: adapt a pretrained VibraCLIP to a new domain by training only its last layers.

The paper's protocol: load the pretrained weights, freeze everything except the last Linear of
each projection head, train 15 epochs at a small learning rate (1e-5 in the reference code).
Here it is a training run like any other (`train`), with `init_checkpoint` and `trainable` set in
its config, so it is cached, resumable and reported the same way. Measured spectra (IR only) are
turned into the same `PreparedData` as simulated ones, with the Raman term masked out.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from . import retrieval as R
from .augment import XH_THRESHOLD_CM1
from .config import Config
from .datasets import PreparedData, pack_graphs
from .embedding import embed_rows
from .experimental import MeasuredIR
from .mass import mass_stats_for
from .model import SPECTRUM_POINTS, VibraCLIP
from .molecules import featurize_many
from .spectra import spectrum_to_model_input
from .train import TrainResult, train

PAPER_EPOCHS = 15
PAPER_LR = 1e-5


def realign_config(pretrained: Config, checkpoint: str | Path, epochs: int = PAPER_EPOCHS,
                   lr: float = PAPER_LR, trainable: str = "last_layer") -> Config:
    """The pretrained config set up to continue from `checkpoint` with only `trainable` free
    (no stick augmentation: a new domain's spectra need not come with sticks)."""
    return pretrained.replace(init_checkpoint=str(checkpoint), trainable=trainable,
                              max_epochs=epochs, patience=epochs, lr_graph=lr, lr_spectra=lr,
                              lr_heads=lr, missing_ir=0.0, missing_raman=0.0, augment=(),
                              plateau_patience=max(1, epochs // 3))


def with_mass_stats(data: PreparedData, checkpoint: str | Path) -> PreparedData:
    """`data` standardizing masses with the pretrained run's training statistics, which is
    what the mass-anchored model's inputs mean (a new domain's own statistics would not)."""
    stats = mass_stats_for(checkpoint)
    return dataclasses.replace(data, mass_mean=stats.mean_da, mass_std=stats.std_da)


def realign(pretrained: Config, checkpoint: str | Path, data: PreparedData, tag: str,
            epochs: int = PAPER_EPOCHS, lr: float = PAPER_LR, trainable: str = "last_layer",
            trainer_kwargs: dict[str, Any] | None = None,
            has_raman: torch.Tensor | None = None) -> TrainResult:
    """Train `data`'s train split from `checkpoint` with only `trainable` parameters free."""
    cfg = realign_config(pretrained, checkpoint, epochs, lr, trainable)
    data = with_mass_stats(data, checkpoint) if cfg.mass else data
    has_ir = None if has_raman is None else torch.ones(len(data), dtype=torch.bool)
    return train(cfg, data, tag=tag, trainer_kwargs=trainer_kwargs, has_ir=has_ir,
                 has_raman=has_raman)


def measured_data(records: Sequence[MeasuredIR], seed: int = 0, workers: int = 1,
                  key: str = "measured") -> tuple[PreparedData, list[str]]:
    """(PreparedData of the measured IR spectra, names of records dropped by featurisation).

    Raman is all zeros (mask it with `has_raman=False` when training); splits are empty
    placeholders: set them per fold with `with_splits`.
    """
    graphs, _ = featurize_many([r.smiles for r in records], seed=seed, workers=workers,
                               progress=False)
    keep = [i for i, g in enumerate(graphs) if g is not None]
    dropped = [records[i].file for i in range(len(records)) if graphs[i] is None]
    ir = np.stack([spectrum_to_model_input(records[i].spectrum) for i in keep]).astype(np.float32)
    mass = np.array([graphs[i].mass_da for i in keep], dtype=np.float32)
    empty = torch.zeros(0, dtype=torch.long)
    data = PreparedData(
        smiles=[records[i].smiles for i in keep], identity=[records[i].identity for i in keep],
        index=torch.arange(len(keep)), ir=torch.from_numpy(ir),
        raman=torch.zeros(len(keep), SPECTRUM_POINTS), mass_da=torch.from_numpy(mass),
        graphs=pack_graphs([graphs[i] for i in keep]),
        splits={"train": empty, "val": empty, "test": empty},
        mass_mean=float(mass.mean()), mass_std=float(mass.std() + 1e-6),
        report={"records": len(records), "featurised": len(keep)}, key=key)
    return data, dropped


def kfold_splits(identities: Sequence[str], k: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """k grouped folds: spectra of one molecule stay together. Fold f tests on group f,
    validates on group f+1 (for checkpoint choice) and trains on the rest."""
    unique = sorted(set(identities))
    if k < 3 or k > len(unique):
        raise ValueError(f"k={k} folds need 3 <= k <= {len(unique)} distinct molecules")
    order = np.random.default_rng(seed).permutation(len(unique))
    group = {unique[j]: pos % k for pos, j in enumerate(order)}
    fold_of = np.array([group[i] for i in identities])
    out = []
    for f in range(k):
        val = (f + 1) % k
        out.append({"test": torch.from_numpy(np.flatnonzero(fold_of == f)),
                    "val": torch.from_numpy(np.flatnonzero(fold_of == val)),
                    "train": torch.from_numpy(np.flatnonzero((fold_of != f) & (fold_of != val)))})
    return out


def with_splits(data: PreparedData, splits: dict[str, torch.Tensor], key: str) -> PreparedData:
    """`data` with other splits (and a key naming them, so each fold gets its own run)."""
    return dataclasses.replace(data, splits=splits, key=f"{data.key}-{key}")


Library = tuple[torch.Tensor, list[str], torch.Tensor]  # graph embeddings, identities, masses


def embed_library(model: VibraCLIP, parts: Sequence[tuple[PreparedData, torch.Tensor]],
                  build_dir: str) -> Library:
    """Graph embeddings, identities and masses (Da) of the union of several data sets' rows.
    Masses are standardized with each PreparedData's own statistics: give all of them the
    pretrained ones (see `with_mass_stats`). Duplicates across parts are kept."""
    emb = [embed_rows(model, part, rows, build_dir)["graph"] for part, rows in parts]
    ids = [part.identity[int(i)] for part, rows in parts for i in rows]
    return torch.cat(emb), ids, torch.cat([part.mass_da[rows] for part, rows in parts])


def library_smiles(parts: Sequence[tuple[PreparedData, torch.Tensor]]) -> list[str]:
    """SMILES of an `embed_library` library's candidates, in its order (for drawings)."""
    return [part.smiles[int(i)] for part, rows in parts for i in rows]


def library_ranks(model: VibraCLIP, queries: PreparedData, query_rows: torch.Tensor,
                  library: Library, build_dir: str, mass_tol_da: float | None = None
                  ) -> torch.Tensor:
    """(q,) IR-query ranks of the truth against an `embed_library` library of the same model;
    duplicates of the truth count once (see `rank_of_truth_scored`)."""
    q = embed_rows(model, queries, query_rows, build_dir)["ir"]
    emb, lib_ids, lib_mass = library
    ids = [queries.identity[int(i)] for i in query_rows]
    mask = None
    if mass_tol_da is not None:
        mask = R.mass_filter(queries.mass_da[query_rows], lib_mass, mass_tol_da)
    return R.rank_of_truth(q, emb, ids, lib_ids, mask=mask)


def unique_rows(data: PreparedData, exclude: set[str] | frozenset = frozenset()) -> torch.Tensor:
    """Rows of the first occurrence of each identity not in `exclude` (a candidate library has
    each molecule once)."""
    seen, rows = set(exclude), []
    for i, ident in enumerate(data.identity):
        if ident not in seen:
            seen.add(ident)
            rows.append(i)
    return torch.tensor(rows, dtype=torch.long)


def spectral_search_ranks(queries: torch.Tensor, query_ids: Sequence[str],
                          query_mass_da: torch.Tensor,
                          library: Sequence[tuple[torch.Tensor, Sequence[str], torch.Tensor,
                                                  torch.Tensor]],
                          mass_tol_da: float | None = None) -> torch.Tensor:
    """(q,) ranks of classic library search: cosine between the query's model-input spectrum
    (n, 1750) and the candidates' simulated spectra on the same grid. Library parts are
    (spectra, identities, masses, has_spectrum): candidates without a simulated spectrum are
    left out, so a query whose molecule has none is a miss at every k (rank = library size)."""
    lib = torch.cat([p[0] for p in library])
    lib_ids = [i for p in library for i in p[1]]
    available = torch.cat([p[3] for p in library])
    lib_mass = torch.cat([p[2] for p in library])

    def mask(a: int, b: int) -> torch.Tensor:
        m = available.expand(b - a, -1)
        if mass_tol_da is not None:
            m = m & R.mass_filter_mask(query_mass_da[a:b], lib_mass, mass_tol_da)
        return m

    return R.rank_of_truth(queries, lib, list(query_ids), lib_ids, mask=mask)


def scaled_wavenumbers(wavenumbers_cm1: np.ndarray, factor: float | tuple[float, float]
                       ) -> np.ndarray:
    """Wavenumbers times `factor`, or times factor[0] below XH_THRESHOLD_CM1 and factor[1]
    above it."""
    below, above = (factor, factor) if np.isscalar(factor) else factor
    x = np.asarray(wavenumbers_cm1, dtype=np.float64)
    return np.where(x > XH_THRESHOLD_CM1, x * above, x * below)


def scaled_inputs(records: Sequence[MeasuredIR], factor: float | tuple[float, float]
                  ) -> torch.Tensor:
    """(n, 1750) model inputs of measured spectra with wavenumbers scaled (`scaled_wavenumbers`)."""
    out = []
    for r in records:
        s = dataclasses.replace(r.spectrum, notes=[],
                                wavenumbers_cm1=scaled_wavenumbers(r.spectrum.wavenumbers_cm1,
                                                                   factor))
        out.append(spectrum_to_model_input(s))  # it sorts the (possibly reordered) axis itself
    return torch.from_numpy(np.stack(out).astype(np.float32))


DEFAULT_FACTORS = np.round(np.arange(0.94, 1.0601, 0.0025), 4)


def fit_frequency_scale(records: Sequence[MeasuredIR], simulated: dict[str, np.ndarray],
                        factors: np.ndarray = DEFAULT_FACTORS) -> tuple[float, np.ndarray]:
    """(best factor, mean cosine per factor): the wavenumber scale that makes measured spectra
    look most like the simulated spectra (model inputs, by identity) of the same molecules."""
    paired = [r for r in records if r.identity in simulated]
    if not paired:
        raise ValueError("no measured record has a simulated spectrum to fit against")
    target = torch.nn.functional.normalize(
        torch.from_numpy(np.stack([simulated[r.identity] for r in paired])), dim=1)
    scores = np.array([float((torch.nn.functional.normalize(scaled_inputs(paired, f), dim=1)
                              * target).sum(1).mean()) for f in factors])
    return float(factors[int(scores.argmax())]), scores


def simulated_inputs(data_dir: str | Path, fwhm_cm1: float = 15.0) -> dict[str, np.ndarray]:
    """identity -> (1750,) IR model input from a folder of simulated stick shards (status ok)."""
    from .datasets import load_sticks
    from .molecules import canonical_identity
    from .spectra import sticks_to_model_input

    sticks = load_sticks(Path(data_dir)).ok()
    ir = sticks_to_model_input(sticks.freqs_cm1, sticks.ir_km_mol, sticks.offsets, fwhm_cm1)
    return {canonical_identity(s): ir[i] for i, s in enumerate(sticks.smiles)}


def search_parts(parts: Sequence[tuple[PreparedData, torch.Tensor]], measured: PreparedData,
                 simulated: dict[str, np.ndarray]
                 ) -> list[tuple[torch.Tensor, list[str], torch.Tensor, torch.Tensor]]:
    """Library parts for `spectral_search_ranks`: simulated data sets give their own IR inputs;
    rows of `measured` give their molecule's simulated spectrum from `simulated`, and are
    marked unavailable where that simulation failed."""
    out = []
    for part, rows in parts:
        ids = [part.identity[int(i)] for i in rows]
        if part is measured:
            zero = np.zeros(part.ir.shape[1], dtype=np.float32)
            spectra = torch.from_numpy(np.stack([simulated.get(i, zero) for i in ids]))
            available = torch.tensor([i in simulated for i in ids], dtype=torch.bool)
        else:
            spectra, available = part.ir[rows], torch.ones(len(rows), dtype=torch.bool)
        out.append((spectra, ids, part.mass_da[rows], available))
    return out


def paired_identification(model: VibraCLIP, paired: PreparedData,
                          library: Sequence[tuple[PreparedData, torch.Tensor]], build_dir: str
                          ) -> "pd.DataFrame":
    """Top-k table of IR-only and IR + Raman (library score) queries of paired measured spectra
    against `library` (candidates' structures only)."""
    from .evaluate import evaluate_ranks

    rows = torch.arange(len(paired))
    q = embed_rows(model, paired, rows, build_dir)
    g = torch.cat([embed_rows(model, part, r, build_dir)["graph"] for part, r in library])
    lib_ids = [part.identity[int(i)] for part, r in library for i in r]
    ranks = {"ir": R.rank_of_truth(q["ir"], g, paired.identity, lib_ids),
             "ir+raman library": R.rank_of_truth_scored(
                 R.library_scorer(g, q["ir"], q["raman"]), paired.identity, lib_ids)}
    return evaluate_ranks(ranks).table
