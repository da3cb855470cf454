"""Metrics on hand-computed cases, and against a plain-loop transcription of the definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recstack.evaluation import metrics as m

# Two users, k = 4. User 0: relevant {1, 2, 3}, hits at ranks 1 and 3.
# User 1: relevant {7}, no hit. User 2: no relevant item (left out of every mean).
RECOMMENDED = np.array([[1, 9, 2, 8], [4, 5, 6, -1], [0, 1, 2, 3]])
RELEVANT = [{1, 2, 3}, {7}, set()]


def test_precision_recall_hit_rate_by_hand():
    assert m.precision_at_k(RECOMMENDED, RELEVANT, 4) == pytest.approx((2 / 4 + 0) / 2)
    assert m.recall_at_k(RECOMMENDED, RELEVANT, 4) == pytest.approx((2 / 3 + 0) / 2)
    assert m.hit_rate_at_k(RECOMMENDED, RELEVANT, 4) == pytest.approx(0.5)
    assert m.mrr_at_k(RECOMMENDED, RELEVANT, 4) == pytest.approx(0.5)
    # only the first item counts at k = 1
    assert m.precision_at_k(RECOMMENDED, RELEVANT, 1) == pytest.approx(0.5)
    assert m.recall_at_k(RECOMMENDED, RELEVANT, 1) == pytest.approx((1 / 3) / 2)


def test_ndcg_by_hand():
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m.ndcg_at_k(RECOMMENDED, RELEVANT, 4) == pytest.approx((dcg / idcg) / 2)
    # IDCG stops at k: with k = 2 and 3 relevant, the ideal is two hits
    ideal_two = 1 + 1 / math.log2(3)
    assert m.ndcg_at_k(RECOMMENDED, RELEVANT, 2) == pytest.approx((1 / ideal_two) / 2)


def test_both_map_variants_by_hand():
    precision_sum = 1 / 1 + 2 / 3  # hits at ranks 1 and 3
    assert m.map_at_k(RECOMMENDED, RELEVANT, 4) == pytest.approx(precision_sum / 3 / 2)
    assert m.map_at_k_all_relevant(RECOMMENDED, RELEVANT, 4) == pytest.approx(precision_sum / 3 / 2)
    # k = 2: one hit at rank 1; min(|rel|, k) = 2 but |rel| = 3
    assert m.map_at_k(RECOMMENDED, RELEVANT, 2) == pytest.approx(1 / 2 / 2)
    assert m.map_at_k_all_relevant(RECOMMENDED, RELEVANT, 2) == pytest.approx(1 / 3 / 2)


def test_perfect_list_scores_one_everywhere():
    rec = np.array([[3, 4, 5]])
    rel = [{3, 4, 5, 6, 7}]
    assert m.precision_at_k(rec, rel, 3) == 1.0
    assert m.ndcg_at_k(rec, rel, 3) == pytest.approx(1.0)
    assert m.map_at_k(rec, rel, 3) == pytest.approx(1.0)
    assert m.map_at_k_all_relevant(rec, rel, 3) == pytest.approx(3 / 5)
    assert m.recall_at_k(rec, rel, 3) == pytest.approx(3 / 5)


def test_sparse_and_set_inputs_agree():
    rel_sparse = m.relevance_matrix(RELEVANT, n_items=10)
    assert rel_sparse.shape == (3, 10)
    for fn in (m.precision_at_k, m.recall_at_k, m.ndcg_at_k, m.map_at_k, m.mrr_at_k):
        assert fn(RECOMMENDED, rel_sparse, 4) == pytest.approx(fn(RECOMMENDED, RELEVANT, 4))


def test_relevant_items_beyond_recommended_range_and_duplicates():
    rel = sp.csr_matrix(([2.0, 5.0, 1.0], ([0, 0, 0], [50, 3, 3])), shape=(1, 60))
    rel.sum_duplicates()
    h = m.ranking_hits(np.array([[3, 50]]), rel)
    assert h.hits.tolist() == [[True, True]]
    assert h.n_relevant.tolist() == [2]


def test_errors_are_clear():
    with pytest.raises(ValueError, match="2-D"):
        m.precision_at_k(np.array([1, 2]), [{1}], 2)
    with pytest.raises(ValueError, match="rows"):
        m.precision_at_k(np.array([[1, 2]]), [{1}, {2}], 2)
    with pytest.raises(ValueError, match="at least 1"):
        m.precision_at_k(np.array([[1, 2]]), [{1}], 0)


def test_no_evaluable_user_gives_zero():
    assert m.ndcg_at_k(np.array([[1, 2]]), [set()], 2) == 0.0
    assert m.intra_list_diversity(np.array([[1]]), np.eye(3)) == 0.0


def _reference(recommended, relevant, k):
    """The definitions as written in Microsoft Recommenders' python_evaluation, as loops."""
    rows = [(list(r[:k]), rel) for r, rel in zip(recommended, relevant, strict=True) if rel]
    out = {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0, "map_all": 0.0}
    for rec, rel in rows:
        ranks = [i + 1 for i, item in enumerate(rec) if item >= 0 and item in rel]
        out["precision"] += len(ranks) / k
        out["recall"] += len(ranks) / len(rel)
        dcg = sum(1 / math.log1p(r) for r in ranks)
        idcg = sum(1 / math.log1p(r) for r in range(1, min(len(rel), k) + 1))
        out["ndcg"] += dcg / idcg
        rr = sum((n + 1) / r for n, r in enumerate(ranks))
        out["map"] += rr / min(len(rel), k)
        out["map_all"] += rr / len(rel)
    return {key: value / len(rows) for key, value in out.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_metrics_match_the_reference_loops(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, depth = 40, 30, 12
    recommended = np.stack([rng.permutation(n_items)[:depth] for _ in range(n_users)])
    recommended[rng.random(recommended.shape) < 0.1] = -1
    relevant = [
        set(rng.choice(n_items, rng.integers(0, 15), replace=False)) for _ in range(n_users)
    ]
    for k in (1, 5, 10):
        ref = _reference(recommended, relevant, k)
        assert m.precision_at_k(recommended, relevant, k) == pytest.approx(ref["precision"])
        assert m.recall_at_k(recommended, relevant, k) == pytest.approx(ref["recall"])
        assert m.ndcg_at_k(recommended, relevant, k) == pytest.approx(ref["ndcg"])
        assert m.map_at_k(recommended, relevant, k) == pytest.approx(ref["map"])
        assert m.map_at_k_all_relevant(recommended, relevant, k) == pytest.approx(ref["map_all"])
        table = m.ranking_metrics(m.ranking_hits(recommended, relevant), k)
        assert table["ndcg"] == pytest.approx(ref["ndcg"])
        assert table["map_all_relevant"] == pytest.approx(ref["map_all"])


def test_coverage_novelty_popularity_by_hand():
    rec = np.array([[0, 1, 2], [0, 3, -1]])
    assert m.catalogue_coverage(rec, n_items=8) == pytest.approx(4 / 8)
    counts = np.array([4, 2, 1, 1, 0])  # shares 1/2, 1/4, 1/8, 1/8
    bits = [1, 2, 3, 1, 3]  # items 0, 1, 2, 0, 3
    assert m.novelty(rec, counts) == pytest.approx(np.mean(bits))
    # ARP: list 0 mean (4+2+1)/3, list 1 mean (4+1)/2
    assert m.average_recommended_popularity(rec, counts) == pytest.approx((7 / 3 + 5 / 2) / 2)
    assert m.recommended_popularity(rec, counts).tolist() == [4, 2, 1, 4, 1]


def test_intra_list_diversity_dense_and_sparse_features_agree():
    vectors = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [0.0, 0.0]])
    rec = np.array([[0, 1, 2], [1, 3, -1]])
    c = 1 / math.sqrt(2)
    list0 = 1 - (c + 0 + c) / 3
    list1 = 1 - 0.0  # zero vector: similarity 0
    expected = (list0 + list1) / 2
    assert m.intra_list_diversity(rec, vectors) == pytest.approx(expected)
    assert m.intra_list_diversity(rec, sp.csr_matrix(vectors)) == pytest.approx(expected)
