"""Tests for vibraclip_core.retrieval.scores: known answers and naive twins of the chunked paths."""

import math

import numpy as np
import pytest
import torch

from vibraclip_core.retrieval import metrics as M
from vibraclip_core.retrieval import scores as R


def _naive_rank(scores: np.ndarray, query_ids: list[str], library_ids: list[str]) -> list[int]:
    """Python loop: walk the sorted list, skip the true molecule's duplicates, stop at its first."""
    ranks = []
    for i, qid in enumerate(query_ids):
        true_scores = [s for s, lid in zip(scores[i], library_ids) if lid == qid]
        if not true_scores:
            ranks.append(-1)
            continue
        best = max(true_scores)
        ranks.append(sum(1 for s, lid in zip(scores[i], library_ids) if lid != qid and s > best))
    return ranks


def _unit(*coords: float, d: int = 6) -> torch.Tensor:
    v = torch.zeros(d)
    v[: len(coords)] = torch.tensor(coords)
    return v


def test_normalize_rows_unit_and_zero_row_stays_zero():
    x = R.normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert torch.allclose(x, torch.tensor([[0.6, 0.8], [0.0, 0.0]], dtype=x.dtype))


def test_topk_known_answer():
    library = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]])
    query = torch.tensor([[2.0, 0.1], [0.0, -3.0]])
    scores, idx = R.topk_chunked(query, library, k=2)
    assert idx.tolist() == [[0, 3], [0, 2]]  # rows 0 and 2 tie at cos 0: lower index first
    assert scores[0, 0] == pytest.approx(2.0 / math.hypot(2.0, 0.1), abs=1e-6)
    assert scores[1].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)  # cos with rows 0 and 2 both 0


def test_topk_ties_lowest_index_first_also_at_the_kth_place():
    library = torch.tensor([[1.0, 0.0]] * 5 + [[0.0, 1.0]])  # rows 0-4 tie exactly
    query = torch.tensor([[1.0, 0.0]])
    _, idx = R.topk_chunked(query, library[[5, 4, 3, 2, 1, 0]], k=3)
    assert idx.tolist() == [[1, 2, 3]]
    _, idx = R.topk_chunked(query, library, k=3)
    assert idx.tolist() == [[0, 1, 2]]
    _, idx = R.topk_chunked(query, library[[5, 4, 3, 2, 1, 0]], k=6)  # k == n: no cut at all
    assert idx.tolist() == [[1, 2, 3, 4, 5, 0]]


def test_topk_chunked_equals_full_argsort():
    g = torch.Generator().manual_seed(0)
    query, library = torch.randn(37, 16, generator=g), torch.randn(200, 16, generator=g)
    scores, idx = R.topk_chunked(query, library, k=10, chunk=8)
    full = R.normalize(query) @ R.normalize(library).T
    order = torch.argsort(full, dim=1, descending=True, stable=True)[:, :10]
    assert torch.equal(idx, order)
    assert torch.allclose(scores, full.gather(1, order), atol=1e-6)


def test_topk_mask_excludes_and_pads_with_minus_one():
    library = torch.eye(4)
    query = torch.tensor([[1.0, 0.5, 0.2, 0.1]])
    mask = torch.tensor([[False, True, False, True]])
    scores, idx = R.topk_chunked(query, library, k=3, mask=mask)
    assert idx.tolist() == [[1, 3, -1]] and scores[0, 2] == float("-inf")
    _, idx = R.topk_chunked(query, library, k=2, mask=lambda a, b: mask[a:b])
    assert idx.tolist() == [[1, 3]]


