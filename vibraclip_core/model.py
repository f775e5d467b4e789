"""VibraCLIP: a DimeNet++ graph encoder and two MLP spectra encoders, each with a projection head.

The three heads map a molecule's 3D graph, its IR spectrum and its Raman spectrum into one
latent space (Rocabert-Oriols et al., Digital Discovery 2025). Optionally the standardized
molecular mass is appended to every encoder output before its head ("mass anchoring").
"""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn.models import DimeNetPlusPlus
from torch_geometric.nn.models import dimenet as pyg_dimenet
from torch_geometric.nn.models.dimenet_utils import Jn, Jn_zeros
from torch_geometric.utils import scatter

from .config import Config
from .molecules import radius_edges, triplets

SPECTRUM_POINTS = 1750
# Optional precomputed geometry on a PyG Batch: the radius graph (2, E) and, per triplet
# k->j->i, the edge ids of k->j and j->i (T,). Edge ids must be offset by the number of radius
# edges of the preceding molecules when batching (a Data.__inc__ override), not by node counts.
RADIUS_EDGE_KEY = "rg_edge_index"
TRIPLET_EDGE_KEYS = ("rg_idx_kj", "rg_idx_ji")


def expand_triplets(edge_index: Tensor, idx_kj: Tensor, idx_ji: Tensor) -> tuple[Tensor, ...]:
    """The 7 triplet tensors (i, j, idx_i, idx_j, idx_k, idx_kj, idx_ji) from the two edge ids."""
    row, col = edge_index  # j -> i
    return col, row, col[idx_ji], row[idx_ji], row[idx_kj], idx_kj, idx_ji


class SphericalBasis(nn.Module):
    """Pure-torch twin of PyG's SphericalBasisLayer: (T, num_spherical * num_radial).

    Same function (equal to 1e-11 in float64): normalised spherical Bessel functions
    j_l(z_ln d / cutoff) on the same roots z_ln, times the envelope, times Y_l^0(angle). PyG
    builds it symbolically with sympy, which takes 10-30 s per model at the paper's 7 x 6;
    here j_l comes from the upward recurrence and Y_l^0 from Legendre's, in milliseconds.
    """

    def __init__(self, num_spherical: int, num_radial: int, cutoff: float = 5.0,
                 envelope_exponent: int = 5) -> None:
        super().__init__()
        roots = Jn_zeros(num_spherical, num_radial)  # (n, k) float32, as PyG
        norm = [[(0.5 * Jn(roots[l, r], l + 1) ** 2) ** -0.5 for r in range(num_radial)]
                for l in range(num_spherical)]
        # non-persistent: the state_dict stays identical to PyG's parameter-free layer
        self.register_buffer("roots", torch.from_numpy(np.asarray(roots, np.float32)), False)
        self.register_buffer("norm", torch.tensor(norm, dtype=torch.float32), False)
        self.num_spherical, self.num_radial, self.cutoff = num_spherical, num_radial, cutoff
        self.envelope = pyg_dimenet.Envelope(envelope_exponent)
        self.fast = True  # GraphEncoder sets it from config.fast_train

    def forward(self, dist: Tensor, angle: Tensor, idx_kj: Tensor) -> Tensor:
        """dist (E,) Å, angle (T,) rad, idx_kj (T,) -> (T, num_spherical * num_radial)."""
        x = dist / self.cutoff
        u = x[:, None, None] * self.roots.to(x.dtype)  # (E, n, k): order l uses its own roots
        sin_u, cos_u = u.sin(), u.cos()
        prev, cur = sin_u / u, sin_u / u**2 - cos_u / u  # j_0, j_1
        bessel = [prev[:, 0], cur[:, 1]][: self.num_spherical]
        for l in range(1, self.num_spherical - 1):
            prev, cur = cur, (2 * l + 1) / u * cur - prev
            bessel.append(cur[:, l + 1])
        rbf = self.envelope(x)[:, None, None] * self.norm.to(x.dtype) * torch.stack(bessel, 1)
        cos_a = angle.cos()
        legendre = [torch.ones_like(cos_a), cos_a]
        for l in range(2, self.num_spherical):
            legendre.append(((2 * l - 1) * cos_a * legendre[-1] - (l - 1) * legendre[-2]) / l)
        cbf = torch.stack([math.sqrt((2 * l + 1) / (4 * math.pi)) * legendre[l]
                           for l in range(self.num_spherical)], 1)
        if not self.fast:
            return (rbf[idx_kj] * cbf[:, :, None]).flatten(1)
        # the (T, n * k) product is the step's largest tensor: gather by index_select and, when
        # positions carry no gradient (always, in training), multiply in place, or under
        # autocast write straight in its dtype (the rounding the next Linear's cast would do)
        n, k = self.num_spherical, self.num_radial
        per_triplet = rbf.reshape(-1, n * k).index_select(0, idx_kj).view(-1, n, k)
        if per_triplet.requires_grad or cbf.requires_grad:
            return (per_triplet * cbf[:, :, None]).view(-1, n * k)
        device = per_triplet.device.type
        if torch.is_autocast_enabled(device):
            out = torch.empty_like(per_triplet, dtype=torch.get_autocast_dtype(device))
            return torch.mul(per_triplet, cbf[:, :, None], out=out).view(-1, n * k)
        return per_triplet.mul_(cbf[:, :, None]).view(-1, n * k)


