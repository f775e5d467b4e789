"""Baselines beside the model: a fixed random projection (nothing learned) and a fitted linear CCA.

Both have the model's interface: `embed_structures(smiles)` gives the library side (any SMILES,
so distractor structures without spectra work too), `embed_ir` / `embed_raman` the query side,
all (n, dim) float32 in one space per baseline. They are scored exactly like the model, through
`scores.mode_scorers`: cosine for one spectrum, `scores.library_scorer` for IR + Raman.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Protocol

import numpy as np
import torch
from torch import Tensor

from vibraclip_core.data.molecules import FINGERPRINT_BITS, morgan_fingerprints

ArrayLike = Tensor | np.ndarray
VIEWS = ("structure", "ir", "raman")
# SMILES fingerprinted per block: a 130 k-structure library never holds all its (n, 2048) bits
SMILES_CHUNK = 4096
CCA_AXES = 128  # canonical axes of the CCA baseline


class Baseline(Protocol):
    """What the evaluation needs of a baseline (the model's three embeddings, without graphs)."""

    def embed_structures(self, smiles: Sequence[str]) -> Tensor: ...
    def embed_ir(self, ir: ArrayLike) -> Tensor: ...
    def embed_raman(self, raman: ArrayLike) -> Tensor: ...


def _as_2d(name: str, x: ArrayLike, width: int | None = None) -> Tensor:
    """(n, width) float32 tensor of finite values, or a ValueError naming `name`."""
    t = torch.as_tensor(x).float()
    if t.ndim != 2 or (width is not None and t.shape[1] != width):
        want = f"(n, {width})" if width is not None else "(n, features)"
        raise ValueError(f"{name}: shape {tuple(t.shape)}, expected {want}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains NaN or inf; clean or drop those rows first")
    return t


def _embed_smiles(smiles: Sequence[str], n_bits: int, dim: int,
                  embed_fp: Callable[[Tensor], Tensor]) -> Tensor:
    """(n, dim) float32: Morgan fingerprints (radius 2, n_bits) in blocks, each mapped by embed_fp."""
    if isinstance(smiles, str):
        raise TypeError(f"smiles must be a sequence of SMILES, got the string {smiles!r}")
    parts = [embed_fp(torch.from_numpy(morgan_fingerprints(smiles[a:a + SMILES_CHUNK], n_bits)))
             for a in range(0, len(smiles), SMILES_CHUNK)]
    return torch.cat(parts) if parts else torch.zeros(0, dim)


# ---------------------------------------------------------------- random projection (SI S-2)

def view_seed(seed: int, view: str) -> int:
    """The projection seed of one view ("structure", "ir", "raman"), derived from `seed`."""
    if view not in VIEWS:
        raise ValueError(f"view {view!r}: use one of {VIEWS}")
    return int(np.random.SeedSequence([seed, VIEWS.index(view)]).generate_state(1)[0])


@lru_cache(maxsize=8)
def projection_matrix(in_dim: int, dim: int, seed: int) -> np.ndarray:
    """(in_dim, dim) float64, read-only: standard normal entries, each column scaled to unit L2
    norm (as in the released notebooks/baseline.ipynb)."""
    if in_dim < 1 or dim < 1:
        raise ValueError(f"projection_matrix: in_dim={in_dim} and dim={dim} must both be >= 1")
    w = np.random.default_rng(seed).standard_normal((in_dim, dim))
    w /= np.linalg.norm(w, axis=0, keepdims=True)
    w.flags.writeable = False
    return w


def random_projection(x: ArrayLike, dim: int, seed: int) -> Tensor:
    """(n, dim) float32 = x (n, m) @ `projection_matrix(m, dim, seed)`: fixed, nothing fitted."""
    t = _as_2d("random_projection input", x)
    return t @ torch.tensor(projection_matrix(t.shape[1], dim, seed), dtype=torch.float32)


@dataclass(frozen=True)
class RandomProjectionBaseline:
    """The paper's non-learned baseline (SI S-2): Morgan fingerprints and spectra each projected
    into `dim` by its own fixed seeded Gaussian matrix (`view_seed(seed, view)`); chance level.

    Differences from the released notebook: it projects every view with the same seed (42), so
    its spectrum matrix repeats the first 1750 rows of the fingerprint matrix; here the views get
    distinct seeds. It also fingerprints the H-saturated molecule; here the package's heavy-atom
    `morgan_fingerprints` is used. Its width is 861, the paper's latent dimension.
    """

    dim: int = 861
    seed: int = 0
    n_bits: int = FINGERPRINT_BITS

    def embed_fingerprints(self, fp: ArrayLike) -> Tensor:
        """(n, dim) float32 of (n, n_bits) fingerprints."""
        return random_projection(_as_2d("fingerprints", fp, self.n_bits), self.dim,
                                 view_seed(self.seed, "structure"))

    def embed_structures(self, smiles: Sequence[str]) -> Tensor:
        """(n, dim) float32 library embeddings of any SMILES (Morgan radius 2, n_bits)."""
        return _embed_smiles(smiles, self.n_bits, self.dim, self.embed_fingerprints)

    def embed_ir(self, ir: ArrayLike) -> Tensor:
        """(n, dim) float32 query embeddings of (n, n_points) IR spectra."""
        return random_projection(_as_2d("ir", ir), self.dim, view_seed(self.seed, "ir"))

    def embed_raman(self, raman: ArrayLike) -> Tensor:
        """(n, dim) float32 query embeddings of (n, n_points) Raman spectra."""
        return random_projection(_as_2d("raman", raman), self.dim, view_seed(self.seed, "raman"))


# ---------------------------------------------------------------- CCA (learned, linear)

def _inv_sqrt(cov: np.ndarray, ridge: float) -> np.ndarray:
    """(d, d) (cov + ridge * mean variance * I)^(-1/2)."""
    cov = cov + ridge * np.trace(cov) / len(cov) * np.eye(len(cov))
    w, v = np.linalg.eigh(cov)
    return (v / np.sqrt(np.maximum(w, 1e-12))) @ v.T


@dataclass(frozen=True)
class CCABaseline:
    """CCA, a learned linear baseline (fitted on the training split): one structure space shared
    by the IR and Raman queries, like the model's graph embedding.

    Centre and whiten each view (covariance + ridge * mean variance * I); with K_v the whitened
    fingerprint-spectrum cross-covariance of view v, the structure axes U are the top `dim`
    eigenvectors of sum_v K_v K_v^T (eigenvalues lam). Structure: x -> U^T x~ * lam^(1/4);
    view v: y -> U^T K_v y~ * lam^(-1/4). With one view this is plain CCA with each axis scaled
    by sqrt(canonical correlation) on both sides.
    """

    n_bits: int
    fp_mean: Tensor  # (n_bits,)
    fp_map: Tensor  # (n_bits, dim)
    spectrum_means: dict[str, Tensor]  # view -> (n_points,)
    spectrum_maps: dict[str, Tensor]  # view -> (n_points, dim)
    strength: Tensor  # (dim,) sqrt(lam): the canonical correlations when fitted on one view

    @property
    def dim(self) -> int:
        return self.fp_map.shape[1]

    @classmethod
    def fit(cls, train_smiles: Sequence[str], train_ir: ArrayLike, train_raman: ArrayLike,
            dim: int = CCA_AXES, n_bits: int = FINGERPRINT_BITS, ridge: float = 1e-2
            ) -> "CCABaseline":
        """Fit on training molecules: SMILES (n,), IR and Raman spectra (n, n_points)."""
        fp = morgan_fingerprints(train_smiles, n_bits) if len(train_smiles) else np.zeros((0, 0))
        return cls.fit_features(fp, {"ir": train_ir, "raman": train_raman}, dim, ridge)

    @classmethod
    def fit_features(cls, fp: ArrayLike, spectra: dict[str, ArrayLike], dim: int,
                     ridge: float = 1e-2) -> "CCABaseline":
        """Fit on (n, n_bits) fingerprints and {"ir" and/or "raman": (n, n_points)} spectra."""
        if not spectra or set(spectra) - {"ir", "raman"}:
            raise ValueError(f"spectra has keys {sorted(spectra)}; give 'ir' and/or 'raman'")
        x = np.asarray(_as_2d("fingerprints", fp), dtype=np.float64)
        ys = {v: np.asarray(_as_2d(v, y), dtype=np.float64) for v, y in spectra.items()}
        if len(x) < 2 or any(len(y) != len(x) for y in ys.values()):
            raise ValueError(f"CCABaseline: {len(x)} fingerprint rows and spectra rows "
                             f"{ {v: len(y) for v, y in ys.items()} }; give >= 2 paired rows")
        max_dim = min(x.shape[1], *(y.shape[1] for y in ys.values()))
        if not 0 < dim <= max_dim:
            raise ValueError(f"dim={dim} must lie in 1..{max_dim} (the narrowest view's width)")
        mx = x.mean(0)
        xc = x - mx
        wx = _inv_sqrt(xc.T @ xc / len(x), ridge)
        means, ks, wys = {}, {}, {}
        for v, y in ys.items():
            means[v] = y.mean(0)
            yc = y - means[v]
            wys[v] = _inv_sqrt(yc.T @ yc / len(y), ridge)
            ks[v] = wx @ (xc.T @ yc / len(x)) @ wys[v]
        lam, u = np.linalg.eigh(sum(k @ k.T for k in ks.values()))
        lam, u = np.maximum(lam[::-1][:dim], 1e-12), u[:, ::-1][:, :dim]
        scale = lam ** 0.25

        def f32(a: np.ndarray) -> Tensor:
            return torch.as_tensor(a, dtype=torch.float32)
        return cls(n_bits=x.shape[1], fp_mean=f32(mx), fp_map=f32(wx @ u * scale),
                   spectrum_means={v: f32(m) for v, m in means.items()},
                   spectrum_maps={v: f32(wys[v] @ ks[v].T @ u / scale) for v in ks},
                   strength=f32(np.sqrt(lam)))

    def embed_fingerprints(self, fp: ArrayLike) -> Tensor:
        """(n, dim) float32 of (n, n_bits) fingerprints."""
        return (_as_2d("fingerprints", fp, self.n_bits) - self.fp_mean) @ self.fp_map

    def embed_structures(self, smiles: Sequence[str]) -> Tensor:
        """(n, dim) float32 library embeddings of any SMILES (Morgan radius 2, n_bits)."""
        return _embed_smiles(smiles, self.n_bits, self.dim, self.embed_fingerprints)

    def embed_spectra(self, view: str, spectra: ArrayLike) -> Tensor:
        """(n, dim) float32 query embeddings of (n, n_points) spectra of `view`."""
        if view not in self.spectrum_maps:
            raise ValueError(f"this CCABaseline was fitted on {sorted(self.spectrum_maps)}, not "
                             f"{view!r}; refit with {view!r} spectra")
        mean = self.spectrum_means[view]
        return (_as_2d(view, spectra, len(mean)) - mean) @ self.spectrum_maps[view]

    def embed_ir(self, ir: ArrayLike) -> Tensor:
        """(n, dim) float32 query embeddings of IR spectra."""
        return self.embed_spectra("ir", ir)

    def embed_raman(self, raman: ArrayLike) -> Tensor:
        """(n, dim) float32 query embeddings of Raman spectra."""
        return self.embed_spectra("raman", raman)


def embed_baseline(baseline: Baseline, smiles: Sequence[str], ir: ArrayLike, raman: ArrayLike
                   ) -> tuple[Tensor, dict[str, Tensor]]:
    """(structure library (n, dim), queries {"ir": (q, dim), "raman": (q, dim)}) for
    `scores.mode_scorers`."""
    return baseline.embed_structures(smiles), {"ir": baseline.embed_ir(ir),
                                               "raman": baseline.embed_raman(raman)}