def test_rank_of_truth_duplicates_count_once_and_equal_naive_loop():
    rng = np.random.default_rng(1)
    library_ids = [f"m{j}" for j in range(40)] + ["m3", "m3", "m7", "m11"]
    query_ids = [f"m{j}" for j in rng.integers(0, 40, size=23)]
    lib = torch.as_tensor(rng.normal(size=(len(library_ids), 8)), dtype=torch.float32)
    q = torch.as_tensor(rng.normal(size=(23, 8)), dtype=torch.float32)
    ranks = R.rank_of_truth(q, lib, query_ids, library_ids, chunk=5)
    full = (R.normalize(q) @ R.normalize(lib).T).numpy()
    assert ranks.tolist() == _naive_rank(full, query_ids, library_ids)


def test_rank_of_truth_known_answer_duplicate_truth_and_wrong_duplicates():
    library_ids = ["A", "B", "A", "C", "C"]
    library = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [1.0, 0.0], [1.0, 0.0]])
    # for query "A" along x: C, C > A(row 0) > B > A(row 2); the two C rows are counted as two
    ranks = R.rank_of_truth(torch.tensor([[1.0, 0.0]]), library, ["A"], library_ids)
    assert ranks.tolist() == [2]
    ranks = R.rank_of_truth(torch.tensor([[0.0, 1.0]]), library, ["A"], library_ids)
    assert ranks.tolist() == [0]  # best true entry is row 2 (y=0.3); B (0.2) is below it


def test_rank_of_truth_missing_identity_raises_naming_it_or_ignores():
    library = torch.eye(3)
    with pytest.raises(ValueError, match="'CCO'"):
        R.rank_of_truth(torch.eye(3)[:2], library, ["C", "CCO"], ["C", "O", "N"])
    ranks = R.rank_of_truth(torch.eye(3)[:2], library, ["C", "CCO"], ["C", "O", "N"],
                            missing="ignore")
    assert ranks.tolist() == [0, -1]
    # the metrics leave the missing query out: one ranked query, found first
    assert M.topk_accuracy(ranks, 1) == 1.0 and M.mean_reciprocal_rank(ranks) == 1.0


def _embed_cosines(c_g_ir: list[float], c_g_ra: list[float], c_ir_ra: list[float]):
    """Unit vectors with exactly these cosines: ir_q = e0, raman_q = e1, one candidate per entry."""
    d = 4 + 2 * len(c_g_ir)
    ir_q, raman_q = _unit(1.0, d=d)[None], _unit(0.0, 1.0, d=d)[None]
    g_lib, ir_lib = torch.zeros(len(c_g_ir), d), torch.zeros(len(c_g_ir), d)
    for j, (a, b, c) in enumerate(zip(c_g_ir, c_g_ra, c_ir_ra)):
        g_lib[j, 0], g_lib[j, 1], g_lib[j, 4 + 2 * j] = a, b, math.sqrt(1 - a * a - b * b)
        ir_lib[j, 1], ir_lib[j, 5 + 2 * j] = c, math.sqrt(1 - c * c)
    return g_lib, ir_q, raman_q, ir_lib


def _naive_eq6(g_lib, ir_q, raman_q, ir_lib) -> list[list[float]]:
    """Eq. 6 per element in plain Python: signed cube root of the three cosines' product."""
    def cos(u, v):
        u, v = u.tolist(), v.tolist()
        return sum(x * y for x, y in zip(u, v)) / math.sqrt(sum(x * x for x in u) * sum(
            y * y for y in v))

    out = []
    for i in range(len(ir_q)):
        row = []
        for j in range(len(g_lib)):
            p = cos(g_lib[j], ir_q[i]) * cos(g_lib[j], raman_q[i]) * cos(ir_lib[j], raman_q[i])
            row.append(math.copysign(abs(p) ** (1 / 3), p))
        out.append(row)
    return out