@contextmanager
def _pure_torch_spherical_basis() -> Iterator[None]:
    """While DimeNet.__init__ runs, let it build SphericalBasis instead of the sympy layer."""
    original = pyg_dimenet.SphericalBasisLayer
    pyg_dimenet.SphericalBasisLayer = SphericalBasis  # the name DimeNet.__init__ looks up
    try:
        yield
    finally:
        pyg_dimenet.SphericalBasisLayer = original


@contextmanager
def _running_batch_norm(module: nn.Module) -> Iterator[None]:
    """While inside, the BatchNorm layers of `module` that train use (and keep) running stats."""
    training = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                and m.training]
    for m in training:
        m.eval()
    try:
        yield
    finally:
        for m in training:
            m.train()


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """x[index] along dim 0 by index_select, whose backward is one index_add_: 2-3x faster on
    CPU than indexing's backward (index_put_ with accumulate, sort-based in deterministic mode)."""
    return x.index_select(0, index)


def _sum_into(x: Tensor, index: Tensor, size: int) -> Tensor:
    """(size, C): rows of x (n, C) summed into row index[n] (scatter-sum by index_add_)."""
    return x.new_zeros(size, x.size(1)).index_add_(0, index, x)


def embedding_forward(block: pyg_dimenet.EmbeddingBlock, z: Tensor, rbf: Tensor, i: Tensor,
                      j: Tensor) -> Tensor:
    """PyG's EmbeddingBlock.forward, with its gathers by index_select (same values)."""
    x = block.emb(z)
    rbf = block.act(block.lin_rbf(rbf))
    return block.act(block.lin(torch.cat([_gather(x, i), _gather(x, j), rbf], dim=-1)))


def interaction_forward(block: pyg_dimenet.InteractionPPBlock, x: Tensor, rbf: Tensor,
                        sbf: Tensor, idx_kj: Tensor, idx_ji: Tensor) -> Tensor:
    """PyG's InteractionPPBlock.forward with the triplet gather and sum by index_select /
    index_add_ (same values; the step's index work drops from ~20 % to ~8 % on CPU)."""
    act = block.act
    x_ji = act(block.lin_ji(x))
    x_kj = act(block.lin_kj(x)) * block.lin_rbf2(block.lin_rbf1(rbf))
    x_kj = act(block.lin_down(x_kj))
    # the triplet level (k->j->i): DimeNet++'s largest tensors, T of about 12 per edge
    triplet = _gather(x_kj, idx_kj) * block.lin_sbf2(block.lin_sbf1(sbf))
    x_kj = act(block.lin_up(_sum_into(triplet, idx_ji, x.size(0))))
    h = x_ji + x_kj
    for layer in block.layers_before_skip:
        h = layer(h)
    h = act(block.lin(h)) + x
    for layer in block.layers_after_skip:
        h = layer(h)
    return h


