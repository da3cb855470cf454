"""A sparse-scoring retriever's candidates equal those read from its dense score rows."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recstack.models.item_knn import ItemKNNRecommender
from recstack.models.protocols import SparseScoring
from recstack.models.ranking.candidates import SparseRows, generate, opinion, seen_keys
from recstack.testing.data import planted_dataset


class Dense:  # neither SparseScoring nor a FactorRecommender
    """The same retriever seen only through its dense ``score``."""

    def __init__(self, model):
        self.model, self.n_items = model, model.n_items

    def score(self, histories, users=None):
        return self.model.score(histories, users)


@pytest.fixture(scope="module")
def knn():
    return ItemKNNRecommender(k_neighbors=10).fit(planted_dataset())


def histories(knn, rng):
    """Real rows plus the awkward ones: empty, one item, most of the catalogue seen."""
    data = planted_dataset()
    rows = [data.matrix[u] for u in rng.choice(data.n_users, 40, replace=False)]
    n = knn.n_items
    one = sp.csr_matrix((np.ones(1, np.float32), ([0], [3])), shape=(1, n))
    most = sp.csr_matrix(
        (np.ones(n - 4, np.float32), (np.zeros(n - 4, int), np.arange(4, n))), shape=(1, n)
    )
    return sp.vstack([*rows, sp.csr_matrix((1, n)), one, most]).tocsr()


@pytest.mark.parametrize("depth", [1, 7, 30, 10_000])
def test_sparse_lists_and_z_scores_equal_the_dense_ones(knn, depth):
    assert isinstance(knn, SparseScoring) and not isinstance(Dense(knn), SparseScoring)
    h = histories(knn, np.random.default_rng(depth))
    users = np.arange(h.shape[0])
    (idx, val), z_sparse = opinion(knn, h, users, depth)
    (idx_d, val_d), z_dense = opinion(Dense(knn), h, users, depth)
    np.testing.assert_array_equal(idx, idx_d)
    np.testing.assert_array_equal(val, val_d)
    assert (idx[-3] == -1).all()  # an empty history: every item at the floor, none proposed
    rows = np.repeat(users, 25)
    items = np.random.default_rng(0).integers(0, knn.n_items, len(rows))
    items[:5] = h[0].indices[:5]  # seen items: z 0 either way
    np.testing.assert_allclose(z_sparse(rows, items), z_dense(rows, items), rtol=1e-5, atol=1e-6)
    assert np.all(z_sparse(rows[:5], items[:5]) == 0.0)


def test_generated_candidates_with_requested_items_match_dense(knn):
    h = histories(knn, np.random.default_rng(1))[:5]
    users = np.arange(5)
    extra = np.tile(np.arange(0, 60, 3), (5, 1))
    a = generate([knn], h, users, 20, standardised=True, extra=extra)
    b = generate([Dense(knn)], h, users, 20, standardised=True, extra=extra)
    for field in ("rows", "items", "rank", "score", "present"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_allclose(a.z, b.z, rtol=1e-5, atol=1e-6)


def test_negative_scores_fall_back_to_the_dense_rule():
    scores = sp.csr_matrix(np.array([[0.0, -1.0, 2.0, 0.0]], dtype=np.float32))
    rows = SparseRows.of(scores, seen_keys(sp.csr_matrix((1, 4))))
    assert rows.lists(3) is None  # 0 is above the floor: ties at 0 would be listed
    seen_one = SparseRows.of(scores, seen_keys(sp.csr_matrix(np.array([[0, 0, 1, 0]], np.float32))))
    assert seen_one.n_unseen.tolist() == [3] and seen_one.values.tolist() == [-1.0]


def test_rows_with_nothing_stored_standardise_to_zero():
    rows = SparseRows.of(sp.csr_matrix((2, 5), dtype=np.float32), seen_keys(sp.csr_matrix((2, 5))))
    assert rows.lists(3)[0].tolist() == [[-1, -1, -1], [-1, -1, -1]]
    assert rows.standardised(np.array([0, 1]), np.array([2, 4])).tolist() == [0.0, 0.0]


def test_factor_z_scores_from_the_gram_matrix_equal_the_dense_ones():
    from recstack.models.als import ALSRecommender

    als = ALSRecommender(factors=8, iterations=3).fit(planted_dataset())
    h = histories(als, np.random.default_rng(5))
    users = np.arange(h.shape[0])
    users[-3:] = -1  # folded in: the empty, one-item and most-seen rows
    (idx, val), z_factor = opinion(als, h, users, 15)
    (idx_d, val_d), z_dense = opinion(Dense(als), h, users, 15)
    np.testing.assert_array_equal(idx, idx_d)
    np.testing.assert_array_equal(val, val_d)
    rows = np.repeat(np.arange(h.shape[0]), 30)
    items = np.random.default_rng(1).integers(0, als.n_items, len(rows))
    items[:3] = h[0].indices[:3]
    np.testing.assert_allclose(z_factor(rows, items), z_dense(rows, items), rtol=1e-4, atol=1e-5)
    assert np.all(z_factor(rows[:3], items[:3]) == 0.0)  # seen items
    vectors = als.user_vectors(h, users)
    total, squares = als.score_moments(vectors)
    scores = vectors.astype(np.float64) @ als.item_vectors().astype(np.float64).T
    np.testing.assert_allclose(total, scores.sum(axis=1), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(squares, (scores**2).sum(axis=1), rtol=1e-9, atol=1e-9)