def test_paper_score_is_eq6_and_equals_naive_loop():
    g = torch.Generator().manual_seed(5)
    g_lib, ir_lib = torch.randn(9, 5, generator=g), 3 * torch.randn(9, 5, generator=g)
    ir_q, raman_q = torch.randn(4, 5, generator=g), 0.2 * torch.randn(4, 5, generator=g)
    s = R.score_paper(g_lib, ir_q, raman_q, ir_lib)
    assert s.shape == (4, 9) and not torch.isnan(s).any()
    assert (s < 0).any() and (s > 0).any()  # both signs occur, so the signed root is exercised
    np.testing.assert_allclose(s.numpy(), _naive_eq6(g_lib, ir_q, raman_q, ir_lib), atol=1e-5)
    # the third term reads the candidates' IR against the query's Raman, not the other way round
    swapped = R.score_paper(g_lib, raman_q, ir_q, ir_lib)
    assert not torch.allclose(s, swapped, atol=1e-3)


def test_paper_score_quirk_two_negative_cosines_outrank_and_geomean_variant_does_not():
    # candidate 0 has two negative cosines, candidate 1 is uniformly mediocre
    g_lib, ir_q, raman_q, ir_lib = _embed_cosines([-0.9, 0.3], [-0.1, 0.3], [0.5, 0.3])
    eq6 = R.score_paper(g_lib, ir_q, raman_q, ir_lib)[0]
    assert eq6.tolist() == pytest.approx([0.045 ** (1 / 3), 0.3], abs=1e-5)
    assert eq6[0] > eq6[1]  # the published quirk: (-0.9) * (-0.1) * 0.5 > 0.3 ** 3
    ours = R.score_paper_terms_geomean(g_lib, ir_q, raman_q, ir_lib)[0]
    assert ours.tolist() == pytest.approx([(0.05 * 0.45 * 0.75) ** (1 / 3), 0.65], abs=1e-5)
    assert ours[0] < ours[1]
    # an odd number of negative cosines: the real cube root, negative and NaN-free
    g_lib, ir_q, raman_q, ir_lib = _embed_cosines([-0.5], [0.5], [0.5])
    assert R.score_paper(g_lib, ir_q, raman_q, ir_lib)[0].tolist() == pytest.approx([-0.5],
                                                                                    abs=1e-5)
    # the geomean variant is monotone in each cosine: raise one at a time from the same point
    base = [-0.9, -0.1, 0.5]
    for term in range(3):
        cols = [[v] * 5 for v in base]
        cols[term] = list(np.linspace(-0.95, 0.95, 5)) if term == 2 else list(
            np.linspace(-0.4, 0.4, 5))
        s = R.score_paper_terms_geomean(*_embed_cosines(*cols))[0]
        assert not torch.isnan(s).any() and (torch.diff(s) > 0).all(), (term, s)


def test_library_score_formula_and_single():
    g_lib, ir_q, raman_q, _ = _embed_cosines([-0.9, 0.5], [-0.1, 0.2], [0.0, 0.0])
    s = R.score_library(g_lib, ir_q, raman_q)[0]
    assert s.tolist() == pytest.approx([math.sqrt(0.05 * 0.45), math.sqrt(0.75 * 0.6)], abs=1e-6)
    assert R.cosine_scorer(ir_q, g_lib)(0, 1)[0].tolist() == pytest.approx([-0.9, 0.5], abs=1e-6)


def test_paper_and_library_modes_rank_differently():
    # candidate 0: best structure match; candidate 1: weaker structure match, but its IR spectrum
    # embedding agrees strongly with the query's Raman, which only the paper mode looks at
    g_lib, ir_q, raman_q, ir_lib = _embed_cosines([0.6, 0.5], [0.6, 0.5], [-0.5, 0.95])
    _, paper = R.topk_scored(R.paper_scorer(g_lib, ir_q, raman_q, ir_lib), 1, k=2)
    _, library = R.topk_scored(R.library_scorer(g_lib, ir_q, raman_q), 1, k=2)
    assert paper.tolist() == [[1, 0]] and library.tolist() == [[0, 1]]