def training_autocast(device_type: str, enabled: bool = True) -> Any:
    """The fast path's autocast context for a training forward: bf16 on CPU (AVX-512 BF16 /
    AMX kernels) and on GPUs that support it; a null context when disabled or unsupported.

    Parameters, optimizer state, loss and similarity matrices stay float32 (callers cast the
    embeddings back with `.float()`), as in standard mixed-precision training.
    """
    if not enabled or device_type not in ("cpu", "cuda"):
        return nullcontext()
    if device_type == "cuda" and not torch.cuda.is_bf16_supported():
        return nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


class GraphEncoder(DimeNetPlusPlus):
    """DimeNet++ whose forward takes a precomputed radius graph and triplets (pure torch).

    PyG's forward builds both with torch-cluster / torch-sparse; here they are arguments, and
    when absent they come from `molecules.radius_edges` / `molecules.triplets`. Everything
    else is the parent's computation: Bessel/spherical bases, embedding, interaction and
    output blocks, sum over atoms. With `fast_blocks` (config.fast_train) the embedding and
    interaction blocks run `embedding_forward` / `interaction_forward`: the same function with
    faster gathers; without, PyG's own block forwards.
    """

    def __init__(self, config: Config, output_initializer: str = "zeros",
                 fast_basis: bool = True) -> None:
        """fast_basis=False keeps PyG's sympy SphericalBasisLayer (same values, 10-30 s to build)."""
        with _pure_torch_spherical_basis() if fast_basis else nullcontext():
            super().__init__(
                hidden_channels=config.hidden_channels, out_channels=config.out_channels,
                num_blocks=config.num_blocks, int_emb_size=config.int_emb_size,
                basis_emb_size=config.basis_emb_size, out_emb_channels=config.out_emb_channels,
                num_spherical=config.num_spherical, num_radial=config.num_radial,
                cutoff=config.cutoff_ang, envelope_exponent=5, num_before_skip=1,
                num_after_skip=2, num_output_layers=3, output_initializer=output_initializer,
                # swish is x * sigmoid(x); PyG's default spells it out in two ops, torch's SiLU
                # is one fused op with a fused backward: same values, training step 1.1-1.3x faster
                # on CPU (benchmarks/activation.py)
                act="silu",
            )
        self.out_channels = config.out_channels
        self.fast_blocks = bool(config.fast_train)
        if isinstance(self.sbf, SphericalBasis):
            self.sbf.fast = self.fast_blocks

    def forward(  # type: ignore[override]
        self, z: Tensor, pos: Tensor, batch: Tensor | None = None,
        edge_index: Tensor | None = None, triplet_tensors: Sequence[Tensor] | None = None,
        num_graphs: int | None = None,
    ) -> Tensor:
        """(n_graphs, out_channels) from z (n_atoms,) long, pos (n_atoms, 3) Å, batch (n_atoms,)."""
        if batch is None:
            batch = torch.zeros_like(z)
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        if edge_index is None:
            edge_index = radius_edges(pos, self.cutoff, batch)
        if triplet_tensors is None:
            triplet_tensors = triplets(edge_index, z.size(0))
        i, j, idx_i, idx_j, idx_k, idx_kj, idx_ji = triplet_tensors

        gather = _gather if self.fast_blocks else (lambda x, index: x[index])
        dist = (gather(pos, i) - gather(pos, j)).pow(2).sum(dim=-1).sqrt()
        # DimeNet++ angle: between the bond vectors j->k and i->j of the path k->j->i
        pos_j = gather(pos, idx_j)
        pos_jk, pos_ij = pos_j - gather(pos, idx_k), gather(pos, idx_i) - pos_j
        angle = torch.atan2(torch.cross(pos_ij, pos_jk, dim=1).norm(dim=-1),
                            (pos_ij * pos_jk).sum(dim=-1))

        rbf = self.rbf(dist)
        sbf = self.sbf(dist, angle, idx_kj)
        fast = self.fast_blocks
        x = embedding_forward(self.emb, z, rbf, i, j) if fast else self.emb(z, rbf, i, j)
        per_atom = self.output_blocks[0](x, rbf, i, num_nodes=pos.size(0))
        for interaction, output in zip(self.interaction_blocks, self.output_blocks[1:]):
            x = (interaction_forward(interaction, x, rbf, sbf, idx_kj, idx_ji) if fast
                 else interaction(x, rbf, sbf, idx_kj, idx_ji))
            per_atom = per_atom + output(x, rbf, i, num_nodes=pos.size(0))
        return scatter(per_atom, batch, dim=0, dim_size=num_graphs, reduce="sum")


