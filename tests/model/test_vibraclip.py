"""VibraCLIP model: DimeNet++ forward vs PyG's, invariances, heads, mass anchoring, sizes."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn.models import DimeNetPlusPlus
from torch_geometric.nn.models import dimenet as pyg_dimenet

from vibraclip_core.config.profiles import get_config
from vibraclip_core.data import molecules as M
from vibraclip_core.model.dimenet import GraphEncoder, SphericalBasis
from vibraclip_core.model.losses import VibraCLIPLoss
from vibraclip_core.model.vibraclip import (LogitScale, ProjectionHead, SpectraEncoder, VibraCLIP,
                                            training_autocast)

SMILES = ["O", "CO", "CC=O", "c1ccccc1", "CC(N)C(=O)O", "FC(F)F"]


@pytest.fixture(scope="module")
def graphs() -> list[M.MoleculeGraph]:
    return [M.smiles_to_graph(s, seed=0) for s in SMILES]


def _cat(graphs: list[M.MoleculeGraph]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    z = torch.cat([torch.from_numpy(g.z) for g in graphs])
    pos = torch.cat([torch.from_numpy(g.pos_ang) for g in graphs])
    batch = torch.cat([torch.full((len(g.z),), k) for k, g in enumerate(graphs)])
    return z, pos, batch


def _encoder(**overrides) -> GraphEncoder:
    torch.manual_seed(0)
    # non-zero output layers: PyG's default "zeros" init would make every check trivially pass
    return GraphEncoder(get_config("tiny", **overrides), output_initializer="glorot_orthogonal")


def test_forward_equals_parent_forward(graphs, monkeypatch):
    enc = _encoder()
    z, pos, batch = _cat(graphs)
    ours = enc(z, pos, batch)
    assert ours.shape == (len(graphs), enc.out_channels) and ours.abs().sum() > 0
    # PyG's own forward, with its torch-cluster / torch-sparse helpers swapped for ours
    monkeypatch.setattr(pyg_dimenet, "radius_graph", lambda pos, r, batch, max_num_neighbors:
                        M.radius_edges(pos, r, batch))
    monkeypatch.setattr(pyg_dimenet, "triplets", M.triplets)
    parent = DimeNetPlusPlus.forward(enc, z, pos, batch)
    torch.testing.assert_close(ours, parent, rtol=0, atol=0)
    edges = M.radius_edges(pos, enc.cutoff, batch)
    given = enc(z, pos, batch, edge_index=edges, triplet_tensors=M.triplets(edges, len(z)))
    torch.testing.assert_close(given, parent, rtol=0, atol=0)


def test_fused_silu_gives_pygs_swish_values(graphs):
    enc = _encoder()
    z, pos, batch = _cat(graphs)
    fused = enc(z, pos, batch)
    acts = [m for m in enc.modules() if isinstance(getattr(m, "act", None), torch.nn.SiLU)]
    assert len(acts) >= 3  # embedding, interaction and output blocks all use it

    class Swish(torch.nn.Module):  # PyG's default activation, spelled x * sigmoid(x)
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return pyg_dimenet.activation_resolver("swish")(x)

    for m in acts:
        m.act = Swish()
    torch.testing.assert_close(enc(z, pos, batch), fused, rtol=1e-5, atol=1e-6)


def test_pure_torch_basis_equals_sympy_basis(graphs):
    # small basis: PyG's sympy construction costs ~1 s here but 10-30 s at the paper's 7 x 6
    fast = _encoder(num_spherical=3, num_radial=2).double()
    torch.manual_seed(0)
    slow = GraphEncoder(get_config("tiny", num_spherical=3, num_radial=2),
                        output_initializer="glorot_orthogonal", fast_basis=False).double()
    assert isinstance(fast.sbf, SphericalBasis)
    assert not isinstance(slow.sbf, SphericalBasis)
    assert pyg_dimenet.SphericalBasisLayer is not SphericalBasis  # restored after building
    slow.load_state_dict(fast.state_dict())
    z, pos, batch = _cat(graphs)
    torch.testing.assert_close(fast(z, pos.double(), batch), slow(z, pos.double(), batch),
                               rtol=1e-9, atol=1e-9)
    dist = torch.linspace(0.9, 4.9, 50, dtype=torch.float64)
    angle = torch.linspace(0.0, math.pi, 80, dtype=torch.float64)
    idx = torch.arange(80) % 50
    torch.testing.assert_close(fast.sbf(dist, angle, idx), slow.sbf(dist, angle, idx),
                               rtol=1e-9, atol=1e-9)


def test_rotation_and_translation_invariance(graphs):
    enc = _encoder()
    z, pos, batch = _cat(graphs)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))
    moved = pos @ q.T + torch.tensor([1.0, -2.0, 0.5])
    torch.testing.assert_close(enc(z, moved, batch), enc(z, pos, batch), rtol=1e-4, atol=1e-4)


def test_molecule_permutation_permutes_rows(graphs):
    enc = _encoder()
    out = enc(*_cat(graphs))
    order = [3, 0, 5, 1, 4, 2]
    torch.testing.assert_close(enc(*_cat([graphs[k] for k in order])), out[order],
                               rtol=1e-5, atol=1e-5)
    single = enc(torch.from_numpy(graphs[2].z), torch.from_numpy(graphs[2].pos_ang))
    torch.testing.assert_close(single, out[2:3], rtol=1e-5, atol=1e-5)


def test_spectra_encoder_layout():
    enc = SpectraEncoder(1750, 64, 32)
    kinds = [type(m).__name__ for m in enc]
    assert kinds == ["Linear", "BatchNorm1d", "ELU", "Linear"]
    assert enc(torch.rand(5, 1750)).shape == (5, 32)


def test_projection_head_is_residual_gelu_mlp_with_layer_norm():
    torch.manual_seed(0)
    head = ProjectionHead(7, 12, dropout=0.5).eval()
    x = torch.randn(4, 7)
    projected = head.projection(x)
    manual = head.norm(head.fc(torch.nn.functional.gelu(projected)) + projected)
    torch.testing.assert_close(head(x), manual)
    out = head(x)
    torch.testing.assert_close(out.mean(-1), torch.zeros(4), atol=1e-5, rtol=0)
    head.train()
    assert not torch.allclose(head(x), out)  # dropout is active in training


def _batch(graphs, config, with_geometry: bool = False) -> Batch:
    class GeometryData(Data):
        """Radius-graph edge ids are offset by edge counts, node ids by node counts."""

        def __inc__(self, key, value, *args, **kwargs):
            if key in ("rg_idx_kj", "rg_idx_ji"):
                return self.rg_edge_index.size(1)
            return super().__inc__(key, value, *args, **kwargs)

    g = torch.Generator().manual_seed(2)
    items = []
    for k, mol in enumerate(graphs):
        d = GeometryData(z=torch.from_numpy(mol.z), pos=torch.from_numpy(mol.pos_ang),
                         ir=torch.rand(1, 1750, generator=g), raman=torch.rand(1, 1750, generator=g),
                         mass=torch.tensor([k - 2.5]))
        if with_geometry:
            d.rg_edge_index = M.radius_edges(d.pos, config.cutoff_ang)
            _, _, _, _, _, d.rg_idx_kj, d.rg_idx_ji = M.triplets(d.rg_edge_index, len(mol.z))
        items.append(d)
    return Batch.from_data_list(items)


def test_vibraclip_forward_and_precomputed_geometry(graphs):
    config = get_config("tiny")
    torch.manual_seed(0)
    model = VibraCLIP(config, graph_output_initializer="glorot_orthogonal").eval()
    out = model(_batch(graphs, config))
    assert set(out) == {"graph", "ir", "raman"}
    assert all(v.shape == (len(graphs), config.latent_dim) for v in out.values())
    with_geometry = model(_batch(graphs, config, with_geometry=True))
    for key in out:
        torch.testing.assert_close(with_geometry[key], out[key])
    b = _batch(graphs, config)
    torch.testing.assert_close(model.encode_ir(b.ir, b.mass), out["ir"])
    torch.testing.assert_close(model.encode_raman(b.raman, b.mass), out["raman"])
    torch.testing.assert_close(model.encode_graph(b.z, b.pos, b.batch, b.mass), out["graph"])


def test_mass_anchoring(graphs):
    config = get_config("tiny")
    model = VibraCLIP(config).eval()
    assert model.ir_head.projection.in_features == config.spectra_out + 1
    assert model.graph_head.projection.in_features == config.out_channels + 1
    ir = torch.rand(3, 1750)
    assert not torch.allclose(model.encode_ir(ir, torch.zeros(3)), model.encode_ir(ir, torch.ones(3)))
    with pytest.raises(ValueError, match="encode_ir: config.mass is True"):
        model.encode_ir(ir)
    plain = VibraCLIP(config.replace(mass=False)).eval()
    assert plain.ir_head.projection.in_features == config.spectra_out
    assert plain.encode_ir(ir).shape == (3, config.latent_dim)
    b = _batch(graphs, config)
    del b.mass
    with pytest.raises(ValueError, match="'mass'"):
        model(b)


def test_backward_reaches_every_part(graphs):
    config = get_config("tiny")
    torch.manual_seed(0)
    model = VibraCLIP(config, graph_output_initializer="glorot_orthogonal")
    emb = model(_batch(graphs, config))
    VibraCLIPLoss("all_pairs")(emb, model.logit_scale()).backward()
    for part in model.PARTS:
        grads = [p.grad for p in getattr(model, part).parameters()]
        assert grads and all(g is not None for g in grads), part
        assert sum(g.abs().sum() for g in grads) > 0, part



def test_parameter_groups_hold_each_trainable_parameter_once_under_its_learning_rate():
    config = get_config("tiny")
    model = VibraCLIP(config)
    groups = model.parameter_groups()
    assert list(groups) == ["lr_graph", "lr_spectra", "lr_heads"]
    assert all(isinstance(getattr(config, field), float) for field in groups)
    ids = [id(p) for params in groups.values() for p in params]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    assert {id(p) for p in groups["lr_spectra"]} == {
        id(p) for part in (model.ir_encoder, model.raman_encoder) for p in part.parameters()}
    model.set_trainable("last_layer")  # frozen parts leave the optimizer; empty groups go too
    groups = model.parameter_groups()
    heads = (model.graph_head, model.ir_head, model.raman_head)
    assert list(groups) == ["lr_heads"]
    assert [id(p) for p in groups["lr_heads"]] == [id(p) for h in heads for p in h.fc.parameters()]

def test_paper_parameter_count():
    model = VibraCLIP(get_config("paper"))
    table = dict((name, (total, trainable)) for name, total, trainable in model.parameter_table())
    # analytic: 1750*1262 + 1262 + 2*1262 (BatchNorm) + 1262*497 + 497
    assert table["ir_encoder"][0] == 2_839_997
    # head: 861*(181+1) (no bias) + 861*861 + 861 + 2*861 (LayerNorm)
    assert table["graph_head"][0] == 900_606
    total = table["total"][0]
    assert 10.5e6 < total < 11.5e6  # paper: "about 11 M"
    assert total == sum(t for name, (t, _) in table.items() if name != "total")
    model.freeze_for_realignment()
    table = {name: (t, tr) for name, t, tr in model.parameter_table()}
    frozen = table["total"][0] - table["total"][1]
    assert 8.5e6 < frozen < 9.0e6  # paper: "8.7 M frozen at realignment"
    assert table["ir_head"][1] == 861 * 861 + 861


def test_logit_scale():
    learnable = LogitScale()
    assert learnable().item() == pytest.approx(1 / 0.07, rel=1e-6)
    with torch.no_grad():
        learnable.log_scale.fill_(10.0)
    assert learnable().item() == pytest.approx(100.0, rel=1e-6)
    fixed = LogitScale(temperature=0.5)
    assert fixed().item() == pytest.approx(2.0) and not list(fixed.parameters())
    with pytest.raises(ValueError, match="temperature"):
        LogitScale(temperature=0.0)
    model = VibraCLIP(get_config("tiny", temperature=0.1))
    assert model.logit_scale().item() == pytest.approx(10.0, rel=1e-6)
    assert model.parameter_table()[-2] == ("logit_scale", 0, 0)


def _masked_batch(graphs, config, has_raman: torch.Tensor) -> Batch:
    b = _batch(graphs, config)
    b.has_ir = torch.ones(b.num_graphs, dtype=torch.bool)
    b.has_raman = has_raman
    return b


def _one_step(model: VibraCLIP, emb_of, b: Batch, pair_loss: str) -> None:
    """One AdamW step of `model` on the all-pairs loss of emb_of(model), masked by b's has_*."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = VibraCLIPLoss("all_pairs", pair_loss, temperature=2.0)
    loss(emb_of(model), model.logit_scale(), b.has_ir, b.has_raman).backward()
    opt.step()


