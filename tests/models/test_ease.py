"""EASERecommender: the closed form by hand, size guard, top_items, auto l2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.errors import ConfigError
from recstack.models.ease import EASERecommender, auto_l2, ease_weights


def frame_dataset(matrix: np.ndarray) -> Dataset:
    rows, cols = np.nonzero(matrix)
    frame = pd.DataFrame(
        {
            "user_id": [f"u{r}" for r in rows],
            "item_id": [f"i{c}" for c in cols],
            "weight": matrix[rows, cols].astype(np.float32),
        }
    )
    return Dataset.from_frame(frame)


# every item has 3 users and every pair of items shares 2: X^T X = I + 2J (J = all ones)
SYMMETRIC = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.float32)


def test_three_items_by_hand() -> None:
    # X^T X + 1*I = 2I + 2J, whose inverse is 0.5 I - 0.125 J: diag 0.375, off-diagonal -0.125
    # so B_ij = -P_ij / P_jj = 0.125 / 0.375 = 1/3 off the diagonal, 0 on it
    model = EASERecommender(l2=1.0).fit(frame_dataset(SYMMETRIC))
    expected = np.full((3, 3), 1 / 3, dtype=np.float32)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.weights, expected, rtol=1e-6)
    h = sp.csr_matrix(np.array([[1, 0, 0]], dtype=np.float32))
    np.testing.assert_allclose(model.score(h)[0], [0.0, 1 / 3, 1 / 3], rtol=1e-6)


def closed_form(x: np.ndarray, l2: float) -> np.ndarray:
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weights_match_closed_form_on_random_data(dtype) -> None:
    x = (np.random.default_rng(0).random((80, 12)) < 0.3).astype(np.float64)
    got = ease_weights(np.ascontiguousarray((x.T @ x).astype(dtype)), 5.0)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, closed_form(x, 5.0), atol=1e-5)


def test_explain_gives_exact_terms() -> None:
    x = (np.random.default_rng(1).random((60, 8)) < 0.4).astype(np.float32)
    model = EASERecommender(l2=2.0).fit(frame_dataset(x))
    h = sp.csr_matrix(np.array([[1, 0, 2, 0, 0, 1, 0, 0]], dtype=np.float32))
    item = 3
    terms = {j: float(h[0, j] * model.weights[j, item]) for j in (0, 2, 5)}
    reasons = model.explain(h, item, top=3)
    positive = {j: t for j, t in terms.items() if t > 0}
    assert [j for j, _ in reasons] == sorted(positive, key=positive.get, reverse=True)
    assert sum(terms.values()) == pytest.approx(float(model.score(h)[0, item]), rel=1e-5)


def test_refuses_catalogue_above_max_items() -> None:
    x = (np.random.default_rng(2).random((30, 12)) < 0.5).astype(np.float32)
    with pytest.raises(ConfigError) as err:
        EASERecommender(max_items=10).fit(frame_dataset(x))
    message = str(err.value)
    assert "12 items" in message and "max_items is 10" in message
    assert "GiB" in message and "itemknn" in message and "top_items" in message


def test_top_items_models_only_the_most_popular() -> None:
    x = np.zeros((20, 5), dtype=np.float32)
    x[:, 0] = 1  # popularity: i0 20, i1 15, i2 10, i3 5, i4 2
    x[:15, 1] = 1
    x[:10, 2] = 1
    x[:5, 3] = 1
    x[:2, 4] = 1
    model = EASERecommender(l2=1.0, max_items=3, top_items=True).fit(frame_dataset(x))
    assert model.modelled.tolist() == [0, 1, 2]
    np.testing.assert_allclose(model.weights, closed_form(x[:, :3], 1.0), atol=1e-5)
    h = sp.csr_matrix(np.array([[1, 0, 0, 1, 0]], dtype=np.float32))
    idx, _ = model.recommend(h, 3)
    assert set(idx[0, :2].tolist()) == {1, 2} and idx[0, 2] == 4  # unmodelled items rank last
    assert model.explain(h, 4) == []
    assert model.similar_items(np.array([3]), 2)[0].shape == (1, 2)


def test_auto_l2_follows_mean_popularity(tmp_path) -> None:
    assert auto_l2(np.full(10, 60.0)) == pytest.approx(480.0)
    assert auto_l2(np.array([1.0])) == 10.0  # floor
    model = EASERecommender().fit(frame_dataset(SYMMETRIC))
    assert float(model.l2[0]) == pytest.approx(24.0)  # mean popularity 3 -> 8 * 3
    loaded = EASERecommender.load(model.save(tmp_path / "ease"))
    assert float(loaded.l2[0]) == pytest.approx(24.0)  # the lambda used travels with the model
