"""Online operations the server uses: events, items, users, GDPR delete."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recstack.errors import DataError, NotFoundError


def test_add_events_is_idempotent_and_durable(store, small_data, make_events) -> None:
    store.ingest(small_data)
    new = make_events(
        [("n1", "u1", "i3", "view", np.nan, 500), ("n2", "u8", "i4", "bookmark", np.nan, 510)]
    )
    assert store.add_events(new) == 2
    assert store.add_events(new) == 0
    assert store.get_user("u8")["n_events"] == 1  # unknown users are created
    assert store.user_history("u1", limit=1)["event_id"].tolist() == ["n1"]


def test_add_events_needs_known_items_unless_asked(store, small_data, make_events) -> None:
    store.ingest(small_data)
    frame = make_events([("n3", "u1", "nope", "view", np.nan, 1)])
    with pytest.raises(NotFoundError, match="nope"):
        store.add_events(frame)
    assert store.get_user("u1")["n_events"] == 3
    assert store.add_events(frame, create_items=True) == 1
    assert store.get_item("nope")["title"] is None


def test_add_many_events_uses_the_bulk_path(store, small_data, make_events) -> None:
    store.ingest(small_data)
    rows = [(f"b{k}", f"u{k % 7}", "i1", "view", np.nan, k) for k in range(6000)]
    assert store.add_events(make_events(rows)) == 6000
    assert (
        store.add_events(make_events(rows[:10] + [("fresh", "u1", "i2", "view", np.nan, 9)])) == 1
    )
    assert store.stats()["interactions"] == 6 + 6001


def test_upsert_and_get_item(store) -> None:
    assert store.get_item("c1") is None
    created = store.upsert_item("c1", title="Algebra", attributes={"level": 1})
    assert created["title"] == "Algebra" and created["attributes"] == {"level": 1}
    assert created["active"] is True and created["created_at"].endswith("+00:00")
    updated = store.upsert_item("c1", text="Linear equations", active=False)
    assert updated["title"] == "Algebra"  # None keeps the stored value
    assert (updated["text"], updated["active"]) == ("Linear equations", False)
    assert store.get_item("c1") == updated
    frame = store.items_frame()
    assert frame.columns.tolist() == ["item_id", "title", "text", "attributes", "active"]
    assert frame.to_dict("records") == [
        {
            "item_id": "c1",
            "title": "Algebra",
            "text": "Linear equations",
            "attributes": {"level": 1},
            "active": False,
        }
    ]
    with pytest.raises(DataError):
        store.upsert_item("x" * 300)


def test_user_history_and_unknown_user(store, small_data) -> None:
    store.ingest(small_data)
    history = store.user_history("u2")
    assert history.columns.tolist() == [
        "event_id",
        "item_id",
        "event_type",
        "value",
        "timestamp",
        "context",
    ]
    assert history["event_id"].tolist() == ["e5", "e4"]
    assert history["value"].iloc[0] == 2.0
    assert store.user_history("ghost").empty
    assert store.get_user("ghost") is None
    user = store.get_user("u2")
    assert user["n_events"] == 2 and user["user_id"] == "u2"


def test_delete_user_leaves_no_trace(store, small_data) -> None:
    store.ingest(small_data)
    assert store.delete_user("u1") == 3
    assert store.get_user("u1") is None
    assert store.user_history("u1").empty
    stats = store.stats()
    assert (stats["users"], stats["interactions"]) == (2, 3)
    assert "u1" not in store.snapshot().users
    assert store.get_user("u2")["n_events"] == 2  # others untouched
    with pytest.raises(NotFoundError):
        store.delete_user("u1")


def test_add_events_rejects_bad_frames(store) -> None:
    with pytest.raises(DataError, match="missing columns: event_id"):
        store.add_events(
            pd.DataFrame(
                {"user_id": ["u"], "item_id": ["i"], "event_type": ["view"], "timestamp": [1]}
            )
        )
    assert (
        store.add_events(
            pd.DataFrame(columns=["event_id", "user_id", "item_id", "event_type", "timestamp"])
        )
        == 0
    )