@pytest.mark.parametrize("pair_loss", ["clip", "reference"])
def test_missing_spectrum_never_reaches_its_encoder(graphs, pair_loss):
    config = get_config("tiny", head_dropout=0.0)  # no dropout: the two steps draw no randoms
    torch.manual_seed(0)
    model = VibraCLIP(config, graph_output_initializer="glorot_orthogonal").train()
    by_hand, legacy = copy.deepcopy(model), copy.deepcopy(model)
    r = 2
    has_raman = torch.ones(len(graphs), dtype=torch.bool)
    has_raman[r] = False
    b = _masked_batch(graphs, config, has_raman)
    _one_step(model, lambda m: m(b), b, pair_loss)

    def without_row_r(m: VibraCLIP) -> dict[str, torch.Tensor]:
        # the same batch, with row r cut from the Raman encoder's input before it runs
        raman = torch.zeros(b.num_graphs, config.latent_dim)
        raman[has_raman] = m.encode_raman(b.raman[has_raman], b.mass[has_raman])
        return {"graph": m.project_graph(m.graph_features(b), b.mass),
                "ir": m.encode_ir(b.ir, b.mass), "raman": raman}

    _one_step(by_hand, without_row_r, b, pair_loss)
    ours, theirs = model.state_dict(), by_hand.state_dict()
    assert any(k.startswith("raman_encoder.1.running") for k in ours)
    for key in ours:  # weights, BatchNorm running_mean / running_var / num_batches_tracked
        assert torch.equal(ours[key], theirs[key]), key
    # the check has teeth: feeding row r (the old forward, loss-masked only) moves the encoder
    old_b = _batch(graphs, config)
    _one_step(legacy, lambda m: m(old_b), b, pair_loss)
    assert not torch.equal(legacy.raman_encoder[1].running_mean,
                           model.raman_encoder[1].running_mean)
    assert not torch.equal(legacy.raman_encoder[0].weight, model.raman_encoder[0].weight)


