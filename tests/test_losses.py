"""Contrastive losses: hand-computed 2x2 cases, a naive twin, masks, modes, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vibraclip_core.losses import (
    MODE_TERMS, VibraCLIPLoss, clip_loss, get_logits, reference_clip_loss, reference_targets,
)


def naive_clip_loss(a: torch.Tensor, b: torch.Tensor, scale: float) -> float:
    """Row-by-row python twin of clip_loss."""
    a = [r / r.norm() for r in a.double()]
    b = [r / r.norm() for r in b.double()]
    n = len(a)
    sim = [[float(scale * (a[i] @ b[j])) for j in range(n)] for i in range(n)]
    a_to_b = sum(math.log(sum(math.exp(s) for s in sim[i])) - sim[i][i] for i in range(n)) / n
    b_to_a = sum(math.log(sum(math.exp(sim[i][j]) for i in range(n))) - sim[j][j]
                 for j in range(n)) / n
    return (a_to_b + b_to_a) / 2


def test_identity_2x2_by_hand():
    eye = torch.eye(2)
    # logits [[1, 0], [0, 1]]: each row and column gives -log(e / (e + 1)) = log(1 + e^-1)
    expected = math.log(1 + math.exp(-1))  # 0.31326168751822286
    assert clip_loss(eye, eye, 1.0).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.3132617, abs=1e-7)


def test_asymmetric_2x2_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[3.0, 3.0], [0.0, 0.5]])  # unit rows: [1, 1]/sqrt2 and [0, 1]
    r = math.sqrt(2)
    # scale 2: logits a->b = [[sqrt2, 0], [sqrt2, 2]], b->a = its transpose [[sqrt2, sqrt2], [0, 2]]
    a_to_b = (math.log(1 + math.exp(-r)) + math.log(1 + math.exp(r - 2))) / 2
    b_to_a = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    expected = (a_to_b + b_to_a) / 2  # 0.4506...
    assert clip_loss(a, b, 2.0).item() == pytest.approx(expected, abs=1e-6)
    assert clip_loss(a, b, torch.tensor(2.0)).item() == pytest.approx(expected, abs=1e-6)


def test_matches_naive_twin():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    assert clip_loss(a, b, 3.0).item() == pytest.approx(naive_clip_loss(a, b, 3.0), abs=1e-5)
    logits_ab, logits_ba = get_logits(a, b, 3.0)
    assert torch.equal(logits_ab.T, logits_ba)
    assert logits_ab.abs().max() <= 3.0 + 1e-5  # cosine similarities times the scale


def test_aligned_beats_shuffled():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(16, 32, generator=g)
    b = a + 0.1 * torch.randn(16, 32, generator=g)
    shuffled = b[torch.roll(torch.arange(16), 1)]
    aligned_loss, shuffled_loss = clip_loss(a, b, 10.0), clip_loss(a, shuffled, 10.0)
    assert aligned_loss < 0.05 < math.log(16) < shuffled_loss


def test_mask_equals_sub_batch():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(10, 6, generator=g), torch.randn(10, 6, generator=g)
    mask = torch.tensor([1, 0, 1, 1, 0, 1, 1, 0, 0, 1], dtype=torch.bool)
    masked = clip_loss(a, b, 5.0, mask)
    assert masked.item() == pytest.approx(clip_loss(a[mask], b[mask], 5.0).item(), abs=1e-6)
    assert masked.item() == pytest.approx(naive_clip_loss(a[mask], b[mask], 5.0), abs=1e-5)
    assert masked.item() != pytest.approx(clip_loss(a, b, 5.0).item(), abs=1e-3)


@pytest.mark.parametrize("keep", [0, 1])
def test_too_few_samples_give_attached_zero(keep):
    a = torch.randn(4, 3, requires_grad=True)
    b = torch.randn(4, 3, requires_grad=True)
    mask = torch.zeros(4, dtype=torch.bool)
    mask[:keep] = True
    loss = clip_loss(a, b, 2.0, mask)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(a.grad, torch.zeros_like(a)) and torch.equal(b.grad, torch.zeros_like(b))
    assert reference_clip_loss(a, b, mask=mask).item() == 0.0


def test_bad_mask_is_named():
    with pytest.raises(ValueError, match="clip_loss: mask must be a bool"):
        clip_loss(torch.randn(3, 2), torch.randn(3, 2), 1.0, torch.ones(3))


def test_gradient_reaches_both_inputs_and_scale():
    a = torch.randn(5, 4, requires_grad=True)
    b = torch.randn(5, 4, requires_grad=True)
    log_scale = torch.tensor(1.0, requires_grad=True)
    clip_loss(a, b, log_scale.exp()).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0 and log_scale.grad != 0


def _embeddings(n: int = 9, d: int = 8, seed: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(n, d, generator=g) for m in ("graph", "ir", "raman")}


def test_modes_are_the_stated_averages():
    emb, s = _embeddings(), 4.0
    g_ir = clip_loss(emb["graph"], emb["ir"], s)
    g_r = clip_loss(emb["graph"], emb["raman"], s)
    ir_r = clip_loss(emb["ir"], emb["raman"], s)
    expected = {"graph_ir": g_ir, "graph_centred": (g_ir + g_r) / 2,
                "all_pairs": (g_ir + g_r + ir_r) / 3}
    for mode, value in expected.items():
        assert VibraCLIPLoss(mode)(emb, s).item() == pytest.approx(value.item(), abs=1e-6)
    terms = VibraCLIPLoss("all_pairs")(emb, s, output_dict=True)
    assert set(terms) == {"graph_ir", "graph_raman", "ir_raman", "total"}
    assert terms["ir_raman"].item() == pytest.approx(ir_r.item(), abs=1e-6)
    assert set(VibraCLIPLoss("graph_ir")(emb, s, output_dict=True)) == {"graph_ir", "total"}


def test_missing_modalities_only_enter_their_terms():
    emb, s = _embeddings(), 4.0
    has_ir = torch.tensor([1, 1, 0, 1, 1, 1, 0, 1, 1], dtype=torch.bool)
    has_raman = torch.tensor([1, 0, 1, 1, 1, 0, 1, 1, 1], dtype=torch.bool)
    terms = VibraCLIPLoss("all_pairs")(emb, s, has_ir, has_raman, output_dict=True)
    both = has_ir & has_raman
    assert terms["graph_ir"].item() == pytest.approx(
        clip_loss(emb["graph"][has_ir], emb["ir"][has_ir], s).item(), abs=1e-6)
    assert terms["graph_raman"].item() == pytest.approx(
        clip_loss(emb["graph"][has_raman], emb["raman"][has_raman], s).item(), abs=1e-6)
    assert terms["ir_raman"].item() == pytest.approx(
        clip_loss(emb["ir"][both], emb["raman"][both], s).item(), abs=1e-6)
    # only one mask given: the IR-Raman term uses it alone
    only_ir = VibraCLIPLoss("all_pairs")(emb, s, has_ir=has_ir, output_dict=True)
    assert only_ir["ir_raman"].item() == pytest.approx(
        clip_loss(emb["ir"][has_ir], emb["raman"][has_ir], s).item(), abs=1e-6)


def test_unknown_mode_and_missing_embeddings_are_named():
    with pytest.raises(ValueError, match="graph_centred"):
        VibraCLIPLoss("graph_only")
    with pytest.raises(ValueError, match="pair_loss"):
        VibraCLIPLoss("all_pairs", pair_loss="siglip")
    emb = _embeddings()
    del emb["raman"]
    with pytest.raises(ValueError, match="raman"):
        VibraCLIPLoss("graph_centred")(emb, 1.0)
    assert set(MODE_TERMS) == {"graph_ir", "graph_centred", "all_pairs"}


def _layer_norm_embeddings(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    return F.layer_norm(a, (d,)), F.layer_norm(a + b, (d,))  # correlated, like trained pairs


def test_reference_targets_are_nearly_one_hot():
    a, b = _layer_norm_embeddings(128, 861, seed=4)  # the paper's batch and latent sizes
    targets = reference_targets([a @ a.T, b @ b.T], 1.0 / 141.0)
    assert torch.allclose(targets.sum(-1), torch.ones(128))
    assert targets.diagonal().min() > 0.9


def test_reference_loss_is_clip_on_dot_products_when_targets_are_one_hot():
    a, b = _layer_norm_embeddings(32, 64, seed=5)
    logits = a @ b.T / 141.0
    labels = torch.arange(32)
    expected = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    assert reference_clip_loss(a, b).item() == pytest.approx(expected.item(), rel=1e-5)
    soft = reference_clip_loss(a, b, target_temperature=141.0)  # divided: softer targets
    assert soft.item() > expected.item()
    mask = torch.arange(32) % 3 != 0
    assert reference_clip_loss(a, b, mask=mask).item() == pytest.approx(
        reference_clip_loss(a[mask], b[mask]).item(), rel=1e-6)
    via_module = VibraCLIPLoss("graph_ir", pair_loss="reference")({"graph": a, "ir": b}, 1.0)
    assert via_module.item() == pytest.approx(expected.item(), rel=1e-5)