def test_scorers_chunked_equal_full_matrix():
    g = torch.Generator().manual_seed(3)
    g_lib, ir_lib = torch.randn(50, 12, generator=g), torch.randn(50, 12, generator=g)
    ir_q, raman_q = torch.randn(21, 12, generator=g), torch.randn(21, 12, generator=g)
    for full, fn in [(R.score_paper(g_lib, ir_q, raman_q, ir_lib),
                      R.paper_scorer(g_lib, ir_q, raman_q, ir_lib)),
                     (R.score_paper_terms_geomean(g_lib, ir_q, raman_q, ir_lib),
                      R.paper_terms_geomean_scorer(g_lib, ir_q, raman_q, ir_lib)),
                     (R.score_library(g_lib, ir_q, raman_q),
                      R.library_scorer(g_lib, ir_q, raman_q))]:
        ids = [str(j % 45) for j in range(50)]
        q_ids = [str(j) for j in range(21)]
        ranks = R.rank_of_truth_scored(fn, q_ids, ids, chunk=4)
        assert ranks.tolist() == _naive_rank(full.numpy(), q_ids, ids)
        _, idx = R.topk_scored(fn, 21, k=7, chunk=4)
        assert torch.equal(idx, torch.argsort(full, dim=1, descending=True, stable=True)[:, :7])
        np.testing.assert_allclose(torch.cat([fn(a, min(a + 4, 21)) for a in range(0, 21, 4)]),
                                   full.numpy(), atol=1e-6)


def test_mode_scorers_are_the_cosine_and_library_scores():
    g = torch.Generator().manual_seed(4)
    g_lib, ir_q, raman_q = (torch.randn(n, 6, generator=g) for n in (11, 3, 3))
    fns = R.mode_scorers(g_lib, {"ir": ir_q, "raman": raman_q})
    assert list(fns) == ["ir", "raman", "ir+raman library"]
    unit = torch.nn.functional.normalize
    torch.testing.assert_close(fns["ir"](0, 3), unit(ir_q, dim=1) @ unit(g_lib, dim=1).T)
    torch.testing.assert_close(fns["raman"](0, 3), unit(raman_q, dim=1) @ unit(g_lib, dim=1).T)
    torch.testing.assert_close(fns["ir+raman library"](0, 3), R.score_library(g_lib, ir_q, raman_q))
    assert list(R.mode_scorers(g_lib, {"raman": raman_q})) == ["raman"]
    with pytest.raises(ValueError, match="'ir' and/or 'raman'"):
        R.mode_scorers(g_lib, {"graph": ir_q})


def test_mass_filter_excludes_and_changes_ranking():
    query_mass, library_mass = np.array([46.07]), np.array([44.05, 46.07, 46.03, 60.1])
    mask = R.mass_filter_mask(query_mass, library_mass, tol_da=0.05)
    assert mask.tolist() == [[False, True, True, False]]
    library = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.9, 0.1]])
    query = torch.tensor([[1.0, 0.2]])
    ids = ["CC=O", "CCO", "COC", "CCCO"]
    assert R.rank_of_truth(query, library, ["CCO"], ids).tolist() == [2]
    filt = R.mass_filter(query_mass, library_mass, 0.05)
    assert R.rank_of_truth(query, library, ["CCO"], ids, mask=filt).tolist() == [0]
    _, idx = R.topk_chunked(query, library, k=2, mask=filt)
    assert idx.tolist() == [[1, 2]]


def test_filter_that_removes_the_truth_gives_rank_n():
    mask = torch.tensor([[False, True, True]])
    assert R.rank_of_truth(torch.eye(3)[:1], torch.eye(3), ["a"], ["a", "b", "c"],
                           mask=mask).tolist() == [3]


def test_formula_filter():
    mask = R.formula_filter_mask(["C2H6O", "CH4"], ["CH4", "C2H6O", "C2H4O", "C2H6O"])
    assert mask.tolist() == [[False, True, False, True], [True, False, False, False]]