def test_all_present_rows_take_the_unmasked_path(graphs):
    config = get_config("tiny")
    torch.manual_seed(0)
    model = VibraCLIP(config, graph_output_initializer="glorot_orthogonal").eval()
    plain = model(_batch(graphs, config))  # evaluation: no has_* fields
    everything = model(_masked_batch(graphs, config, torch.ones(len(graphs), dtype=torch.bool)))
    for key in plain:
        assert torch.equal(plain[key], everything[key]), key
    # at evaluation a missing row is a zero row; the others keep their embeddings
    has_raman = torch.tensor([1, 1, 0, 1, 1, 1], dtype=torch.bool)
    masked = model(_masked_batch(graphs, config, has_raman))
    assert torch.equal(masked["raman"][2], torch.zeros(config.latent_dim))
    torch.testing.assert_close(masked["raman"][has_raman], plain["raman"][has_raman])
    assert torch.equal(masked["ir"], plain["ir"]) and torch.equal(masked["graph"], plain["graph"])


@pytest.mark.parametrize("present", [0, 1])
def test_zero_or_one_present_spectrum_in_training(graphs, present):
    config = get_config("tiny", head_dropout=0.0)
    torch.manual_seed(0)
    model = VibraCLIP(config, graph_output_initializer="glorot_orthogonal").train()
    bn = model.raman_encoder[1]
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    has_raman = torch.zeros(len(graphs), dtype=torch.bool)
    has_raman[:present] = True
    b = _masked_batch(graphs, config, has_raman)
    out = model(b)  # BatchNorm would raise on a single training row
    assert bn.training and out["raman"].shape == (len(graphs), config.latent_dim)
    for key, value in bn.state_dict().items():  # statistics untouched: no row updated them
        assert torch.equal(value, before[key]), key
    assert torch.equal(out["raman"][present:], torch.zeros(len(graphs) - present,
                                                            config.latent_dim))
    if present:  # the lone row is encoded with the running statistics, as at evaluation
        reference = copy.deepcopy(model).eval().encode_raman(b.raman[:1], b.mass[:1])
        torch.testing.assert_close(out["raman"][:1], reference)
        # (a plain sum would do nothing: LayerNorm rows sum to a constant)
        (out["raman"] * torch.linspace(-1.0, 1.0, config.latent_dim)).sum().backward()
        assert model.raman_encoder[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="'ir' or 'raman'"):
        model.encode_present("uv", b.raman, b.mass, has_raman)


