"""Snapshot and stats against numbers worked out by hand (see ``SMALL_EVENTS`` in conftest)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import recstack.store.blocks
import recstack.store.snapshot
import recstack.store.stats
import recstack.store.timeformat
from recstack.data.loaders import LoadedData
from recstack.data.weights import EventWeighting
from recstack.store.snapshot import positions_of

# rows u1, u2, u3; columns i1..i4 (default weights: view 1, complete 4, purchase 4, click 1,
# rate 1 x value)
EXPECTED = np.array(
    [
        [5.0, 4.0, 0.0, 0.0],
        [0.0, 4.0, 2.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
    ],
    dtype=np.float32,
)


def test_snapshot_matches_the_hand_computed_matrix(store, small_data) -> None:
    store.ingest(small_data)
    dataset = store.snapshot()
    assert dataset.users.to_list() == ["u1", "u2", "u3"]
    assert dataset.items.to_list() == ["i1", "i2", "i3", "i4"]
    np.testing.assert_array_equal(dataset.matrix.toarray(), EXPECTED)
    assert dataset.n_interactions == 6
    # sorted by user then time, timestamps kept
    assert dataset.user_idx.tolist() == [0, 0, 0, 1, 1, 2]
    assert dataset.timestamp.tolist() == [100, 150, 200, 50, 60, 70]
    meta = dataset.item_meta
    assert meta["title"].tolist() == ["Intro to SQL", "Python basics", None, "Statistics"]
    assert meta["active"].tolist() == [True, True, True, False]
    assert dataset.item_attribute("genres") == [["db"], ["py"], None, None]


def test_snapshot_weighting_and_since(store, small_data) -> None:
    store.ingest(small_data)
    strict = store.snapshot(EventWeighting(min_value=3.0))
    expected = EXPECTED.copy()
    expected[1, 2] = 0.0  # the rating of 2 is dropped
    np.testing.assert_array_equal(strict.matrix.toarray(), expected)
    recent = store.snapshot(since=100)
    assert recent.n_interactions == 3 and recent.n_users == 3  # every user stays in the map
    np.testing.assert_array_equal(recent.matrix.toarray()[0], EXPECTED[0])
    assert recent.matrix.toarray()[1:].sum() == 0


def test_snapshot_of_an_empty_store(store) -> None:
    dataset = store.snapshot()
    assert (dataset.n_users, dataset.n_items, dataset.n_interactions) == (0, 0, 0)


def test_snapshot_after_deletes_skips_gaps(store, small_data, make_events) -> None:
    store.ingest(small_data)
    store.add_events(make_events([("e7", "u4", "i4", "view", np.nan, 300)]))
    store.delete_user("u2")
    dataset = store.snapshot()
    assert dataset.users.to_list() == ["u1", "u3", "u4"]
    assert dataset.n_interactions == 5
    assert dataset.matrix[dataset.users.index("u4"), dataset.items.index("i4")] == 1.0


def test_stats_numbers(store, small_data) -> None:
    empty = store.stats()
    assert (empty["users"], empty["interactions"], empty["first_timestamp"]) == (0, 0, None)
    store.ingest(small_data)
    stats = store.stats()
    assert stats["database"] == store.database
    assert (stats["users"], stats["items"], stats["active_items"]) == (3, 4, 3)
    assert stats["interactions"] == 6 and stats["distinct_pairs"] == 5
    assert stats["density"] == 5 / 12 and stats["sparsity"] == 1 - 5 / 12
    assert stats["event_types"] == {"rate": 2, "click": 1, "complete": 1, "purchase": 1, "view": 1}
    assert stats["first_timestamp"] == "1970-01-01T00:00:50+00:00"
    assert stats["last_timestamp"] == "1970-01-01T00:03:20+00:00"


def test_ingest_then_snapshot_of_generated_data(store) -> None:
    from recstack.data.synthetic import generate_synthetic

    data = generate_synthetic(300, 60, 4000, seed=3)
    result = store.ingest(data, chunk_size=1500)
    assert result.interactions_inserted == 4000
    dataset = store.snapshot()
    reference = LoadedData(data.interactions, data.items, source="ref")
    from recstack.data.dataset import Dataset

    expected = Dataset.from_frame(reference.interactions, items=reference.items)
    assert dataset.n_interactions == expected.n_interactions
    # same matrix up to the order of users/items
    rows = expected.users.indices(dataset.users.ids)
    cols = expected.items.indices(dataset.items.ids)
    assert (rows >= 0).all() and (cols >= 0).all()
    np.testing.assert_allclose(
        dataset.matrix.toarray(), expected.matrix.toarray()[np.ix_(rows, cols)], rtol=1e-6
    )


@pytest.mark.parametrize(
    "module",
    [
        recstack.store.timeformat,
        recstack.store.snapshot,
        recstack.store.stats,
        recstack.store.blocks,
    ],
)
def test_doctests(module) -> None:
    assert doctest.testmod(module).failed == 0


def test_positions_of_sparse_ids() -> None:
    ids = np.array([2, 10, 5_000_000_000])  # far apart: binary search, no giant lookup array
    assert positions_of(ids)(np.array([5_000_000_000, 2, 10])).tolist() == [2, 0, 1]
    assert positions_of(np.array([], dtype=np.int64))(np.array([1])).tolist() == [-1]
