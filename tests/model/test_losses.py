"""Contrastive losses: hand-computed 2x2 cases, a naive twin, masks, modes, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vibraclip_core.model.losses import (MODE_TERMS, REFERENCE_TARGET_SIMILARITIES,
                                         REFERENCE_WEIGHTS, VibraCLIPLoss, clip_loss, get_logits,
                                         reference_clip_loss, reference_loss_terms,
                                         reference_target_logits, reference_targets)


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
    # rows are L2-normalised and the scale multiplies the cosines: log(1 + e^-4) at scale 4
    assert clip_loss(3 * eye, 0.5 * eye, 4.0).item() == pytest.approx(math.log(1 + math.exp(-4)),
                                                                      abs=1e-6)


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
        # pair_loss="clip" is bit-for-bit the equal-weight mean of the terms it always was
        pairs = {"graph_ir": (emb["graph"], emb["ir"]), "graph_raman": (emb["graph"], emb["raman"]),
                 "ir_raman": (emb["ir"], emb["raman"])}
        old = torch.stack([clip_loss(*pairs[t], s) for t in MODE_TERMS[mode]]).mean()
        assert torch.equal(VibraCLIPLoss(mode, pair_loss="clip")(emb, s), old)
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
    logits = reference_target_logits({"graph": a, "ir": b},
                                     REFERENCE_TARGET_SIMILARITIES["graph_ir"])
    torch.testing.assert_close(logits, (a @ a.T + b @ b.T) / 2)
    targets = reference_targets(logits, 141.0)
    assert torch.allclose(targets.sum(-1), torch.ones(128))
    assert targets.diagonal().min() > 0.9


def test_reference_loss_is_clip_on_dot_products_when_targets_are_one_hot():
    a, b = _layer_norm_embeddings(32, 64, seed=5)
    logits = a @ b.T / 141.0
    labels = torch.arange(32)
    expected = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    assert reference_clip_loss(a, b).item() == pytest.approx(expected.item(), rel=1e-5)
    mask = torch.arange(32) % 3 != 0
    assert reference_clip_loss(a, b, mask=mask).item() == pytest.approx(
        reference_clip_loss(a[mask], b[mask]).item(), rel=1e-6)
    via_module = VibraCLIPLoss("graph_ir", pair_loss="reference")({"graph": a, "ir": b}, 1.0)
    assert via_module.item() == pytest.approx(expected.item(), rel=1e-5)


# The released code's loss by hand (temperature 1): graph G, IR I, Raman R, two molecules
HAND = {"graph": [[1.0, 0.0], [0.0, 1.0]], "ir": [[1.0, 0.0], [1.0, 1.0]],
        "raman": [[0.0, 1.0], [1.0, 0.0]]}


def _h(targets: list[float], logits: list[float]) -> float:
    """-sum_j t_j log softmax(z)_j for one row."""
    lse = math.log(sum(math.exp(z) for z in logits))
    return -sum(t * (z - lse) for t, z in zip(targets, logits))


def test_reference_shared_targets_by_hand():
    emb = {m: torch.tensor(v) for m, v in HAND.items()}
    # G G.T = [[1,0],[0,1]], I I.T = [[1,1],[1,2]], R R.T = [[1,0],[0,1]], I R.T = [[0,1],[1,1]]
    expected = {"graph_ir": [[2 / 2, 1 / 2], [1 / 2, 3 / 2]],
                "graph_centred": [[3 / 3, 1 / 3], [1 / 3, 4 / 3]],
                "all_pairs": [[3 / 4, 2 / 4], [2 / 4, 5 / 4]]}  # + the IR-Raman cross term
    for mode, matrix in expected.items():
        got = reference_target_logits(emb, REFERENCE_TARGET_SIMILARITIES[mode])
        torch.testing.assert_close(got, torch.tensor(matrix))
    # the temperature multiplies the mean similarity before the row softmax
    targets = reference_targets(torch.tensor(expected["all_pairs"]), 2.0)
    t00 = 1 / (1 + math.exp(-2 * 0.25))
    torch.testing.assert_close(targets, torch.tensor([[t00, 1 - t00], [1 / (1 + math.exp(1.5)),
                                                      1 - 1 / (1 + math.exp(1.5))]]))


def test_reference_all_pairs_by_hand_weights_and_one_way_ir_raman():
    emb = {m: torch.tensor(v) for m, v in HAND.items()}
    # one target matrix: row-softmax of [[3, 2], [2, 5]] / 4
    t0 = (1 / (1 + math.exp(-0.25)), 1 - 1 / (1 + math.exp(-0.25)))
    t1 = (1 / (1 + math.exp(0.75)), 1 - 1 / (1 + math.exp(0.75)))
    tt0, tt1 = (t0[0], t1[0]), (t0[1], t1[1])  # rows of its transpose
    # spectrum->graph rows take the targets, graph->spectrum rows their transpose
    g_ir = ((_h(t0, [1, 0]) + _h(t1, [1, 1])) / 2 + (_h(tt0, [1, 1]) + _h(tt1, [0, 1])) / 2) / 2
    g_r = ((_h(t0, [0, 1]) + _h(t1, [1, 0])) / 2 + (_h(tt0, [0, 1]) + _h(tt1, [1, 0])) / 2) / 2
    ir_r = (_h(t0, [0, 1]) + _h(t1, [1, 1])) / 2  # I R.T = [[0, 1], [1, 1]], IR rows only
    terms = VibraCLIPLoss("all_pairs", "reference", temperature=1.0)(emb, 1.0, output_dict=True)
    assert terms["graph_ir"].item() == pytest.approx(g_ir, abs=1e-6)
    assert terms["graph_raman"].item() == pytest.approx(g_r, abs=1e-6)
    assert terms["ir_raman"].item() == pytest.approx(ir_r, abs=1e-6)
    ir_r_both_ways = (ir_r + (_h(tt0, [1, 1]) + _h(tt1, [0, 1])) / 2) / 2
    assert ir_r_both_ways != pytest.approx(ir_r, abs=1e-3)  # one direction is a real choice
    assert terms["total"].item() == pytest.approx(0.4 * g_ir + 0.4 * g_r + 0.2 * ir_r, abs=1e-6)
    assert terms["total"].item() == pytest.approx(0.8148360, abs=1e-6)
    assert terms["total"].item() != pytest.approx((g_ir + g_r + ir_r) / 3, abs=1e-3)
    assert REFERENCE_WEIGHTS["all_pairs"] == {"graph_ir": 0.4, "graph_raman": 0.4,
                                              "ir_raman": 0.2}


# The released loss written out here, independently of loss_modes / losses (their tables are
# what the twin checks): per mode, its pair terms, the similarity matrices whose mean sets the
# shared soft targets, and the weight of each term in the total (LopezGroup-ICIQ/vibraclip).
TWIN_TERMS = {"graph_ir": ("graph_ir",), "graph_centred": ("graph_ir", "graph_raman"),
              "all_pairs": ("graph_ir", "graph_raman", "ir_raman")}
TWIN_TARGETS = {"graph_ir": (("graph", "graph"), ("ir", "ir")),
                "graph_centred": (("graph", "graph"), ("ir", "ir"), ("raman", "raman")),
                "all_pairs": (("graph", "graph"), ("ir", "ir"), ("raman", "raman"),
                              ("ir", "raman"))}
TWIN_WEIGHTS = {"graph_ir": {"graph_ir": 1.0},
                "graph_centred": {"graph_ir": 0.5, "graph_raman": 0.5},
                "all_pairs": {"graph_ir": 0.4, "graph_raman": 0.4, "ir_raman": 0.2}}


def naive_reference(emb: dict[str, torch.Tensor], mode: str, temperature: float,
                    has_ir: torch.Tensor | None = None,
                    has_raman: torch.Tensor | None = None) -> dict[str, float]:
    """Entry-by-entry python twin of VibraCLIPLoss(mode, "reference") with masks."""
    n = len(emb["graph"])
    have = {"graph": [True] * n,
            "ir": [True] * n if has_ir is None else has_ir.tolist(),
            "raman": [True] * n if has_raman is None else has_raman.tolist()}
    e = {m: v.double().tolist() for m, v in emb.items()}
    dot = lambda u, v: sum(x * y for x, y in zip(u, v))
    pairs = TWIN_TARGETS[mode]
    sim = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            vals = [dot(e[x][i], e[y][j]) for x, y in pairs if have[x][i] and have[y][j]]
            sim[i][j] = sum(vals) / len(vals)
    directions = {"graph_ir": ("ir", "graph", True), "graph_raman": ("raman", "graph", True),
                  "ir_raman": ("ir", "raman", False)}
    terms = {}
    for term in TWIN_TERMS[mode]:
        q, k, both = directions[term]
        idx = [i for i in range(n) if have[q][i] and have[k][i]]
        if len(idx) < 2:
            terms[term] = 0.0
            continue
        targets = []
        for i in idx:
            row = [temperature * sim[i][j] for j in idx]
            top = max(row)
            w = [math.exp(v - top) for v in row]
            targets.append([v / sum(w) for v in w])
        transposed = [list(col) for col in zip(*targets)]

        def ce(a: str, b: str, tg: list[list[float]]) -> float:
            return sum(_h(tg[r], [dot(e[a][i], e[b][j]) / temperature for j in idx])
                       for r, i in enumerate(idx)) / len(idx)

        loss = ce(q, k, targets)
        terms[term] = (loss + ce(k, q, transposed)) / 2 if both else loss
    terms["total"] = sum(TWIN_WEIGHTS[mode][t] * terms[t] for t in TWIN_TERMS[mode])
    return terms


def test_the_twin_covers_every_loss_mode():
    assert set(TWIN_TERMS) == set(MODE_TERMS)


@pytest.mark.parametrize("mode", list(TWIN_TERMS))
def test_reference_matches_naive_twin_with_masks(mode):
    g = torch.Generator().manual_seed(6)
    emb = {m: torch.randn(7, 3, generator=g, dtype=torch.float64) for m in ("graph", "ir", "raman")}
    has_ir = torch.tensor([1, 1, 0, 1, 1, 1, 1], dtype=torch.bool)
    has_raman = torch.tensor([1, 0, 1, 1, 0, 1, 1], dtype=torch.bool)
    for masks in ((None, None), (has_ir, None), (None, has_raman), (has_ir, has_raman)):
        ours = VibraCLIPLoss(mode, "reference", temperature=2.0)(emb, 1.0, *masks,
                                                                  output_dict=True)
        twin = naive_reference(emb, mode, 2.0, *masks)
        assert set(ours) == set(twin)
        for name, value in twin.items():
            assert ours[name].item() == pytest.approx(value, rel=1e-9, abs=1e-12), (masks, name)


def test_reference_missing_rows_reach_no_term_nor_the_targets():
    g = torch.Generator().manual_seed(7)
    emb = {m: torch.randn(6, 4, generator=g) for m in ("graph", "ir", "raman")}
    has_raman = torch.tensor([1, 1, 0, 1, 1, 1], dtype=torch.bool)
    loss = VibraCLIPLoss("all_pairs", "reference", temperature=3.0)
    base = loss(emb, 1.0, has_raman=has_raman, output_dict=True)
    for placeholder in (0.0, 1e3, float("nan")):
        raman = emb["raman"].clone()
        raman[2] = placeholder
        raman.requires_grad_(True)
        other = loss({**emb, "raman": raman}, 1.0, has_raman=has_raman, output_dict=True)
        for name in base:
            assert torch.equal(other[name], base[name]), (placeholder, name)
        other["total"].backward()
        assert torch.isfinite(raman.grad).all() and raman.grad[2].abs().sum() == 0
    # the Raman terms equal those of the batch without molecule 2; the graph-IR term keeps it
    keep = has_raman
    sub = loss({m: v[keep] for m, v in emb.items()}, 1.0, output_dict=True)
    for name in ("graph_raman", "ir_raman"):
        assert base[name].item() == pytest.approx(sub[name].item(), rel=1e-5)
    assert base["graph_ir"].item() != pytest.approx(sub["graph_ir"].item(), rel=1e-3)
    # shared target logits: (2, j) and (i, 2) average only the similarities molecule 2 has
    s = reference_target_logits(emb, REFERENCE_TARGET_SIMILARITIES["all_pairs"],
                                {"raman": has_raman})
    gr, ir, ra = emb["graph"], emb["ir"], emb["raman"]
    torch.testing.assert_close(s[2, 0], (gr[2] @ gr[0] + ir[2] @ ir[0] + ir[2] @ ra[0]) / 3)
    torch.testing.assert_close(s[0, 2], (gr[0] @ gr[2] + ir[0] @ ir[2]) / 2)
    torch.testing.assert_close(s[0, 1], (gr[0] @ gr[1] + ir[0] @ ir[1] + ra[0] @ ra[1]
                                         + ir[0] @ ra[1]) / 4)


def test_reference_too_few_molecules_and_bad_masks():
    emb = {m: torch.randn(4, 3, requires_grad=True) for m in ("graph", "ir", "raman")}
    one_raman = torch.tensor([0, 0, 1, 0], dtype=torch.bool)
    terms = reference_loss_terms(emb, "all_pairs", 2.0, has_raman=one_raman)
    assert terms["graph_raman"].item() == 0.0 and terms["ir_raman"].item() == 0.0
    assert terms["graph_ir"].item() > 0
    VibraCLIPLoss("all_pairs", "reference", 2.0)(emb, 1.0, has_raman=one_raman).backward()
    # the lone Raman spectrum still shapes the graph-IR term's targets; the absent ones do not
    assert emb["raman"].grad[~one_raman].abs().sum() == 0
    assert emb["raman"].grad[2].abs().sum() > 0 and emb["graph"].grad.abs().sum() > 0
    with pytest.raises(ValueError, match="has_ir: mask must be a bool"):
        reference_loss_terms(emb, "all_pairs", has_ir=torch.ones(4))
    with pytest.raises(ValueError, match="raman"):
        VibraCLIPLoss("graph_centred", "reference")({"graph": emb["graph"], "ir": emb["ir"]}, 1.0)


def test_reference_soft_targets_by_hand_3x3_with_a_duplicate_molecule():
    # molecules 0 and 1 are the same (equal graph, IR and Raman rows); temperature 2
    g = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    ir = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    raman = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    # G G.T = [[1,1,0],[1,1,0],[0,0,1]], I I.T = [[1,1,1],[1,1,1],[1,1,5]]: mean, times 2
    s = reference_target_logits({"graph": g, "ir": ir}, REFERENCE_TARGET_SIMILARITIES["graph_ir"])
    torch.testing.assert_close(s, torch.tensor([[1.0, 1.0, 0.5], [1.0, 1.0, 0.5],
                                                [0.5, 0.5, 3.0]]))
    e = math.e
    dup = [e / (2 * e + 1), e / (2 * e + 1), 1 / (2 * e + 1)]  # softmax of [2, 2, 1]
    last = [1 / (2 + e**5), 1 / (2 + e**5), e**5 / (2 + e**5)]  # softmax of [1, 1, 6]
    targets = reference_targets(s, 2.0)
    torch.testing.assert_close(targets, torch.tensor([dup, dup, last]))
    # the duplicate takes as much target mass as the molecule itself (one-hot would give it 0)
    assert targets[0, 1] == targets[0, 0] > 0.4
    # loss: IR->graph rows take the targets, graph->IR rows their transpose; logits dot / 2
    ir_to_g = [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.5, 0.5, 1.0]]  # I G.T / 2
    g_to_ir = [list(col) for col in zip(*ir_to_g)]
    cols = [list(col) for col in zip(dup, dup, last)]  # rows of targets.T
    by_hand = (sum(_h(t, z) for t, z in zip([dup, dup, last], ir_to_g)) / 3
               + sum(_h(t, z) for t, z in zip(cols, g_to_ir)) / 3) / 2
    assert reference_clip_loss(g, ir, temperature=2.0).item() == pytest.approx(by_hand, abs=1e-6)
    module = VibraCLIPLoss("graph_ir", "reference", temperature=2.0)({"graph": g, "ir": ir}, 1.0)
    assert module.item() == pytest.approx(by_hand, abs=1e-6)
    one_hot = (F.cross_entropy(torch.tensor(ir_to_g), torch.arange(3))
               + F.cross_entropy(torch.tensor(g_to_ir), torch.arange(3))) / 2
    assert one_hot.item() != pytest.approx(by_hand, abs=1e-2)
    # all_pairs adds R R.T and the IR-Raman cross term I R.T = [[0,0,1],[0,0,1],[2,2,1]]
    s = reference_target_logits({"graph": g, "ir": ir, "raman": raman},
                                REFERENCE_TARGET_SIMILARITIES["all_pairs"])
    torch.testing.assert_close(s, torch.tensor([[3.0, 3.0, 2.0], [3.0, 3.0, 2.0],
                                                [3.0, 3.0, 8.0]]) / 4)
    row0 = [e**1.5 / (2 * e**1.5 + e), e**1.5 / (2 * e**1.5 + e), e / (2 * e**1.5 + e)]
    row2 = [e**1.5 / (2 * e**1.5 + e**4), e**1.5 / (2 * e**1.5 + e**4), e**4 / (2 * e**1.5 + e**4)]
    torch.testing.assert_close(reference_targets(s, 2.0), torch.tensor([row0, row0, row2]))


def test_paper_profile_trains_the_released_loss_as_written_out_by_hand():
    """The `paper` profile's loss on a fixed batch against the released formula computed with
    plain loops: all pairs, dot products / 141, one soft-target matrix (softmax over rows of
    141 x the mean of G G', IR IR', R R' and IR R'), weights 2/5, 2/5, 1/5, IR -> Raman one way."""
    import numpy as np

    from vibraclip_core.config.profiles import get_config
    from vibraclip_core.model.losses import VibraCLIPLoss

    cfg = get_config("paper")
    assert (cfg.loss, cfg.pair_loss) == ("all_pairs", "reference")
    gen = torch.Generator().manual_seed(3)
    emb = {k: 0.08 * torch.randn(5, 4, generator=gen, dtype=torch.float64)
           for k in ("graph", "ir", "raman")}
    t = 141.0
    g, i, r = (emb[k].numpy() for k in ("graph", "ir", "raman"))
    n = len(g)

    def dot(a, b, p, q):
        return sum(a[p][d] * b[q][d] for d in range(a.shape[1]))

    mean_sim = [[(dot(g, g, p, q) + dot(i, i, p, q) + dot(r, r, p, q) + dot(i, r, p, q)) / 4
                 for q in range(n)] for p in range(n)]
    targets = []
    for p in range(n):
        e = [math.exp(t * mean_sim[p][q]) for q in range(n)]
        targets.append([x / sum(e) for x in e])

    def soft_ce(a, b, target_of):  # rows a_p, columns b_q, logits a_p . b_q / t
        total = 0.0
        for p in range(n):
            logits = [dot(a, b, p, q) / t for q in range(n)]
            log_z = math.log(sum(math.exp(x) for x in logits))
            total -= sum(target_of(p, q) * (logits[q] - log_z) for q in range(n))
        return total / n

    fwd = lambda p, q: targets[p][q]  # noqa: E731
    back = lambda p, q: targets[q][p]  # noqa: E731  (the transpose, as released)
    graph_ir = (soft_ce(i, g, fwd) + soft_ce(g, i, back)) / 2
    graph_raman = (soft_ce(r, g, fwd) + soft_ce(g, r, back)) / 2
    ir_raman = soft_ce(i, r, fwd)
    by_hand = 0.4 * graph_ir + 0.4 * graph_raman + 0.2 * ir_raman
    ours = VibraCLIPLoss(cfg.loss, pair_loss=cfg.pair_loss)(emb, 1.0)  # no learnable scale
    assert float(ours) == pytest.approx(by_hand, rel=1e-9)
    assert np.isfinite(by_hand) and by_hand > 0
