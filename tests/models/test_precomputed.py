"""Stored top-k lists as a Recommender: masks, exclusions, re-indexing, dense scores."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.data.idmap import IdMap
from recstack.errors import ConfigError
from recstack.models.precomputed import PrecomputedRecommender


@pytest.fixture
def lists() -> PrecomputedRecommender:
    # u1: c 0.9, a 0.5, b 0.2 ; u2: b 0.7
    return PrecomputedRecommender.from_lists(
        IdMap(["u1", "u2"]),
        IdMap(["a", "b", "c"]),
        np.array([0, 3, 4]),
        np.array([2, 0, 1, 1]),
        np.array([0.9, 0.5, 0.2, 0.7]),
    )


def test_masks_history_and_exclusions_cut_the_stored_order(lists) -> None:
    none = sp.csr_matrix((2, 3), dtype=np.float32)
    idx, val = lists.recommend(none, 2, users=np.array([0, 1]))
    assert idx.tolist() == [[2, 0], [1, -1]]
    assert val[0].tolist() == pytest.approx([0.9, 0.5]) and val[1, 1] == -np.inf
    per_row = np.array([[True, True, False], [True, False, True]])
    assert lists.recommend(none, 3, users=np.array([0, 1]), item_mask=per_row)[0].tolist() == [
        [0, 1, -1],
        [-1, -1, -1],
    ]
    exclude = sp.csr_matrix(([1.0], ([0], [0])), shape=(2, 3))
    seen = sp.csr_matrix(([1.0], ([0], [2])), shape=(2, 3))
    idx, _ = lists.recommend(seen, 3, users=np.array([0, 1]), exclude=exclude)
    assert idx.tolist() == [[1, -1, -1], [1, -1, -1]]
    idx, _ = lists.recommend(seen, 3, users=np.array([0, 1]), exclude_seen=False)
    assert idx.tolist() == [[2, 0, 1], [1, -1, -1]]
    assert lists.k == 3


def test_over_items_keeps_the_lists_and_scores(lists) -> None:
    wider = lists.over_items(IdMap(["z", "c", "b"]))
    assert wider.items.to_list() == ["z", "c", "b", "a"]
    idx, val = wider.recommend(sp.csr_matrix((1, 4)), 3, users=np.array([0]))
    assert wider.items.externals(idx[0]) == ["c", "a", "b"]
    dense = wider.score(sp.csr_matrix((2, 4)), np.array([1, -1]))
    assert dense[0].tolist() == [-np.inf, -np.inf, pytest.approx(0.7), -np.inf]
    assert np.isneginf(dense[1]).all()
    assert wider.explain(sp.csr_matrix((1, 4)), 1) == []


def test_lists_cannot_be_trained_and_must_be_consistent(lists) -> None:
    with pytest.raises(ConfigError, match="loaded from the store"):
        lists.fit(Dataset.from_frame(_frame()))
    with pytest.raises(ValueError, match="indptr"):
        PrecomputedRecommender.from_lists(
            IdMap(["u1"]), IdMap(["a"]), np.array([0, 2]), np.array([0]), np.array([1.0])
        )


def _frame():
    import pandas as pd

    return pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "event_type": ["view"]})
