"""PopularityRecommender: hand-counted popularity, time decay, co-occurrence similar items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.models.popularity import PopularityRecommender, decayed_popularity

DAY = 86_400
T = 1_700_000_000


def toy() -> Dataset:
    """Users a, b, c over items x, y, z; b sees x twice (still one user)."""
    frame = pd.DataFrame(
        [
            ("a", "x", T - 2 * DAY),
            ("a", "y", T - 1 * DAY),
            ("b", "x", T - 4 * DAY),
            ("b", "x", T - 1 * DAY),
            ("c", "x", T - 2 * DAY),
            ("c", "z", T),
        ],
        columns=["user_id", "item_id", "timestamp"],
    )
    frame["weight"] = 1.0
    return Dataset.from_frame(frame)


def test_counts_distinct_users() -> None:
    model = PopularityRecommender().fit(toy())
    assert model.items.to_list() == ["x", "y", "z"]
    assert model.popularity.tolist() == [3.0, 1.0, 1.0]


def test_time_decay_by_hand() -> None:
    # half-life 1 day, ages from the latest timestamp T; b's latest x is 1 day old
    # x: a 2 days (0.25) + b 1 day (0.5) + c 2 days (0.25) = 1.0; y: 0.5; z: 1.0
    pop = decayed_popularity(toy(), half_life_days=1.0)
    np.testing.assert_allclose(pop, [1.0, 0.5, 1.0], rtol=1e-6)
    model = PopularityRecommender(half_life_days=1.0).fit(toy())
    idx, _ = model.recommend(sp.csr_matrix((1, 3)), 3, users=np.array([-1]))
    assert idx[0, 2] == 1  # y, the least recent interest, comes last


def test_non_positive_half_life_is_rejected() -> None:
    with pytest.raises(ValueError, match="half_life_days"):
        PopularityRecommender(half_life_days=0).fit(toy())


def test_same_ranking_for_everyone_minus_seen() -> None:
    model = PopularityRecommender().fit(toy())
    h = sp.csr_matrix(np.array([[0, 0, 0], [1, 0, 0]], dtype=np.float32))
    idx, scores = model.recommend(h, 3, users=np.array([0, 1]))
    # y and z tie at 1 user each: they go in recstack.topk.tie_key order (y's key is lower)
    assert idx[0].tolist() == [0, 1, 2]
    assert scores[0].tolist() == [3.0, 1.0, 1.0]
    assert idx[1].tolist() == [1, 2, -1]


def test_similar_items_are_cooccurrence_cosine() -> None:
    # binary columns: x = a,b,c; y = a; z = c  ->  cos(x, y) = cos(x, z) = 1/sqrt(3), cos(y, z) = 0
    model = PopularityRecommender().fit(toy())
    sims = model.item_similarity(np.array([0, 1]))
    np.testing.assert_allclose(sims[0], [0.0, 1 / np.sqrt(3), 1 / np.sqrt(3)], rtol=1e-6)
    np.testing.assert_allclose(sims[1], [1 / np.sqrt(3), 0.0, 0.0], rtol=1e-6)
    idx, _ = model.similar_items(np.array([1]), 2)
    assert idx[0, 0] == 0


def test_similar_items_fall_back_to_popularity() -> None:
    model = PopularityRecommender(similar_neighbors=0).fit(toy())
    assert model.cooccurrence.nnz == 0
    idx, _ = model.similar_items(np.array([2]), 2)
    assert idx.tolist() == [[0, 1]]


def test_round_trip_without_cooccurrence(tmp_path) -> None:
    model = PopularityRecommender(similar_neighbors=0).fit(toy())
    loaded = PopularityRecommender.load(model.save(tmp_path / "pop"), mmap=True)
    assert loaded.popularity.tolist() == [3.0, 1.0, 1.0]
    assert loaded.similar_items(np.array([2]), 2)[0].tolist() == [[0, 1]]
