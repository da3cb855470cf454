"""Small event batches as plain tuples: the server's write path, with no pandas on the way.

``add_event_rows`` stores events with exactly the semantics of ``repository.add_events``
(idempotent by event_id, unknown users created, unknown items rejected unless
``create_items``, all or nothing, committed before it returns, the same ``DataError``s) in one
short transaction on a pooled driver connection: create missing users (and items), look the
surrogate ids up, and insert the events with ``ON CONFLICT (event_id) DO NOTHING``. Validation is plain Python over lists
(``frames.text_values`` and friends share the frame path's rules and messages); an unusual
value or timestamp type is handed to the pandas rules for that column, so both paths always
agree.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import pandas as pd
from sqlalchemy.engine import Engine

from recstack.data.schema import INTERACTION_COLUMNS
from recstack.errors import DataError, NotFoundError
from recstack.store.frames import (
    MAX_EVENT_TYPE_LENGTH,
    MAX_ID_LENGTH,
    check_event_types,
    context_text,
    epoch_seconds,
    is_missing,
    numeric_values,
    text_values,
)

SMALL_BATCH_ROWS = 10_000  # frames up to this size take the row path (the API's batch limit)
# SQLite admits one writer at a time and makes the others poll, sleeping 1, 2, 5, ... ms
# between tries; this process's threads queue here instead and start the moment the previous
# write commits (other processes still meet SQLite's own lock).
_SQLITE_WRITER = threading.Lock()
_LOOKUP_BATCH = 10_000  # ids per SQLite IN (...) list, well under its bound-variable limit
_INT64 = (-(2**63), 2**63)


class EventRow(NamedTuple):
    """One interaction in canonical column order (``INTERACTION_COLUMNS``).

    ``value`` None means no value; ``timestamp`` is epoch seconds; ``context`` a dict, JSON
    text or None.
    """

    event_id: str
    user_id: str
    item_id: str
    event_type: str
    value: float | None
    timestamp: int
    context: Any = None


def add_event_rows(
    engine: Engine,
    rows: Sequence[Sequence[Any]],
    *,
    create_items: bool = False,
    source: str | None = "events",
) -> int:
    """Store events durably (committed before returning); returns how many were new.

    ``rows`` are ``EventRow``s or tuples in the same order. Raises ``DataError`` for a bad
    row and ``NotFoundError`` naming unknown items (nothing is written in either case).
    """
    checked = prepare_event_rows(rows, source)
    if not checked:
        return 0
    if engine.dialect.name == "postgresql":
        with _transaction(engine, begin=None) as raw:
            return _write_postgres(raw, checked, create_items)
    with _SQLITE_WRITER, _transaction(engine, begin="BEGIN IMMEDIATE") as raw:
        return _write_sqlite(raw, checked, create_items)


@contextmanager
def _transaction(engine: Engine, begin: str | None) -> Iterator[Any]:
    """One transaction on a pooled driver connection: committed on success, rolled back on
    any error (nothing half-written).

    It skips SQLAlchemy's ``Connection`` layer, whose checkout, begin and commit events cost
    more than a small batch's SQL; the pooled connection carries the store's connect-time
    settings (WAL, foreign keys on), and ``begin`` takes SQLite's write lock up front as
    ``store.engine.write_transaction`` does. PostgreSQL connections open a transaction on
    their first statement (``begin=None``).
    """
    pooled = engine.raw_connection()
    try:
        raw = pooled.driver_connection
        if begin is not None:
            raw.execute(begin)
        try:
            yield raw
            if begin is None:
                raw.commit()
            else:
                raw.execute("COMMIT")
        except BaseException:
            if begin is None:
                raw.rollback()
            else:
                raw.execute("ROLLBACK")
            raise
    finally:
        pooled.close()


def frame_rows(frame: pd.DataFrame, source: str | None = "events") -> list[tuple[Any, ...]]:
    """A canonical interaction frame as row tuples (``value``/``context`` may be absent)."""
    missing = [
        c for c in INTERACTION_COLUMNS if c not in frame.columns and c not in ("value", "context")
    ]
    if missing:
        raise DataError(f"interactions are missing columns: {', '.join(missing)}", file=source)
    n = len(frame)
    columns = [frame[c].tolist() if c in frame.columns else [None] * n for c in INTERACTION_COLUMNS]
    return list(zip(*columns, strict=True))


def prepare_event_rows(
    rows: Sequence[Sequence[Any]], source: str | None = "events"
) -> list[tuple[Any, ...]]:
    """Rows checked and typed for the store, like ``frames.prepare_interactions`` does frames:
    ``(event_id, user_id, item_id, event_type, value | None, timestamp int, context | None)``.
    """
    if not rows:
        return []
    width = len(INTERACTION_COLUMNS)
    for row, fields in enumerate(rows):
        if len(fields) != width:
            raise DataError(
                f"row {row} of the interactions has {len(fields)} fields; events need {width} "
                f"({', '.join(INTERACTION_COLUMNS)})",
                file=source,
            )
    columns = list(zip(*rows, strict=True))
    event_ids = text_values(columns[0], "event_id", source, MAX_ID_LENGTH, "interactions")
    user_ids = text_values(columns[1], "user_id", source, MAX_ID_LENGTH, "interactions")
    item_ids = text_values(columns[2], "item_id", source, MAX_ID_LENGTH, "interactions")
    event_types = text_values(
        columns[3], "event_type", source, MAX_EVENT_TYPE_LENGTH, "interactions"
    )
    check_event_types(event_types, source)
    values = _values(columns[4], source)
    timestamps = _timestamps(columns[5], source)
    contexts = [
        None if is_missing(c) else context_text(c, row, source) for row, c in enumerate(columns[6])
    ]
    return list(
        zip(event_ids, user_ids, item_ids, event_types, values, timestamps, contexts, strict=True)
    )


def _values(raw: Sequence[Any], source: str | None) -> list[float | None]:
    """Values as floats (None when absent); other types follow ``frames.numeric_values``."""
    out: list[float | None] = []
    for value in raw:
        kind = type(value)
        if value is None or (kind is float and value != value):
            out.append(None)
        elif kind is float or kind is int:
            out.append(float(value))
        else:  # strings, numpy scalars, bools, NA: exactly the frame path's rules
            numbers = numeric_values(pd.Series(list(raw), dtype=object), source)
            return [None if v != v else float(v) for v in numbers.tolist()]
    return out


def _timestamps(raw: Sequence[Any], source: str | None) -> list[int]:
    """Epoch seconds; whole numbers pass, finite floats are floored, anything else (missing,
    datetimes, text) follows ``frames.epoch_seconds``."""
    out: list[int] = []
    for value in raw:
        kind = type(value)
        if kind is int and _INT64[0] <= value < _INT64[1]:
            out.append(value)
        elif kind is float and math.isfinite(value):
            out.append(math.floor(value))
        else:
            return epoch_seconds(pd.Series(list(raw)), source).tolist()
    return out


# ---- backends -----------------------------------------------------------------------------------
_SQLITE_INSERT = (
    "INSERT INTO interactions "
    '(event_id, user_id, item_id, event_type, value, "timestamp", context) '
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"
)


def _write_sqlite(raw: Any, rows: list[tuple[Any, ...]], create_items: bool) -> int:
    user_ids = list(dict.fromkeys(r[1] for r in rows))
    item_ids = list(dict.fromkeys(r[2] for r in rows))
    cur = raw.cursor()
    try:
        for table, ids in (("users", user_ids), ("items", item_ids if create_items else [])):
            if ids:
                cur.executemany(
                    f"INSERT INTO {table} (external_id) VALUES (?) "
                    "ON CONFLICT (external_id) DO NOTHING",
                    [(i,) for i in ids],
                )
        users = _sqlite_lookup(cur, "users", user_ids)
        items = _sqlite_lookup(cur, "items", item_ids)
        _check_items(item_ids, items)
        cur.executemany(
            _SQLITE_INSERT,
            [(e, users[u], items[i], t, v, ts, c) for e, u, i, t, v, ts, c in rows],
        )
        return max(cur.rowcount, 0)
    finally:
        cur.close()


def _sqlite_lookup(cur: Any, table: str, ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(ids), _LOOKUP_BATCH):
        batch = ids[start : start + _LOOKUP_BATCH]
        marks = ",".join("?" * len(batch))
        cur.execute(f"SELECT external_id, id FROM {table} WHERE external_id IN ({marks})", batch)
        found.update(cur.fetchall())
    return found


_PG_CREATE = (
    "INSERT INTO {table} (external_id) SELECT e FROM unnest(%b::text[]) WITH ORDINALITY "
    "AS u(e, n) WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.external_id = u.e) "
    "ORDER BY n ON CONFLICT (external_id) DO NOTHING"
)
_PG_LOOKUP = (
    "SELECT 0, external_id, id FROM users WHERE external_id = ANY(%b::text[]) "
    "UNION ALL SELECT 1, external_id, id FROM items WHERE external_id = ANY(%b::text[])"
)
_PG_INSERT = """
INSERT INTO interactions (event_id, user_id, item_id, event_type, value, "timestamp", context)
SELECT e, u, i, t, v, ts, c::json
FROM unnest(%b::text[], %b::bigint[], %b::bigint[], %b::text[], %b::float8[], %b::bigint[],
            %b::text[]) AS r(e, u, i, t, v, ts, c)
