"""Bulk ingest: round trips, idempotency, catalogue updates, validation, all-or-nothing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from recstack.data.loaders import LoadedData
from recstack.errors import DataError
from recstack.store import IngestResult, Store, bulk, ingest_postgres, ingest_sqlite
from recstack.testing.data import planted_frame


def _backend(store: Store):  # noqa: ANN202 - the backend module
    return ingest_postgres if store.database == "postgresql" else ingest_sqlite


def _rows(store: Store, sql: str) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql)).all()]


def test_round_trip_counts_attributes_and_timestamps(store, small_data, make_events) -> None:
    users = pd.DataFrame({"user_id": ["u1", "u9"], "attributes": [{"plan": "pro"}, {}]})
    data = LoadedData(small_data.interactions, small_data.items, users, source="small.csv")
    result = store.ingest(data)
    assert isinstance(result, IngestResult)
    assert (result.interactions_read, result.interactions_inserted, result.duplicates) == (6, 6, 0)
    assert (result.users_created, result.items_created, result.items_updated) == (4, 4, 0)
    assert result.skipped == 0 and result.seconds > 0

    assert store.get_item("i1") | {"created_at": None, "updated_at": None} == {
        "item_id": "i1",
        "title": "Intro to SQL",
        "text": "Joins and indexes",
        "attributes": {"genres": ["db"], "level": 1},
        "active": True,
        "created_at": None,
        "updated_at": None,
    }
    assert store.get_item("i4")["active"] is False
    assert store.get_item("i3")["attributes"] == {}
    assert store.get_user("u1")["attributes"] == {"plan": "pro"}
    assert store.get_user("u9") == {**store.get_user("u9"), "n_events": 0, "attributes": {}}
    history = store.user_history("u1")
    assert history["event_id"].tolist() == ["e2", "e3", "e1"]  # newest first
    assert history["timestamp"].tolist() == [200, 150, 100]
    assert history["value"].tolist()[1] == 4.0 and np.isnan(history["value"].tolist()[0])
    assert history["item_id"].tolist() == ["i1", "i2", "i1"]


def test_reingest_adds_nothing(store, small_data) -> None:
    store.ingest(small_data)
    before = store.stats()
    again = store.ingest(small_data)
    assert (again.interactions_inserted, again.duplicates) == (0, 6)
    assert (again.users_created, again.items_created, again.items_updated) == (0, 0, 0)
    assert store.stats() == before


def test_duplicates_inside_one_frame_keep_the_first(store, make_events) -> None:
    frame = make_events(
        [
            ("a", "u1", "i1", "view", np.nan, 1),
            ("a", "u1", "i2", "view", np.nan, 2),
            ("b", "u2", "i1", "click", np.nan, 3),
        ]
    )
    result = store.ingest(LoadedData(frame, source="dups"))
    assert (result.interactions_inserted, result.duplicates) == (2, 1)
    assert store.user_history("u1")["item_id"].tolist() == ["i1"]
    assert result.items_created == 2  # i2 is created bare although its only event was a duplicate


def test_context_json_round_trips(store, make_events) -> None:
    frame = make_events(
        [("a", "u1", "i1", "view", np.nan, 1), ("b", "u1", "i2", "view", np.nan, 2)],
        context=['{"device": "ios", "page": 3}', None],
    )
    store.ingest(LoadedData(frame, source="ctx"))
    history = store.user_history("u1")
    assert json.loads(history.set_index("event_id").loc["a", "context"]) == {
        "device": "ios",
        "page": 3,
    }
    assert history.set_index("event_id").loc["b", "context"] is None


def test_catalogue_updates_only_what_changed(store, small_data) -> None:
    store.ingest(small_data)
    catalogue = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i5"],
            "title": ["Intro to SQL", "Python for everyone", "New course"],
            "text": [None, None, "Fresh"],  # None keeps the stored text
            "attributes": [{"genres": ["db"], "level": 1}, {}, {"level": 3}],
            "active": [True, True, True],
        }
    )
    result = store.ingest(LoadedData(pd.DataFrame(), items=catalogue, source="items.csv"))
    assert (result.items_created, result.items_updated, result.interactions_read) == (1, 1, 0)
    i2 = store.get_item("i2")
    assert i2["title"] == "Python for everyone" and i2["attributes"] == {"genres": ["py"]}
    assert store.get_item("i1")["text"] == "Joins and indexes"
    assert store.items_frame()["item_id"].tolist() == ["i1", "i2", "i3", "i4", "i5"]
    again = store.ingest(LoadedData(pd.DataFrame(), items=catalogue, source="items.csv"))
    assert (again.items_created, again.items_updated) == (0, 0)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("x", None, "i1", "view", np.nan, 1), "user_id is missing"),
        (("x", "u1", "", "view", np.nan, 1), "item_id is empty"),
        (("x", "u1", "i1", "v" * 40, np.nan, 1), "event_type is longer than 32"),
        (("x", "u1", "i1", "view", np.nan, None), "timestamp is missing"),
    ],
)
def test_invalid_rows_are_rejected_before_any_write(
    store, small_data, make_events, row, message
) -> None:
    store.ingest(small_data)
    before = store.stats()
    bad = pd.concat(
        [make_events([("ok", "u7", "i7", "view", np.nan, 5)]), make_events([row])],
        ignore_index=True,
    )
    with pytest.raises(DataError, match=message) as info:
        store.ingest(LoadedData(bad, source="bad.csv"))
    assert info.value.file == "bad.csv" and "row 1" in str(info.value)
    assert store.stats() == before
    assert store.get_user("u7") is None and store.get_item("i7") is None


def test_failure_midway_leaves_the_store_unchanged(
    store, small_data, make_events, monkeypatch
) -> None:
    store.ingest(small_data)
    before, items_before = store.stats(), store.items_frame()
    backend = _backend(store)
    real = backend.write_interactions
    calls = []

    def fail_on_second_chunk(conn, chunk):  # noqa: ANN001, ANN202
        calls.append(len(chunk))
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(conn, chunk)

    monkeypatch.setattr(backend, "write_interactions", fail_on_second_chunk)
    new = make_events([(f"n{k}", f"nu{k}", f"ni{k}", "view", np.nan, k) for k in range(6)])
    catalogue = small_items_changed()
    with pytest.raises(RuntimeError, match="disk full"):
        store.ingest(LoadedData(new, items=catalogue, source="new.csv"), chunk_size=2)
    assert calls == [2, 2]  # the first chunk was written before the failure
    assert store.stats() == before
    pd.testing.assert_frame_equal(store.items_frame(), items_before)
    assert store.get_user("nu0") is None


def small_items_changed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["i1", "i9"],
            "title": ["Renamed", "Brand new"],
            "text": [None, None],
            "attributes": [{}, {}],
            "active": [False, True],
        }
    )


def _indexes(store) -> set[str]:  # noqa: ANN001
    """Every index of ``interactions``, SQLite's automatic one on ``event_id`` included."""
    if store.database == "sqlite":
        with store.engine.connect() as conn:
            return {r[1] for r in conn.exec_driver_sql("PRAGMA index_list(interactions)")}
    return {i["name"] for i in sa.inspect(store.engine).get_indexes("interactions")}


