"""Read the whole store (or the events since a time) into a ``Dataset`` for training.

All reads run in one consistent read transaction. Interactions stream out in blocks of a
surrogate id range, each column aggregated into one value by the database (binary on
PostgreSQL, text on SQLite) and decoded by numpy, so no Python code runs per interaction;
surrogate ids become matrix indices through lookup arrays and event types become weights once
per distinct type (pandas categoricals).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from recstack.data.dataset import Dataset
from recstack.data.idmap import IdMap
from recstack.data.weights import EventWeighting
from recstack.errors import RecstackError
from recstack.progress import ProgressTask
from recstack.store.engine import driver_connection, read_transaction

_BLOCK_IDS = 1_000_000  # interactions per block (by surrogate id range)
_TYPE_SEPARATOR = "\x1f"  # ASCII unit separator between event types


@dataclass
class EventBlock:
    """One block of interactions as arrays (surrogate user/item ids, as stored)."""

    user_id: np.ndarray
    item_id: np.ndarray
    event_type: pd.Series  # categorical
    value: np.ndarray
    timestamp: np.ndarray

    def __len__(self) -> int:
        return len(self.user_id)


def _event_types(joined: str | bytes | None) -> pd.Series:
    if not joined:
        return pd.Series(pd.Categorical([]))
    if isinstance(joined, bytes):
        joined = joined.decode()
    parts = pc.split_pattern(pa.array([joined]), _TYPE_SEPARATOR).values
    return parts.dictionary_encode().to_pandas()


def _check(block: EventBlock, expected: int) -> EventBlock:
    if (
        not all(
            len(a) == expected
            for a in (block.item_id, block.event_type, block.value, block.timestamp)
        )
        or len(block) != expected
    ):
        raise RecstackError(f"snapshot read a malformed block ({expected} events expected)")
    return block


def _id_ranges(conn: Connection, block_ids: int) -> Iterator[tuple[int, int]]:
    low, high = conn.execute(sa.text("SELECT min(id), max(id) FROM interactions")).one()
    if low is None:
        return
    for start in range(int(low), int(high) + 1, block_ids):
        yield start, start + block_ids


# Each column is aggregated into one value per block inside the database (in C), so no
# Python code runs per event. PostgreSQL sends big-endian binary numbers (int8send/float8send).
_PG_BLOCK = """
SELECT count(*), string_agg(int8send(user_id), ''), string_agg(int8send(item_id), ''),
       string_agg(event_type, E'\\x1f'), string_agg(float8send(coalesce(value, 'NaN')), ''),
       string_agg(int8send("timestamp"), '')
FROM interactions WHERE id >= %s AND id < %s AND "timestamp" >= %s
"""

_SQLITE_BLOCK = """
SELECT count(*), group_concat(user_id), group_concat(item_id), group_concat(event_type, char(31)),
       group_concat(ifnull(value, 'nan')), group_concat("timestamp")
FROM interactions WHERE id >= ? AND id < ? AND "timestamp" >= ?
"""

_NO_LOWER_BOUND = -(2**63)


def _postgres_blocks(conn: Connection, since: int | None) -> Iterator[EventBlock]:
    cur = driver_connection(conn).cursor(binary=True)
    floor = _NO_LOWER_BOUND if since is None else int(since)
    for start, stop in _id_ranges(conn, _BLOCK_IDS):
        n, users, items, types, values, stamps = cur.execute(
            _PG_BLOCK, (start, stop, floor)
        ).fetchone()
        if not n:
            continue
        yield _check(
            EventBlock(
                np.frombuffer(users, dtype=">i8").astype(np.int64),
                np.frombuffer(items, dtype=">i8").astype(np.int64),
                _event_types(types),
                np.frombuffer(values, dtype=">f8").astype(np.float64),
                np.frombuffer(stamps, dtype=">i8").astype(np.int64),
            ),
            n,
        )
    cur.close()


def _sqlite_blocks(conn: Connection, since: int | None) -> Iterator[EventBlock]:
    raw = driver_connection(conn)
    floor = _NO_LOWER_BOUND if since is None else int(since)
    for start, stop in _id_ranges(conn, _BLOCK_IDS):
        n, users, items, types, values, stamps = raw.execute(
            _SQLITE_BLOCK, (start, stop, floor)
        ).fetchone()
        if not n:
            continue
        yield _check(
            EventBlock(
                np.fromstring(users, dtype=np.int64, sep=","),
                np.fromstring(items, dtype=np.int64, sep=","),
                _event_types(types),
                np.fromstring(values, dtype=np.float64, sep=","),
                np.fromstring(stamps, dtype=np.int64, sep=","),
            ),
            n,
        )


def event_blocks(conn: Connection, since: int | None = None) -> Iterator[EventBlock]:
    """Stream every interaction (``timestamp >= since`` if given) in blocks of arrays."""
    if conn.dialect.name == "postgresql":
        return _postgres_blocks(conn, since)
    return _sqlite_blocks(conn, since)


def positions_of(surrogates: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping surrogate ids to their positions in ``surrogates`` (sorted ascending).

    Dense ids use a lookup array (one gather per event); ids with large gaps (sequences skip
    values after rollbacks) fall back to a binary search instead of a huge array.

    >>> positions_of(np.array([3, 5, 9]))(np.array([9, 3, 5, 3])).tolist()
    [2, 0, 1, 0]
    """
    surrogates = np.asarray(surrogates, dtype=np.int64)
    if not len(surrogates):
        return lambda values: np.full(len(values), -1, dtype=np.int32)
    top = int(surrogates[-1])
    if top <= 4 * len(surrogates) + 1_000_000:
        table = np.full(top + 1, -1, dtype=np.int32)
        table[surrogates] = np.arange(len(surrogates), dtype=np.int32)
        return lambda values: table[values]
    return lambda values: np.searchsorted(surrogates, values).astype(np.int32)


