"""Fixtures for store tests: a migrated Store on SQLite and PostgreSQL, and small hand-made data."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from recstack.data.loaders import LoadedData
from recstack.store import Store


@pytest.fixture
def store(store_url) -> Iterator[Store]:
    """A migrated, empty store (once per backend)."""
    s = Store(store_url)
    s.migrate()
    yield s
    s.close()


def events(rows: list[tuple], context: list | None = None) -> pd.DataFrame:
    """Canonical interactions from (event_id, user, item, type, value, timestamp) tuples."""
    frame = pd.DataFrame(
        rows, columns=["event_id", "user_id", "item_id", "event_type", "value", "timestamp"]
    )
    frame["value"] = frame["value"].astype(np.float64)
    if frame["timestamp"].notna().all():
        frame["timestamp"] = frame["timestamp"].astype(np.int64)
    frame["context"] = pd.Series(
        context if context is not None else [None] * len(frame), dtype=object
    )
    return frame


# Hand-checked data behind the snapshot and stats tests:
#   u1: i1 view + i1 complete (1 + 4 = 5), i2 rate 4 (4)
#   u2: i2 purchase (4), i3 rate 2 (2)
#   u3: i1 click (1)
# and a catalogue of i1..i4 (i4 without events).
SMALL_EVENTS = [
    ("e1", "u1", "i1", "view", np.nan, 100),
    ("e2", "u1", "i1", "complete", np.nan, 200),
    ("e3", "u1", "i2", "rate", 4.0, 150),
    ("e4", "u2", "i2", "purchase", np.nan, 50),
    ("e5", "u2", "i3", "rate", 2.0, 60),
    ("e6", "u3", "i1", "click", np.nan, 70),
]


def small_items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3", "i4"],
            "title": ["Intro to SQL", "Python basics", None, "Statistics"],
            "text": ["Joins and indexes", None, None, "Means and variances"],
            "attributes": [{"genres": ["db"], "level": 1}, {"genres": ["py"]}, {}, {"level": 2}],
            "active": [True, True, True, False],
        }
    )


@pytest.fixture
def make_events():  # noqa: ANN201 - returns the ``events`` builder
    """The ``events`` builder, for tests that need their own interactions."""
    return events


@pytest.fixture
def small_data() -> LoadedData:
    """Six events of three users over a four-item catalogue (see ``SMALL_EVENTS``)."""
    return LoadedData(events(SMALL_EVENTS), items=small_items(), source="small.csv")