# the fast training paths (config.fast_train): index_select gathers (float32 path, same values)
# and bf16 autocast (bf16 path)


def _exact_and_fast(**overrides) -> tuple[VibraCLIP, VibraCLIP]:
    config = get_config("tiny", **overrides)
    torch.manual_seed(0)
    exact = VibraCLIP(config.replace(fast_train="off"), graph_output_initializer="glorot_orthogonal")
    fast = VibraCLIP(config.replace(fast_train="float32"))
    fast.load_state_dict(exact.state_dict())
    assert not exact.graph_encoder.fast_blocks and fast.graph_encoder.fast_blocks
    # every path but the exact one keeps the float32 parts (bf16 autocast is the trainer's)
    for value, blocks in (("auto", True), ("on", True), (True, True), (False, False)):
        assert VibraCLIP(config.replace(fast_train=value)).graph_encoder.fast_blocks is blocks
    return exact, fast


def _grads(model: VibraCLIP, batch: Batch, autocast: bool) -> torch.Tensor:
    model.zero_grad()
    torch.manual_seed(1)  # the same head-dropout masks for every model
    with training_autocast("cpu", autocast):
        emb = model(batch)
    assert all(v.dtype == (torch.bfloat16 if autocast else torch.float32) for v in emb.values())
    loss = VibraCLIPLoss("all_pairs")({k: v.float() for k, v in emb.items()}, model.logit_scale())
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_fast_blocks_give_pygs_values_and_gradients(graphs):
    exact, fast = _exact_and_fast()
    batch = _batch(graphs, exact.config, with_geometry=True)
    out_exact, out_fast = exact.eval()(batch), fast.eval()(batch)
    for key in out_exact:  # index_select gathers the same rows: bit-identical forward
        torch.testing.assert_close(out_fast[key], out_exact[key], rtol=0, atol=0)
    g_exact, g_fast = _grads(exact.train(), batch, False), _grads(fast.train(), batch, False)
    # index_add_ sums the backward in another order than index_put_: float32 rounding only
    torch.testing.assert_close(g_fast, g_exact, rtol=1e-4, atol=1e-6)
    assert g_exact.abs().sum() > 0


