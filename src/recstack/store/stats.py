"""Summary figures of what the store holds (``recstack stats``, the admin endpoint).

Entity counts are SQL aggregates. Event-type counts, the time range and the distinct
(user, item) pairs come from one pass over the interactions in blocks of a surrogate id
range, each block's columns aggregated into one value inside the database (as the snapshot
reads them): numpy counts the distinct pairs with a sort, and on SQLite pyarrow counts the
event types (PostgreSQL counts them with a hash ``GROUP BY``). ``COUNT(DISTINCT ...)`` would
sort or hash every pair inside the database instead: several times slower on SQLite, and on
PostgreSQL at the mercy of the planner's row estimates right after a bulk load.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from recstack.store.engine import driver_connection, read_transaction
from recstack.store.timeformat import iso_timestamp

_BLOCK_IDS = 1_000_000  # interactions per block (by surrogate id range)
_TYPE_SEPARATOR = "\x1f"  # ASCII unit separator (event types have no control characters)


@dataclass
class EventFigures:
    """Aggregates over the interactions table."""

    type_counts: dict[str, int] = field(default_factory=dict)
    first: int | None = None
    last: int | None = None
    distinct_pairs: int = 0


def store_stats(engine: Engine) -> dict[str, Any]:
    """Counts, density and time range of the store.

    ``density`` is ``distinct (user, item) pairs / (users * items)`` and ``sparsity`` is
    ``1 - density``; ``interactions`` counts every event, repeats included. Timestamps are
    ISO 8601 UTC strings (None for an empty store).
    """
    with read_transaction(engine) as conn:
        n_users = conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
        n_items, n_active, max_item = conn.execute(
            sa.text(
                "SELECT count(*), count(CASE WHEN active THEN 1 END), coalesce(max(id), 0) "
                "FROM items"
            )
        ).one()
        if conn.dialect.name == "postgresql":
            events = _postgres_figures(conn, int(max_item))
        else:
            events = _sqlite_figures(conn, int(max_item))
    cells = int(n_users) * int(n_items)
    density = events.distinct_pairs / cells if cells else 0.0
    type_counts = events.type_counts
    return {
        "database": engine.dialect.name,
        "url": engine.url.render_as_string(hide_password=True),
        "users": int(n_users),
        "items": int(n_items),
        "active_items": int(n_active),
        "interactions": sum(type_counts.values()),
        "distinct_pairs": events.distinct_pairs,
        "density": density,
        "sparsity": 1.0 - density if cells else 1.0,
        "event_types": dict(sorted(type_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "first_timestamp": iso_timestamp(events.first),
        "last_timestamp": iso_timestamp(events.last),
    }


def _id_ranges(conn: Connection) -> Iterator[tuple[int, int]]:
    low, high = conn.execute(  # one subquery each: both in one select scan an index on SQLite
        sa.text("SELECT (SELECT min(id) FROM interactions), (SELECT max(id) FROM interactions)")
    ).one()
    if low is None:
        return
    for start in range(int(low), int(high) + 1, _BLOCK_IDS):
        yield start, start + _BLOCK_IDS


def count_distinct(blocks: list[np.ndarray]) -> int:
    """Number of distinct values over all arrays (int64 keys).

    A sort and a comparison of neighbours: several times faster than ``np.unique`` on
    millions of keys.

    >>> count_distinct([np.array([5, 1, 5]), np.array([1, 7]), np.array([], dtype=np.int64)])
    3
    """
    keys = np.sort(np.concatenate(blocks)) if blocks else np.empty(0, dtype=np.int64)
    if not len(keys):
        return 0
    return int(np.count_nonzero(keys[1:] != keys[:-1])) + 1


def _distinct_sorted(keys: np.ndarray) -> np.ndarray:
    """``keys`` sorted with repeats dropped (keeps the per-block arrays small)."""
    keys = np.sort(keys)
    if len(keys) < 2:
        return keys
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))]


_SQLITE_BLOCK = """
SELECT min(timestamp), max(timestamp), group_concat(event_type, char(31)),
       group_concat(user_id), group_concat(item_id)
FROM interactions WHERE id >= ? AND id < ?
"""


def _sqlite_figures(conn: Connection, max_item: int) -> EventFigures:
    """One block scan: time range, event types and user/item ids joined into text per block.

    pyarrow counts the event types and numpy parses the ids; comparing every row with every
    known type in SQL, or a ``GROUP BY`` (a sort of all rows), costs more.
    """
    raw = driver_connection(conn)
    figures = EventFigures()
    type_counts: Counter[str] = Counter()
    span = max_item + 1
    pairs: list[np.ndarray] = []
    for start, stop in _id_ranges(conn):
        low, high, types, users, items = raw.execute(_SQLITE_BLOCK, (start, stop)).fetchone()
        if users is None:
            continue
        figures.first = low if figures.first is None else min(figures.first, low)
        figures.last = high if figures.last is None else max(figures.last, high)
        names = pc.split_pattern(pa.array([types]), _TYPE_SEPARATOR).values
        for entry in pc.value_counts(names).to_pylist():
            type_counts[entry["values"]] += entry["counts"]
        user_ids = np.fromstring(users, dtype=np.int64, sep=",")
        item_ids = np.fromstring(items, dtype=np.int64, sep=",")
        pairs.append(_distinct_sorted(user_ids * span + item_ids))
    figures.type_counts = dict(type_counts)
    figures.distinct_pairs = count_distinct(pairs)
    return figures


_PG_PAIRS = """
SELECT string_agg(int8send(user_id * %s + item_id), '')
FROM interactions WHERE id >= %s AND id < %s
"""


def _postgres_figures(conn: Connection, max_item: int) -> EventFigures:
    """``GROUP BY event_type`` (a hash aggregate), then the pairs as binary int8 blocks."""
    rows = conn.execute(
        sa.text(
            'SELECT event_type, count(*), min("timestamp"), max("timestamp") '
            "FROM interactions GROUP BY event_type"
        )
    ).all()
    if not rows:
        return EventFigures()
    figures = EventFigures(
        type_counts={str(name): int(count) for name, count, _, _ in rows},
        first=min(int(row[2]) for row in rows),
        last=max(int(row[3]) for row in rows),
    )
    cur = driver_connection(conn).cursor(binary=True)
    pairs: list[np.ndarray] = []
    for start, stop in _id_ranges(conn):
        (packed,) = cur.execute(_PG_PAIRS, (max_item + 1, start, stop)).fetchone()
        if packed:
            pairs.append(_distinct_sorted(np.frombuffer(packed, dtype=">i8").astype(np.int64)))
    cur.close()
    figures.distinct_pairs = count_distinct(pairs)
    return figures
