"""Splits: hand-checked small cases, the reference stratified protocol, determinism, coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recstack.data.dataset import Dataset
from recstack.data.idmap import IdMap
from recstack.data.splits import leave_last_n_out, stratified_split, temporal_split
from recstack.testing.data import planted_dataset


def make(users: list[int], items: list[int], timestamps: list[int]) -> Dataset:
    n_users, n_items = max(users) + 1, max(items) + 1
    return Dataset.from_arrays(
        IdMap([f"u{i}" for i in range(n_users)]),
        IdMap([f"i{i}" for i in range(n_items)]),
        np.asarray(users),
        np.asarray(items),
        np.arange(1, len(users) + 1, dtype=np.float32),  # weight = a row tag
        np.asarray(timestamps),
    )


def rows(ds: Dataset) -> list[tuple]:
    return sorted(
        zip(
            ds.user_idx.tolist(),
            ds.item_idx.tolist(),
            ds.weight.tolist(),
            ds.timestamp.tolist(),
            strict=True,
        )
    )


def assert_partition(ds: Dataset, train: Dataset, test: Dataset) -> None:
    assert train.users is ds.users and train.items is ds.items
    assert test.users is ds.users and test.items is ds.items
    assert sorted(rows(train) + rows(test)) == rows(ds)
    assert not set(rows(train)) & set(rows(test))


def per_user(ds: Dataset) -> dict[int, int]:
    return dict(zip(*np.unique(ds.user_idx, return_counts=True), strict=True))


def test_stratified_counts_per_user():
    # u0: 4 interactions, u1: 2, u2: 1, u3: 10
    users = [0] * 4 + [1] * 2 + [2] + [3] * 10
    ds = make(users, list(range(17)), list(range(17)))
    train, test = stratified_split(ds, ratio=0.75, seed=42)
    assert_partition(ds, train, test)
    # rank / n <= 0.75: 3 of 4, 1 of 2, 0 of 1, 7 of 10
    assert per_user(train) == {0: 3, 1: 1, 3: 7}
    assert per_user(test) == {0: 1, 1: 1, 2: 1, 3: 3}
    train, test = stratified_split(ds, ratio=0.75, seed=42, min_interactions=3)
    assert per_user(train) == {0: 3, 1: 2, 2: 1, 3: 7}  # u1 and u2 stay whole in train


def reference_stratified(ds: Dataset, ratio: float, seed: int) -> set[tuple]:
    """Microsoft Recommenders' python_stratified_split, rewritten in pandas for the check."""
    data = pd.DataFrame(
        {"user": ds.user_idx, "item": ds.item_idx, "w": ds.weight, "t": ds.timestamp}
    )
    np.random.seed(seed)
    data["random"] = np.random.rand(data.shape[0])
    data = data.sort_values(["user", "random"])
    groups = data.groupby("user")
    data["count"] = groups["user"].transform("count")
    data["rank"] = (groups.cumcount() + 1) / data["count"]
    train = data[data["rank"] <= ratio]
    return set(zip(train["user"], train["item"], train["w"], train["t"], strict=True))


@pytest.mark.parametrize("ratio,seed", [(0.75, 42), (0.5, 1), (0.8, 7)])
def test_stratified_matches_reference_protocol(ratio, seed):
    ds = planted_dataset(n_users=60, n_items=40, per_user=9, seed=seed)
    train, test = stratified_split(ds, ratio=ratio, seed=seed, keys="rows")
    assert set(rows(train)) == reference_stratified(ds, ratio, seed)
    assert_partition(ds, train, test)


def shuffled(ds: Dataset, seed: int) -> Dataset:
    """The same interactions in another row order, with ids numbered in another order."""
    order = np.random.default_rng(seed).permutation(ds.n_interactions)
    users = ds.users.ids[np.asarray(ds.user_idx)[order]]
    items = ds.items.ids[np.asarray(ds.item_idx)[order]]
    user_map, item_map = IdMap(pd.unique(users)), IdMap(pd.unique(items))
    return Dataset.from_arrays(
        user_map,
        item_map,
        user_map.indices(users),
        item_map.indices(items),
        np.asarray(ds.weight)[order],
        np.asarray(ds.timestamp)[order],
    )