def test_bf16_training_step_stays_close_to_float32(graphs):
    exact, fast = _exact_and_fast()
    batch = _batch(graphs, exact.config, with_geometry=True)
    seen = []
    hook = fast.graph_encoder.interaction_blocks[0].lin_down.register_forward_hook(
        lambda m, i, o: seen.append(o.dtype))
    g_low = _grads(fast.train(), batch, True)
    hook.remove()
    assert seen == [torch.bfloat16]  # the encoder's matmuls really ran in bf16
    g_exact = _grads(exact.train(), batch, False)
    assert not torch.equal(g_low, g_exact)
    cosine = torch.nn.functional.cosine_similarity(g_low, g_exact, dim=0)
    assert cosine > 0.99, f"bf16 gradient direction off: cosine {cosine:.4f}"
    assert g_low.norm() == pytest.approx(float(g_exact.norm()), rel=0.05)
    with torch.no_grad(), training_autocast("cpu", True):
        low = fast.eval()(batch)
    ref = exact.eval()(batch)
    for key in ref:
        cos = torch.nn.functional.cosine_similarity(low[key].float(), ref[key], dim=1)
        assert cos.min() > 0.995, key


def test_training_autocast_is_off_when_disabled_or_unsupported():
    for device, enabled in (("cpu", False), ("mps", True), ("meta", True)):
        with training_autocast(device, enabled):
            assert not torch.is_autocast_enabled("cpu")
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with training_autocast("cpu", True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_spherical_basis_fast_product_is_the_same_function():
    torch.manual_seed(0)
    basis = SphericalBasis(7, 6, cutoff=5.0)
    dist, angle = 0.8 + 4 * torch.rand(40), math.pi * torch.rand(300)
    idx_kj = torch.randint(0, 40, (300,))
    basis.fast = False
    reference = basis(dist, angle, idx_kj)
    basis.fast = True
    torch.testing.assert_close(basis(dist, angle, idx_kj), reference, rtol=0, atol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = basis(dist, angle, idx_kj)
    # written in bf16 directly: the rounding the next Linear's autocast cast would apply
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low, reference.to(torch.bfloat16), rtol=0, atol=0)


def test_fast_blocks_keep_gradients_with_respect_to_positions(graphs):
    z, pos, batch = _cat(graphs)
    grads = []
    for fast in (False, True):
        enc = _encoder(fast_train=fast)
        p = pos.clone().requires_grad_(True)
        enc(z, p, batch).sum().backward()  # forces: the basis product must stay differentiable
        grads.append(p.grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)
