"""VibraCLIP: a DimeNet++ graph encoder and two MLP spectra encoders, each with a projection head.

The three heads map a molecule's 3D graph, its IR spectrum and its Raman spectrum into one
latent space (Rocabert-Oriols et al., Digital Discovery 2025). Optionally the standardized
molecular mass is appended to every encoder output before its head ("mass anchoring"). The
graph encoder (DimeNet++ on precomputed geometry) lives in `dimenet.py`.
"""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor, nn

from vibraclip_core.config.choices import TRAINABLE
from vibraclip_core.config.profiles import Config
from vibraclip_core.data.graphs import RADIUS_EDGE_KEY, TRIPLET_EDGE_KEYS
from vibraclip_core.data.spectra import MODEL_POINTS
from vibraclip_core.model.dimenet import GraphEncoder, expand_triplets


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


class SpectraEncoder(nn.Sequential):
    """(n, in_dim) spectrum -> (n, out_dim): Linear -> BatchNorm1d -> ELU -> Linear.

    The order of the released VibraCLIP code (one hidden layer, `n_layers: 1`); the output is
    left linear because the projection head follows.
    """

    def __init__(self, in_dim: int = MODEL_POINTS, hidden: int = 1262, out: int = 497) -> None:
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

    # the model's parts, each with the Config field of the learning rate that trains it
    PARTS = {"graph_encoder": "lr_graph", "ir_encoder": "lr_spectra",
             "raman_encoder": "lr_spectra", "graph_head": "lr_heads", "ir_head": "lr_heads",
             "raman_head": "lr_heads", "logit_scale": "lr_heads"}

    def __init__(self, config: Config, graph_output_initializer: str = "zeros") -> None:
        super().__init__()
        self.config = config
        self.use_mass = bool(config.mass)
        extra = int(self.use_mass)
        self.graph_encoder = GraphEncoder(config, output_initializer=graph_output_initializer)
        self.ir_encoder = SpectraEncoder(MODEL_POINTS, config.spectra_hidden, config.spectra_out)
        self.raman_encoder = SpectraEncoder(MODEL_POINTS, config.spectra_hidden,
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

    TRAINABLE = TRAINABLE  # Config.trainable's choices

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

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by the Config field of their learning rate (see PARTS), parts
        and parameters in PARTS order; a field whose parts are all frozen is left out."""
        groups: dict[str, list[nn.Parameter]] = {}
        for name, lr_field in self.PARTS.items():
            groups.setdefault(lr_field, []).extend(
                p for p in getattr(self, name).parameters() if p.requires_grad)
        return {f: params for f, params in groups.items() if params}

    def parameter_table(self) -> list[tuple[str, int, int]]:
        """(part, total parameters, trainable parameters) per part, then a "total" row."""
        rows = []
        for name in self.PARTS:
            params = list(getattr(self, name).parameters())
            rows.append((name, sum(p.numel() for p in params),
                         sum(p.numel() for p in params if p.requires_grad)))
        rows.append(("total", sum(r[1] for r in rows), sum(r[2] for r in rows)))
        return rows
