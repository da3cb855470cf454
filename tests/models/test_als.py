"""ALSRecommender: confidence, the exact fold-in, agreement with implicit, explain, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recstack.errors import ConfigError
from recstack.models.als import ALSRecommender, als_fold_in, confidence_matrix
from recstack.testing.data import planted_dataset


@pytest.fixture(scope="module")
def fitted() -> tuple[ALSRecommender, sp.csr_matrix]:
    data = planted_dataset()
    model = ALSRecommender(factors=16, iterations=15, regularization=0.1, alpha=5.0)
    return model.fit(data), data.matrix


def test_confidence_is_one_plus_alpha_weight_sharing_indices() -> None:
    m = sp.csr_matrix(np.array([[0, 2.0], [1.0, 0]], dtype=np.float32))
    c = confidence_matrix(m, alpha=3.0)
    assert c.toarray().tolist() == [[0.0, 7.0], [4.0, 0.0]]
    assert np.shares_memory(c.indices, m.indices) and np.shares_memory(c.indptr, m.indptr)
    assert m.data.tolist() == [2.0, 1.0]  # the input is left alone


def test_fold_in_matches_the_dense_normal_equations() -> None:
    rng = np.random.default_rng(0)
    y = rng.standard_normal((6, 3)).astype(np.float32)
    r = np.array([[2.0, 0, 0, 1.0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=np.float32)
    got = als_fold_in(sp.csr_matrix(r), y, regularization=0.5, alpha=4.0)
    # x = (Yᵀ C Y + λI)⁻¹ Yᵀ C p with C = diag(1 + α r) over all items, p = (r > 0)
    c = np.diag(1 + 4.0 * r[0]).astype(np.float64)
    p = (r[0] > 0).astype(np.float64)
    yd = y.astype(np.float64)
    expected = np.linalg.solve(yd.T @ c @ yd + 0.5 * np.eye(3), yd.T @ c @ p)
    np.testing.assert_allclose(got[0], expected, rtol=1e-5)
    assert got[1].tolist() == [0.0, 0.0, 0.0]  # an empty history folds in to zero


def test_fold_in_agrees_with_implicit_recalculate_user(fitted) -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    model, matrix = fitted
    with threadpool_limits(1, "blas"):
        reference = AlternatingLeastSquares(factors=16, regularization=0.1, alpha=1.0)
    reference.item_factors = np.array(model.item_factors)
    rows = np.arange(10)
    conf = confidence_matrix(matrix[rows], alpha=5.0)
    expected = reference.recalculate_user(rows, conf)
    got = model.fold_in(matrix[rows])
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_fold_in_reproduces_learned_user_factors(fitted) -> None:
    model, matrix = fitted
    learned = model.user_factors
    folded = model.fold_in(matrix)
    cos = np.sum(learned * folded, axis=1) / (
        np.linalg.norm(learned, axis=1) * np.linalg.norm(folded, axis=1)
    )
    assert np.median(cos) > 0.99 and cos.min() > 0.95
    known, _ = model.recommend(matrix, 10, users=np.arange(matrix.shape[0]))
    unknown, _ = model.recommend(matrix, 10, users=np.full(matrix.shape[0], -1))
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(known, unknown, strict=True)])
    assert overlap > 0.9


def test_known_users_use_learned_factors(fitted) -> None:
    model, matrix = fitted
    users = np.array([3, -1, 7, 10_000])  # -1 and out-of-range are folded in
    vectors = model.user_vectors(matrix[[3, 4, 7, 8]], users)
    np.testing.assert_array_equal(vectors[0], model.user_factors[3])
    np.testing.assert_array_equal(vectors[2], model.user_factors[7])
    np.testing.assert_allclose(vectors[1], model.fold_in(matrix[[4]])[0], rtol=1e-6)
    np.testing.assert_allclose(
        model.score(matrix[[3]], np.array([3])), [vectors[0] @ model.item_factors.T], rtol=1e-5
    )


def test_explain_terms_split_the_folded_in_score(fitted) -> None:
    model, matrix = fitted
    history = matrix[[0]]
    item = int(model.recommend(history, 1)[0][0, 0])
    reasons = model.explain(history, item, top=history.nnz)
    assert reasons and {j for j, _ in reasons} <= set(history.indices.tolist())
    # one term by hand: c_j * y_itemᵀ A⁻¹ y_j
    y = model.item_factors.astype(np.float64)
    j, vote = reasons[0]
    w = 5.0 * history.data.astype(np.float64)
    yh = y[history.indices]
    a = y.T @ y + (yh.T * w) @ yh + 0.1 * np.eye(16)
    c_j = 1 + 5.0 * float(history[0, j])
    assert vote == pytest.approx(c_j * y[item] @ np.linalg.solve(a, y[j]), rel=1e-4)
    # positive terms sum to at least the score (the rest are negative)
    assert sum(v for _, v in reasons) >= float(model.score(history)[0, item]) - 1e-5


def test_training_with_progress_and_loss() -> None:
    model = ALSRecommender(factors=4, iterations=2, calculate_training_loss=True)
    model.fit(planted_dataset(n_users=30, n_items=20, per_user=5), progress=True)
    assert model.item_factors.shape == (20, 4)


def test_gpu_without_cuda_is_a_config_error() -> None:
    import implicit.gpu

    if implicit.gpu.HAS_CUDA:
        pytest.skip("implicit has CUDA here")
    with pytest.raises(ConfigError, match="CUDA"):
        ALSRecommender(use_gpu=True).fit(planted_dataset(n_users=20, n_items=10, per_user=3))


def test_default_factors_are_128() -> None:
    model = ALSRecommender(iterations=1).fit(planted_dataset(n_users=30, n_items=20, per_user=5))
    assert model.config.factors == 128
    assert model.item_factors.shape == (20, 128)