def _read_users(conn: Connection) -> tuple[np.ndarray, IdMap]:
    rows = driver_connection(conn).execute("SELECT id, external_id FROM users ORDER BY id")
    rows = rows.fetchall()
    sids = np.asarray([r[0] for r in rows], dtype=np.int64)
    return sids, IdMap(r[1] for r in rows)


def _read_items(conn: Connection) -> tuple[np.ndarray, IdMap, pd.DataFrame]:
    rows = (
        driver_connection(conn)
        .execute("SELECT id, external_id, title, text, attributes, active FROM items ORDER BY id")
        .fetchall()
    )
    sids = np.asarray([r[0] for r in rows], dtype=np.int64)
    meta = pd.DataFrame(
        {
            "title": pd.Series([r[2] for r in rows], dtype=object),
            "text": pd.Series([r[3] for r in rows], dtype=object),
            "attributes": pd.Series([_as_dict(r[4]) for r in rows], dtype=object),
            "active": np.asarray([bool(r[5]) for r in rows], dtype=bool),
        }
    )
    return sids, IdMap(r[1] for r in rows), meta


def _count(conn: Connection) -> int:
    return driver_connection(conn).execute("SELECT count(*) FROM interactions").fetchone()[0]


def _as_dict(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def snapshot(
    engine: Engine,
    weighting: EventWeighting | None = None,
    *,
    since: int | None = None,
    progress: bool = False,
) -> Dataset:
    """The store as a Dataset: every user and item (ordered by surrogate id), weighted events.

    Events dropped by the weighting (NaN weight, e.g. ratings below ``min_value``) are left out;
    ``since`` keeps only events with ``timestamp >= since`` (epoch seconds) while the id maps
    still hold every user and item.
    """
    weighting = weighting or EventWeighting()
    parts: dict[str, list[np.ndarray]] = {"u": [], "i": [], "w": [], "t": []}
    with read_transaction(engine) as conn:
        user_sids, users = _read_users(conn)
        item_sids, items, item_meta = _read_items(conn)
        total = _count(conn) if progress else None
        user_pos, item_pos = positions_of(user_sids), positions_of(item_sids)
        with ProgressTask("snapshot", total=total, enabled=progress) as task:
            for block in event_blocks(conn, since):
                weight = weighting.weights(block.event_type, pd.Series(block.value))
                keep = ~np.isnan(weight)
                parts["u"].append(user_pos(block.user_id[keep]))
                parts["i"].append(item_pos(block.item_id[keep]))
                parts["w"].append(weight[keep])
                parts["t"].append(block.timestamp[keep])
                task.advance(len(block))

    def joined(key: str, dtype: type) -> np.ndarray:
        return np.concatenate(parts[key]) if parts[key] else np.empty(0, dtype=dtype)

    return Dataset.from_arrays(
        users,
        items,
        joined("u", np.int32),
        joined("i", np.int32),
        joined("w", np.float32),
        joined("t", np.int64),
        item_meta=item_meta,
    )
