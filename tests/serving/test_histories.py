"""UserHistories: the batch path agrees with event-by-event updates, rows and popularity."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recstack.data.idmap import IdMap
from recstack.serving.engine.histories import UserHistories


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_add_many_equals_adding_one_event_at_a_time(seed):
    rng = np.random.default_rng(seed)
    matrix = sp.random(50, 30, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    users = IdMap([f"u{i}" for i in range(50)])
    one_by_one, batched = UserHistories(users, matrix), UserHistories(users, matrix)
    for _ in range(100):
        n = int(rng.integers(1, 40))
        batch_users = [f"u{int(x)}" for x in rng.integers(0, 60, n)]  # some users are new
        items = rng.integers(0, 35, n)  # some items are beyond the snapshot's columns
        weights = rng.choice([1.0, -1.0, 2.0, 0.5], n).astype(np.float32)
        for user, item, weight in zip(batch_users, items, weights, strict=True):
            one_by_one.add(user, np.array([item], np.int32), np.array([weight], np.float32))
        batched.add_many(batch_users, items, weights)
    for i in range(60):
        expected, got = one_by_one.row(f"u{i}"), batched.row(f"u{i}")
        assert np.array_equal(expected[0], got[0])
        assert np.allclose(expected[1], got[1], atol=1e-4)
        assert batched.is_changed(f"u{i}") == one_by_one.is_changed(f"u{i}")
    assert np.array_equal(one_by_one.popularity(35), batched.popularity(35))


def test_add_many_sums_repeats_and_counts_distinct_users():
    histories = UserHistories(IdMap(["a"]), sp.csr_matrix(np.array([[0, 2.0, 0]], np.float32)))
    histories.add_many(["a", "b", "b", "a"], np.array([1, 0, 0, 2]), np.ones(4, np.float32))
    assert histories.row("a")[0].tolist() == [1, 2]
    assert histories.row("a")[1].tolist() == [3.0, 1.0]
    assert histories.row("b")[0].tolist() == [0] and histories.row("b")[1].tolist() == [2.0]
    assert histories.popularity(3).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("seed", [0, 1])
def test_add_many_of_distinct_pairs_equals_adding_one_at_a_time_exactly(seed):
    """Batches naming each (user, item) once take the merge path; weights match exactly."""
    rng = np.random.default_rng(seed)
    matrix = sp.random(40, 25, density=0.3, format="csr", random_state=seed, dtype=np.float32)
    users = IdMap([f"u{i}" for i in range(40)])
    one_by_one, batched = UserHistories(users, matrix), UserHistories(users, matrix)
    batched.forget("u3")
    one_by_one.forget("u3")
    for _ in range(60):
        pairs = rng.choice(50 * 30, size=int(rng.integers(2, 60)), replace=False)
        batch_users = [f"u{int(p) // 30}" for p in pairs]  # users 40-49 are new
        items = pairs % 30  # items 25-29 are beyond the snapshot's columns
        weights = rng.choice([1.0, -1.0, 2.0, 0.3], len(pairs)).astype(np.float32)
        for user, item, weight in zip(batch_users, items, weights, strict=True):
            one_by_one.add(user, np.array([item], np.int32), np.array([weight], np.float32))
        batched.add_many(batch_users, items, weights)
    for i in range(50):
        expected, got = one_by_one.row(f"u{i}"), batched.row(f"u{i}")
        assert np.array_equal(expected[0], got[0])
        assert np.array_equal(expected[1], got[1])
        assert got[0].dtype == np.int32 and got[1].dtype == np.float32
    assert np.array_equal(one_by_one.popularity(30), batched.popularity(30))


def test_add_many_merges_into_rows_and_moves_popularity_when_a_weight_reaches_zero():
    rows = np.array([[0, 2.0, 0], [1.0, 0, 0]], np.float32)
    histories = UserHistories(IdMap(["a", "b"]), sp.csr_matrix(rows))
    histories.add_many(["a", "a", "c"], np.array([0, 1, 2]), np.array([1.0, -2.0, 4.0], np.float32))
    assert histories.row("a")[0].tolist() == [0, 1]
    assert histories.row("a")[1].tolist() == [1.0, 0.0]  # the pair stays, at zero weight
    assert histories.row("c")[0].tolist() == [2] and histories.row("c")[1].tolist() == [4.0]
    assert histories.row("b")[1].tolist() == [1.0]  # untouched
    assert histories.popularity(3).tolist() == [2.0, 0.0, 1.0]


def test_rows_from_a_batch_own_their_arrays():
    """A row that viewed the batch's arrays would keep every other touched row of that batch
    alive with it (3.5x the rows' own memory after 500K random events)."""
    matrix = sp.random(20, 30, density=0.3, format="csr", random_state=3, dtype=np.float32)
    histories = UserHistories(IdMap([f"u{i}" for i in range(20)]), matrix)
    histories.add_many([f"u{i}" for i in range(20)], np.arange(20) % 30, np.ones(20, np.float32))
    for i in range(20):
        items, weights = histories.row(f"u{i}")
        assert items.base is None and weights.base is None
