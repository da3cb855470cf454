"""The dashboard's cheap store figures, on SQLite and PostgreSQL."""

from __future__ import annotations

import pandas as pd

from recstack.data.loaders import LoadedData
from recstack.store import Store
from recstack.store.activity import (
    activity_counts,
    event_types_over_time,
    find_items,
    live_counts,
    recent_events,
)


def fill(store: Store) -> None:
    rows = []
    for i in range(100):
        rows.append(
            {
                "event_id": f"e{i}",
                "user_id": f"u{i % 7}",
                "item_id": f"i{i % 5}",
                "event_type": "click" if i % 4 == 0 else "view",
                "value": None,
                "timestamp": 1_700_000_000 + 60 * i,
                "context": None,
            }
        )
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(6)],
            "title": [
                "Intro to SQL",
                "50% off_sale",
                "Deep learning",
                "sql tuning",
                "Cats",
                "Dogs",
            ],
            "text": [""] * 6,
            "attributes": [None] * 6,
            "active": [True] * 5 + [False],
        }
    )
    store.ingest(LoadedData(interactions=pd.DataFrame(rows), items=items, source="test"))


def test_counts_types_and_recent(store_url):
    store = Store(store_url)
    store.migrate()
    assert activity_counts(store.engine)["events"] == 0
    assert live_counts(store.engine) == {"events": 0, "users": 0, "items": 0}
    assert event_types_over_time(store.engine)["types"] == {}
    fill(store)
    counts = activity_counts(store.engine)
    assert counts == {"events": 100, "users": 7, "items": 6, "active_items": 5}
    assert live_counts(store.engine) == {"events": 100, "users": 7, "items": 6}
    whole = event_types_over_time(store.engine, last=1000, buckets=10)
    assert whole["start"] == 1_700_000_000
    assert sum(whole["types"]["click"]) == 25 and sum(whole["types"]["view"]) == 75
    assert all(len(v) == 10 for v in whole["types"].values())
    assert whole["types"]["click"][0] == 3  # events 0, 4, 8 in the first tenth (i < 10)
    last = event_types_over_time(store.engine, last=20, buckets=4)
    assert sum(map(sum, last["types"].values())) == 20
    assert last["start"] == 1_700_000_000 + 60 * 80
    recent = recent_events(store.engine, 3)
    assert [e["user_id"] for e in recent] == ["u1", "u0", "u6"]  # events 99, 98, 97
    assert recent[0]["event_type"] == "view"
    store.close()


def test_find_items_matches_ids_and_titles_literally(store_url):
    store = Store(store_url)
    store.migrate()
    fill(store)
    assert [i["item_id"] for i in find_items(store.engine, "sql")] == ["i0", "i3"]
    assert [i["item_id"] for i in find_items(store.engine, "50%")] == ["i1"]
    assert [i["item_id"] for i in find_items(store.engine, "f_s")] == ["i1"]
    assert [i["item_id"] for i in find_items(store.engine, "%")] == ["i1"]
    assert [i["item_id"] for i in find_items(store.engine, "i5")] == ["i5"]
    store.close()