def external_rows(ds: Dataset) -> set[tuple]:
    users, items = ds.users.ids[ds.user_idx], ds.items.ids[ds.item_idx]
    return set(zip(users, items, np.asarray(ds.timestamp).tolist(), strict=True))


def test_stratified_hash_keys_ignore_row_order():
    ds = planted_dataset(n_users=80, n_items=50, per_user=12, seed=2)
    other = shuffled(ds, seed=9)
    train, test = stratified_split(ds, ratio=0.75, seed=42)
    other_train, other_test = stratified_split(other, ratio=0.75, seed=42)
    assert external_rows(train) == external_rows(other_train)
    assert external_rows(test) == external_rows(other_test)
    # numpy's draw in row order (Microsoft Recommenders) moves with the order
    rows_train, _ = stratified_split(ds, ratio=0.75, seed=42, keys="rows")
    other_rows_train, _ = stratified_split(other, ratio=0.75, seed=42, keys="rows")
    assert external_rows(rows_train) != external_rows(other_rows_train)
    with pytest.raises(ValueError, match="keys must be one of"):
        stratified_split(ds, keys="random")


def test_stratified_is_deterministic_per_seed():
    ds = planted_dataset(n_users=50, n_items=30, per_user=10)
    a_train, _ = stratified_split(ds, seed=3)
    b_train, _ = stratified_split(ds, seed=3)
    c_train, _ = stratified_split(ds, seed=4)
    assert rows(a_train) == rows(b_train)
    assert rows(a_train) != rows(c_train)
    assert a_train.n_interactions == c_train.n_interactions  # same counts, other rows


def test_temporal_split_cuts_at_quantile():
    ds = make([0, 0, 1, 1, 2, 2, 0, 1, 2, 0], list(range(10)), [5, 1, 9, 3, 2, 8, 4, 6, 10, 7])
    train, test = temporal_split(ds, ratio=0.8)
    assert_partition(ds, train, test)
    assert sorted(train.timestamp.tolist()) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert sorted(test.timestamp.tolist()) == [9, 10]
    assert train.timestamp.max() < test.timestamp.min()


def test_temporal_split_keeps_equal_times_together():
    ds = make([0, 0, 1, 1, 2, 2], [0, 1, 2, 3, 4, 5], [1, 1, 2, 2, 2, 3])
    train, test = temporal_split(ds, ratio=0.5)  # cut at the 4th time, 2: all 2s to test
    assert sorted(train.timestamp.tolist()) == [1, 1]
    assert sorted(test.timestamp.tolist()) == [2, 2, 2, 3]
    no_train, all_test = temporal_split(make([0, 0], [0, 1], [5, 5]), ratio=0.7)
    assert no_train.n_interactions == 0 and all_test.n_interactions == 2


def test_leave_last_n_out():
    # u0 times 3,1,2 (latest: item 0); u1 one interaction; u2 times 5,5,1 (tie: later row wins)
    ds = make([0, 0, 0, 1, 2, 2, 2], [0, 1, 2, 3, 4, 5, 6], [3, 1, 2, 9, 5, 5, 1])
    train, test = leave_last_n_out(ds, n=1)
    assert_partition(ds, train, test)
    assert sorted((u, i) for u, i, _, _ in rows(test)) == [(0, 0), (2, 5)]
    assert per_user(train) == {0: 2, 1: 1, 2: 2}
    train2, test2 = leave_last_n_out(ds, n=2)
    assert sorted((u, i) for u, i, _, _ in rows(test2)) == [(0, 0), (0, 2), (2, 4), (2, 5)]
    assert per_user(train2) == {0: 1, 1: 1, 2: 1}
    _, none = leave_last_n_out(ds, n=3)  # nobody has more than 3
    assert none.n_interactions == 0


def test_splits_reject_bad_arguments():
    ds = make([0], [0], [0])
    for ratio in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="ratio"):
            stratified_split(ds, ratio=ratio)
        with pytest.raises(ValueError, match="ratio"):
            temporal_split(ds, ratio=ratio)
    with pytest.raises(ValueError, match="n must be"):
        leave_last_n_out(ds, n=0)