ON CONFLICT (event_id) DO NOTHING
"""


def _write_postgres(raw: Any, rows: list[tuple[Any, ...]], create_items: bool) -> int:
    """Users (and items) created without drawing sequence values for existing ids, both looked
    up in one query, the events inserted from arrays: four statements, one round trip each."""
    user_ids = list(dict.fromkeys(r[1] for r in rows))
    item_ids = list(dict.fromkeys(r[2] for r in rows))
    raw.execute(_PG_CREATE.format(table="users"), (user_ids,))
    if create_items:
        raw.execute(_PG_CREATE.format(table="items"), (item_ids,))
    found: tuple[dict[str, int], dict[str, int]] = ({}, {})
    for kind, external_id, sid in raw.execute(_PG_LOOKUP, (user_ids, item_ids)).fetchall():
        found[kind][external_id] = sid
    users, items = found
    _check_items(item_ids, items)
    columns = list(zip(*rows, strict=True))
    cur = raw.execute(
        _PG_INSERT,
        (
            list(columns[0]),
            [users[u] for u in columns[1]],
            [items[i] for i in columns[2]],
            list(columns[3]),
            list(columns[4]),
            list(columns[5]),
            list(columns[6]),
        ),
    )
    return max(cur.rowcount, 0)


def _check_items(item_ids: list[str], found: dict[str, int]) -> None:
    unknown = [i for i in item_ids if i not in found]
    if unknown:
        raise NotFoundError(f"unknown item ids (add them to the catalogue first): {unknown[:5]}")
