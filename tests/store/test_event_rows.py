"""The small-batch write path (plain tuples): same semantics and errors as the frame path."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from recstack.errors import DataError, NotFoundError
from recstack.store import Store
from recstack.store.event_rows import EventRow, add_event_rows, prepare_event_rows
from recstack.store.frames import prepare_interactions


def counts(store: Store) -> tuple[int, int, int]:
    """(users, items, interactions) as stored."""
    stats = store.stats()
    return stats["users"], stats["items"], stats["interactions"]


def test_rows_are_stored_once_per_event_id(store, small_data) -> None:
    store.ingest(small_data)
    rows = [
        EventRow("r1", "u1", "i3", "view", None, 500),
        EventRow("r2", "u1", "i4", "rate", 4.5, 510, {"page": "home"}),
        EventRow("r1", "u1", "i3", "view", None, 500),  # repeated within the batch
        EventRow("e1", "u1", "i1", "view", None, 100),  # already stored by the ingest
    ]
    assert add_event_rows(store.engine, rows) == 2
    assert add_event_rows(store.engine, rows) == 0
    history = store.user_history("u1")
    assert history["event_id"].tolist()[:2] == ["r2", "r1"]
    newest = history.iloc[0]
    assert (newest["item_id"], newest["event_type"], newest["value"]) == ("i4", "rate", 4.5)
    assert newest["timestamp"] == 510 and '"page"' in newest["context"]
    assert np.isnan(history.iloc[1]["value"])  # no value is stored as NULL


def test_unknown_users_are_created(store, small_data) -> None:
    store.ingest(small_data)
    assert add_event_rows(store.engine, [EventRow("n1", "newbie", "i2", "view", None, 9)]) == 1
    assert store.get_user("newbie")["n_events"] == 1


def test_unknown_item_is_named_and_nothing_is_written(store, small_data) -> None:
    store.ingest(small_data)
    before = counts(store)
    rows = [
        EventRow("n1", "brand-new-user", "i1", "view", None, 1),
        EventRow("n2", "brand-new-user", "ghost-item", "view", None, 2),
    ]
    with pytest.raises(NotFoundError, match="ghost-item"):
        add_event_rows(store.engine, rows)
    # the user was inserted inside the transaction before the item check failed: rolled back
    assert counts(store) == before
    assert store.get_user("brand-new-user") is None
    assert add_event_rows(store.engine, rows, create_items=True) == 2
    assert store.get_item("ghost-item")["title"] is None
    assert counts(store) == (before[0] + 1, before[1] + 1, before[2] + 2)


def test_committed_before_returning(store_url, small_data) -> None:
    writer, reader = Store(store_url), Store(store_url)
    writer.migrate()
    try:
        writer.ingest(small_data)
        add_event_rows(writer.engine, [EventRow("d1", "u2", "i4", "complete", None, 700)])
        # a separate engine (its own connections) sees the event at once
        assert reader.user_history("u2", limit=1)["event_id"].tolist() == ["d1"]
    finally:
        writer.close()
        reader.close()


def test_concurrent_writers_store_each_event_once(store, small_data) -> None:
    store.ingest(small_data)
    rows = [EventRow(f"c{k}", f"cu{k % 5}", "i2", "view", None, k) for k in range(40)]
    results: list[int] = []

    def post() -> None:
        results.append(add_event_rows(store.engine, rows))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 0, 0, 40]
    assert counts(store)[2] == 6 + 40


def test_small_frames_take_the_row_path_with_frame_semantics(store, small_data) -> None:
    """Datetimes, numeric text and JSON text convert exactly as the frame path converts them."""
    store.ingest(small_data)
    frame = pd.DataFrame(
        {
            "event_id": ["f1", "f2"],
            "user_id": [7, 7],  # integer ids become text
            "item_id": ["i1", "i2"],
            "event_type": ["rate", "view"],
            "value": ["4.5", None],
            "timestamp": pd.to_datetime(
                ["2024-01-01T00:00:00Z", "2024-01-01T00:00:01.9Z"], format="ISO8601"
            ),
            "context": ['{"a": 1}', None],
        }
    )
    assert store.add_events(frame) == 2
    history = store.user_history("7").sort_values("event_id")
    assert history["timestamp"].tolist() == [1704067200, 1704067201]
    assert history["value"].iloc[0] == 4.5 and np.isnan(history["value"].iloc[1])
    assert history["context"].iloc[0].replace(" ", "") == '{"a":1}'


BASE = ("b1", "u1", "i1", "view", None, 10, None)


def variant(position: int, value: object) -> tuple:
    row = list(BASE)
    row[position] = value
    return tuple(row)


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ([variant(1, "")], "row 0 of the interactions: user_id is empty"),
        ([BASE, variant(2, None)], "row 1 of the interactions: item_id is missing"),
        ([variant(0, "x" * 256)], "event_id is longer than 255 characters"),
        ([BASE, variant(3, "vi\new")], "row 1 of the interactions: event_type 'vi\\new' has"),
        ([variant(3, "t" * 33)], "event_type is longer than 32 characters"),
        ([BASE, variant(4, "lots")], "row 1 of the interactions: value 'lots' is not a number"),
        ([variant(5, None)], "row 0 of the interactions: timestamp is missing"),
        ([BASE, variant(5, float("nan"))], "row 1 of the interactions: timestamp is missing"),
        ([variant(5, "soon")], "timestamp 'soon' is not epoch seconds"),
        ([variant(6, "{not json")], "context is not valid JSON"),
        ([variant(6, {"when": object()})], "context cannot be stored as JSON"),
        # several problems: the same one wins as in the frame path (column order, then kind)
        ([variant(1, ""), variant(0, None)], "row 1 of the interactions: event_id is missing"),
    ],
)
def test_row_errors_match_the_frame_path(rows, fragment) -> None:
    columns = ["event_id", "user_id", "item_id", "event_type", "value", "timestamp", "context"]
    frame = pd.DataFrame(
        {c: pd.Series([r[j] for r in rows], dtype=object) for j, c in enumerate(columns)}
    )
    with pytest.raises(DataError) as from_frame:
        prepare_interactions(frame, "events")
    with pytest.raises(DataError) as from_rows:
        prepare_event_rows(rows, "events")
    assert str(from_rows.value) == str(from_frame.value)
    assert fragment in str(from_rows.value)


def test_rows_need_every_field(store) -> None:
    with pytest.raises(DataError, match="row 0 of the interactions has 6 fields"):
        add_event_rows(store.engine, [BASE[:6]])
    assert add_event_rows(store.engine, []) == 0


def test_prepared_rows_are_typed_for_the_store() -> None:
    rows = prepare_event_rows([("e", 5, "i", "rate", 3, 12.9, {"k": [1, 2]})])
    assert rows == [("e", "5", "i", "rate", 3.0, 12, '{"k":[1,2]}')]


def test_bulk_and_row_paths_store_the_same(store, small_data, make_events, monkeypatch) -> None:
    """One batch through the vectorised bulk path and the same through the row path."""
    from recstack.store import repository

    rows = [
        (f"x{k}", f"u{k % 3}", f"i{1 + k % 4}", "rate", 1.0 + k % 5, 1_000 + k) for k in range(30)
    ]
    stored = []
    for bulk in (True, False):
        with store.engine.begin() as conn:  # start from the same store each time
            for table in ("interactions", "users", "items"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
        store.ingest(small_data)
        monkeypatch.setattr(repository, "SMALL_BATCH_ROWS", -1 if bulk else 10_000)
        inserted = store.add_events(make_events(rows + rows[:5]))
        stored.append((inserted, store.user_history("u1")))
    assert stored[0][0] == stored[1][0] == 30
    pd.testing.assert_frame_equal(stored[0][1], stored[1][1])
    assert stored[0][1]["event_id"].str.startswith("x").sum() == 10