class SpectraEncoder(nn.Sequential):
    """(n, in_dim) spectrum -> (n, out_dim): Linear -> BatchNorm1d -> ELU -> Linear.

    The order of the released VibraCLIP code (one hidden layer, `n_layers: 1`); the output is
    left linear because the projection head follows.
    """

    def __init__(self, in_dim: int = SPECTRUM_POINTS, hidden: int = 1262, out: int = 497) -> None:
        super().__init__(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ELU(),
                         nn.Linear(hidden, out))


class ProjectionHead(nn.Module):
    """(n, in_dim) -> (n, latent_dim): residual GELU MLP, dropout, LayerNorm (CLIP-style)."""

    def __init__(self, in_dim: int, latent_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        # no bias on the first projection, as in the released configuration (`bias: False`)
        self.projection = nn.Linear(in_dim, latent_dim, bias=False)
        self.act = nn.GELU()
        self.fc = nn.Linear(latent_dim, latent_dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(latent_dim)

    def forward(self, x: Tensor) -> Tensor:
        """(n, in_dim) -> (n, latent_dim)."""
        projected = self.projection(x)
        x = self.dropout(self.fc(self.act(projected)))
        return self.norm(x + projected)


class LogitScale(nn.Module):
    """Scalar multiplier of cosine similarities: learnable (stored as log, ≤ 100) or 1/temperature."""

    MAX_SCALE = 100.0

    def __init__(self, temperature: float | None = None, init_temperature: float = 0.07) -> None:
        super().__init__()
        self.learnable = temperature is None
        if temperature is not None and not temperature > 0:
            raise ValueError(f"temperature={temperature!r}: must be a positive number or None "
                             "(None = learnable, CLIP init 0.07)")
        value = math.log(1.0 / (init_temperature if temperature is None else temperature))
        if self.learnable:
            self.log_scale = nn.Parameter(torch.tensor(value))
        else:
            self.register_buffer("log_scale", torch.tensor(value))

    def forward(self) -> Tensor:
        """0-d tensor: exp(log_scale), clamped to ≤ 100 when learnable."""
        if self.learnable:
            return self.log_scale.clamp(max=math.log(self.MAX_SCALE)).exp()
        return self.log_scale.exp()


class VibraCLIP(nn.Module):
    """Graph, IR and Raman encoders with projection heads into one latent space."""

    PARTS = ("graph_encoder", "ir_encoder", "raman_encoder", "graph_head", "ir_head",
             "raman_head", "logit_scale")

    def __init__(self, config: Config, graph_output_initializer: str = "zeros") -> None:
        super().__init__()
        self.config = config
        self.use_mass = bool(config.mass)
        extra = int(self.use_mass)
        self.graph_encoder = GraphEncoder(config, output_initializer=graph_output_initializer)
        self.ir_encoder = SpectraEncoder(SPECTRUM_POINTS, config.spectra_hidden, config.spectra_out)
        self.raman_encoder = SpectraEncoder(SPECTRUM_POINTS, config.spectra_hidden,
                                            config.spectra_out)
        self.graph_head = ProjectionHead(config.out_channels + extra, config.latent_dim,
                                         config.head_dropout)
        self.ir_head = ProjectionHead(config.spectra_out + extra, config.latent_dim,
                                      config.head_dropout)
        self.raman_head = ProjectionHead(config.spectra_out + extra, config.latent_dim,
                                         config.head_dropout)
        self.logit_scale = LogitScale(config.temperature)

    def _anchor(self, features: Tensor, mass: Tensor | None, what: str) -> Tensor:
        """(n, d) -> (n, d + 1) with the standardized mass appended when mass anchoring is on."""
        if not self.use_mass:
            return features
        if mass is None:
            raise ValueError(f"encode_{what}: config.mass is True, so the standardized mass "
                             "(n,) is required; pass mass=... or build the model with mass=False")
        return torch.cat([features, mass.reshape(-1, 1).to(features.dtype)], dim=1)

    def encode_graph(
        self, z: Tensor, pos: Tensor, batch: Tensor | None = None, mass: Tensor | None = None,
        edge_index: Tensor | None = None, triplet_tensors: Sequence[Tensor] | None = None,
        num_graphs: int | None = None,
    ) -> Tensor:
        """(n_graphs, latent_dim) graph embeddings; pos in Å, mass (n_graphs,) standardized."""
        features = self.graph_encoder(z, pos, batch, edge_index, triplet_tensors, num_graphs)
        return self.project_graph(features, mass)

    def project_graph(self, features: Tensor, mass: Tensor | None = None) -> Tensor:
        """(n, latent_dim) from graph-encoder outputs (n, out_channels): the graph head, with the
        standardized mass appended first when mass anchoring is on."""
        return self.graph_head(self._anchor(features, mass, "graph"))

    def encode_ir(self, ir: Tensor, mass: Tensor | None = None) -> Tensor:
        """(n, latent_dim) from IR spectra (n, 1750) in [0, 1] and mass (n,) standardized."""
        return self.ir_head(self._anchor(self.ir_encoder(ir), mass, "ir"))

    def encode_raman(self, raman: Tensor, mass: Tensor | None = None) -> Tensor:
        """(n, latent_dim) from Raman spectra (n, 1750) in [0, 1] and mass (n,) standardized."""
        return self.raman_head(self._anchor(self.raman_encoder(raman), mass, "raman"))

    def forward(self, batch: Any) -> dict[str, Tensor]:
        """{"graph", "ir", "raman"}: each (n, latent_dim), from a PyG Batch of n molecules; rows
        whose batch.has_ir / has_raman (n,) bool is False get zeros (see `encode_present`)."""
        n = int(batch.num_graphs)
        pos = getattr(batch, "pos", None)
        pos = getattr(batch, "pos_ang", None) if pos is None else pos
        fields = {"z": getattr(batch, "z", None), "pos": pos, "ir": getattr(batch, "ir", None),
                  "raman": getattr(batch, "raman", None)}
        if self.use_mass:
            fields["mass"] = getattr(batch, "mass", None)
        for key, value in fields.items():
            if value is None:
                raise ValueError(f"VibraCLIP.forward: the batch has no field {key!r}; expected "
                                 "z, pos (Å), batch, ir (n, 1750), raman (n, 1750), mass (n,)")
        mass = batch.mass.reshape(n) if self.use_mass else None
        feats = getattr(batch, "graph_feat", None)  # a frozen encoder's precomputed outputs
        return {
            "graph": self.project_graph(self.graph_features(batch) if feats is None else feats,
                                        mass),
            "ir": self.encode_present("ir", batch.ir.reshape(n, -1), mass,
                                      getattr(batch, "has_ir", None)),
            "raman": self.encode_present("raman", batch.raman.reshape(n, -1), mass,
                                         getattr(batch, "has_raman", None)),
        }

    def encode_present(self, spectrum: str, spectra: Tensor, mass: Tensor | None = None,
                       present: Tensor | None = None) -> Tensor:
        """(n, latent_dim) encode_<spectrum>("ir" | "raman") of the rows of spectra (n, 1750)
        whose present (n,) bool is True (None: all); the other rows are zeros that never saw
        the encoder or its head.

        The paper freezes a spectrum encoder against missing spectra: here they are not its
        input at all, so they move neither its weights nor its BatchNorm statistics (the loss
        masks their placeholder rows). With no row present the encoder is not called; with one,
        in training, BatchNorm has no batch statistics (it raises for 1 row), so that call uses
        the running statistics and leaves them unchanged, as at evaluation.
        """
        if spectrum not in ("ir", "raman"):
            raise ValueError(f"encode_present: spectrum {spectrum!r} unknown; use 'ir' or 'raman'")
        encode = getattr(self, f"encode_{spectrum}")
        if present is None or bool(present.all()):
            return encode(spectra, mass)
        rows = present.reshape(-1).nonzero().squeeze(1)
        if rows.numel() == 0:
            return spectra.new_zeros(spectra.size(0), self.config.latent_dim)
        encoder = getattr(self, f"{spectrum}_encoder")
        with _running_batch_norm(encoder) if rows.numel() == 1 else nullcontext():
            encoded = encode(spectra[rows], None if mass is None else mass[rows])
        return encoded.new_zeros(spectra.size(0), encoded.size(1)).index_copy(0, rows, encoded)

    def graph_features(self, batch: Any) -> Tensor:
        """(n, out_channels) graph-encoder outputs (before the head) of a PyG Batch, using the
        batch's precomputed radius edges and triplets when it carries them."""
        pos = getattr(batch, "pos", None)
        pos = getattr(batch, "pos_ang", None) if pos is None else pos
        edge_index = getattr(batch, RADIUS_EDGE_KEY, None)
        trip = None
        if edge_index is not None and all(getattr(batch, k, None) is not None
                                          for k in TRIPLET_EDGE_KEYS):
            trip = expand_triplets(edge_index, *(getattr(batch, k) for k in TRIPLET_EDGE_KEYS))
        return self.graph_encoder(batch.z, pos, batch.batch, edge_index, trip,
                                  int(batch.num_graphs))

    def freeze_for_realignment(self) -> None:
        """Freeze everything except the last Linear (`fc`) of each projection head."""
        self.set_trainable("last_layer")

    TRAINABLE = ("all", "heads", "last_layer")

    def set_trainable(self, what: str) -> None:
        """"all"; "heads": the three projection heads only; "last_layer": only the last Linear
        (`fc`) of each head, the paper's realignment."""
        if what not in self.TRAINABLE:
            raise ValueError(f"trainable={what!r}: choose one of {self.TRAINABLE}")
        self.requires_grad_(what == "all")
        for head in (self.graph_head, self.ir_head, self.raman_head):
            (head if what == "heads" else head.fc).requires_grad_(True)

    def frozen_parts(self) -> list[str]:
        """Names of the parts (see PARTS) with no trainable parameter: kept in eval mode during
        training so that BatchNorm statistics stay those of pretraining."""
        return [n for n in self.PARTS
                if not any(p.requires_grad for p in getattr(self, n).parameters())]

    def parameter_table(self) -> list[tuple[str, int, int]]:
        """(part, total parameters, trainable parameters) per part, then a "total" row."""
        rows = []
        for name in self.PARTS:
            params = list(getattr(self, name).parameters())
            rows.append((name, sum(p.numel() for p in params),
                         sum(p.numel() for p in params if p.requires_grad)))
        rows.append(("total", sum(r[1] for r in rows), sum(r[2] for r in rows)))
        return rows
