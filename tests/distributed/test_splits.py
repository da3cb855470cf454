"""Spark splits follow the single-machine split rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recstack.data.dataset import Dataset
from recstack.data.splits import leave_last_n_out, stratified_split, temporal_split

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 600
    users = rng.integers(0, 30, n)
    frame = pd.DataFrame(
        {
            "event_id": [f"e{k}" for k in range(n)],
            "user_id": [f"u{u}" for u in users],
            "item_id": [f"i{i}" for i in rng.integers(0, 50, n)],
            "event_type": "view",
            "value": np.nan,
            "timestamp": rng.permutation(n).astype(np.int64) * 10 + 1_000,  # distinct times
            "context": None,
        }
    )
    frame.loc[frame["user_id"] == "u0", "user_id"] = "solo"  # plus a user with one event
    return pd.concat([frame, frame.iloc[[0]].assign(event_id="single", user_id="lonely")])


def rows(frame: pd.DataFrame) -> set[tuple[str, str, int]]:
    return set(zip(frame["user_id"], frame["item_id"], frame["timestamp"].astype(int), strict=True))


def dataset_rows(ds: Dataset) -> set[tuple[str, str, int]]:
    users, items = ds.users.ids[ds.user_idx], ds.items.ids[ds.item_idx]
    return set(zip(users, items, ds.timestamp.astype(int).tolist(), strict=True))


def test_splits_agree_with_the_single_machine_rules(spark, events):
    from recstack.distributed.splits import leave_last_n_out as spark_last
    from recstack.distributed.splits import stratified_split as spark_stratified
    from recstack.distributed.splits import temporal_split as spark_temporal

    frame = spark.createDataFrame(events.astype({"context": "string"}))
    ds = Dataset.from_frame(events)

    train, test = spark_temporal(frame, ratio=0.8)
    single_train, single_test = temporal_split(ds, ratio=0.8)
    assert rows(train.toPandas()) == dataset_rows(single_train)
    assert rows(test.toPandas()) == dataset_rows(single_test)

    train, test = spark_last(frame, n=2)
    single_train, single_test = leave_last_n_out(ds, n=2)
    assert rows(test.toPandas()) == dataset_rows(single_test)
    assert rows(train.toPandas()) == dataset_rows(single_train)

    train, test = spark_stratified(frame, ratio=0.75, seed=1)
    single_train, _ = stratified_split(ds, ratio=0.75, seed=1)
    spark_counts = train.toPandas()["user_id"].value_counts().sort_index()
    single_counts = pd.Series(ds.users.ids[single_train.user_idx]).value_counts().sort_index()
    pd.testing.assert_series_equal(spark_counts, single_counts, check_names=False)
    assert test.count() + train.count() == len(events)
    assert "lonely" in set(test.toPandas()["user_id"])  # one interaction lands in test, as there