def test_large_load_rebuilds_indexes_and_constraints(store, monkeypatch) -> None:
    monkeypatch.setattr(bulk, "LARGE_LOAD_MIN_ROWS", 10)
    declared = _indexes(store)  # SQLite's user index is a side file (store.user_index)
    assert ("ix_interactions_user_ts" in declared) == (store.database == "postgresql")
    inter, items = planted_frame(n_users=60, n_items=40, per_user=10)
    first = store.ingest(LoadedData(inter.iloc[:300], items=items, source="a"), chunk_size=64)
    assert first.interactions_inserted == 300
    # second large load: half already stored, a repeat inside the frame, the rest new
    second = pd.concat([inter.iloc[150:], inter.iloc[[400]]], ignore_index=True)
    result = store.ingest(LoadedData(second, source="b"), chunk_size=64)
    assert (result.interactions_inserted, result.duplicates) == (300, len(second) - 300)
    assert store.stats()["interactions"] == 600
    inspector = sa.inspect(store.engine)
    assert _indexes(store) == declared
    assert len(inspector.get_foreign_keys("interactions")) == 2
    assert inspector.get_pk_constraint("interactions")["constrained_columns"] == ["id"]
    with pytest.raises(sa.exc.IntegrityError):  # foreign keys are enforced again
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO interactions (event_id, user_id, item_id, event_type, timestamp) "
                    "VALUES ('orphan', 999999, 999999, 'view', 1)"
                )
            )
    with pytest.raises(sa.exc.IntegrityError):  # and event ids are unique again
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO interactions (event_id, user_id, item_id, event_type, timestamp) "
                    "SELECT event_id, user_id, item_id, event_type, timestamp FROM interactions "
                    "LIMIT 1"
                )
            )
    dataset = store.snapshot()
    assert dataset.n_interactions == 600 and dataset.n_users == 60


@pytest.mark.parametrize("prefill", [True, False], ids=["stored-rows", "first-load"])
def test_large_load_failure_keeps_indexes(store, small_data, monkeypatch, prefill) -> None:
    monkeypatch.setattr(bulk, "LARGE_LOAD_MIN_ROWS", 10)
    declared = _indexes(store)
    if prefill:
        store.ingest(small_data)
    inter, _ = planted_frame(n_users=20, n_items=30, per_user=10)

    backend = _backend(store)
    target = (
        "_drop_indexes_and_constraints"
        if store.database == "postgresql"
        else "_drop_secondary_indexes"
    )
    real_drop = getattr(backend, target)

    def drop_then_fail(raw, **kwargs):  # noqa: ANN001, ANN003, ANN202
        real_drop(raw, **kwargs)  # the indexes are gone inside the transaction...
        raise RuntimeError("connection lost")  # ...and the load fails before rebuilding them

    monkeypatch.setattr(backend, target, drop_then_fail)
    with pytest.raises(RuntimeError, match="connection lost"):
        store.ingest(LoadedData(inter, source="big"))
    inspector = sa.inspect(store.engine)
    assert _indexes(store) == declared
    assert len(inspector.get_foreign_keys("interactions")) == 2
    assert inspector.get_pk_constraint("interactions")["constrained_columns"] == ["id"]
    assert store.stats()["interactions"] == (6 if prefill else 0)


def test_progress_bar_runs(store, small_data) -> None:
    result = store.ingest(small_data, progress=True)
    assert result.interactions_inserted == 6
    assert store.snapshot(progress=True).n_interactions == 6


def test_event_types_with_control_characters_are_rejected(store, make_events) -> None:
    frame = make_events([("a", "u1", "i1", "view", np.nan, 1), ("b", "u1", "i1", "vi\x1few", 1, 2)])
    with pytest.raises(DataError, match="row 1 .*control characters"):
        store.ingest(LoadedData(frame, source="ctl"))
    assert store.stats()["interactions"] == 0
