"""BPRRecommender: the bias column, fold-in that improves the BPR objective, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recstack.data.idmap import IdMap
from recstack.models.bpr import BPRRecommender, bpr_fold_in
from recstack.testing.contract import holdout_split, recall_at_k
from recstack.testing.data import planted_dataset


@pytest.fixture(scope="module")
def split():
    return holdout_split(planted_dataset())


@pytest.fixture(scope="module")
def fitted(split) -> BPRRecommender:
    return BPRRecommender(factors=16, num_threads=1, random_state=0).fit(split[0])


def bpr_objective(p: np.ndarray, items: np.ndarray, history: np.ndarray, reg: float) -> float:
    """Exact BPR log-likelihood of one user over all (positive, negative) pairs."""
    scores = items[:, :-1] @ p + items[:, -1]
    negatives = np.setdiff1d(np.arange(len(items)), history)
    diff = scores[history][:, None] - scores[negatives][None, :]
    return float(np.mean(np.log(1 / (1 + np.exp(-diff)))) - reg / 2 * p @ p)


def test_vectors_carry_the_bias_column(fitted, split) -> None:
    train = split[0]
    assert fitted.item_vectors().shape == (train.n_items, 17)
    users = fitted.user_vectors(train.matrix[:5], np.arange(5))
    assert users.shape == (5, 17) and (users[:, -1] == 1.0).all()
    expected = fitted.user_factors[:5] @ fitted.item_factors.T
    np.testing.assert_allclose(fitted.score(train.matrix[:5], np.arange(5)), expected, rtol=1e-5)


def test_fold_in_raises_the_bpr_objective(fitted, split) -> None:
    h = split[0].matrix[:20]
    folded = fitted.fold_in(h)
    assert (folded[:, -1] == 1.0).all()
    items = np.asarray(fitted.item_factors, dtype=np.float64)
    zero = np.zeros(items.shape[1] - 1)
    for row in range(20):
        history = h[row].indices
        before = bpr_objective(zero, items, history, 0.01)
        after = bpr_objective(folded[row, :-1].astype(np.float64), items, history, 0.01)
        assert after > before + 0.05


def test_fold_in_is_relevant_and_deterministic(fitted, split) -> None:
    train, test = split
    h = train.matrix
    learned, _ = fitted.recommend(h, 10, users=np.arange(h.shape[0]))
    folded, _ = fitted.recommend(h, 10, users=np.full(h.shape[0], -1))
    assert recall_at_k(folded, test.matrix) >= 0.8 * recall_at_k(learned, test.matrix)
    again, _ = fitted.recommend(h, 10, users=np.full(h.shape[0], -1))
    np.testing.assert_array_equal(folded, again)


def test_empty_history_folds_in_to_bias_only() -> None:
    items = np.array([[1.0, 0.5], [0.0, 2.0], [-1.0, 0.1]], dtype=np.float32)
    got = bpr_fold_in(
        sp.csr_matrix((2, 3), dtype=np.float32),
        items,
        learning_rate=0.1,
        regularization=0.0,
        steps=10,
        negatives=2,
        seed=0,
    )
    assert got.tolist() == [[0.0, 1.0], [0.0, 1.0]]


def test_item_similarity_ignores_the_bias() -> None:
    model = BPRRecommender(factors=2)
    model.items = IdMap(["a", "b", "c"])
    # same direction for a and b, different biases; c orthogonal
    model.item_factors = np.array([[1, 0, 5.0], [2, 0, -3.0], [0, 1, 0.0]], dtype=np.float32)
    sims = model.item_similarity(np.array([0]))
    np.testing.assert_allclose(sims[0], [1.0, 1.0, 0.0], atol=1e-6)
    assert model.similar_items(np.array([0]), 1)[0].tolist() == [[1]]


def test_invalid_negatives() -> None:
    with pytest.raises(ValueError, match="fold_in_negatives"):
        BPRRecommender(fold_in_negatives=0)
