"""Read the whole store (or the events since a time) into a ``Dataset`` for training.

All reads run in one consistent read transaction. Interactions stream out in blocks of a
surrogate id range, each column aggregated into one value by the database (binary on
PostgreSQL, text on SQLite) and decoded by numpy, so no Python code runs per interaction;
surrogate ids become matrix indices through lookup arrays and event types become weights once
per distinct type (pandas categoricals).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from recstack.data.dataset import Dataset
from recstack.data.idmap import IdMap
from recstack.data.weights import EventWeighting
from recstack.progress import ProgressTask
from recstack.store.backend import backend_of
from recstack.store.blocks import EventBlock, id_ranges
from recstack.store.engine import driver_connection, read_transaction

_BLOCK_IDS = 1_000_000  # interactions per block (by surrogate id range)


def event_blocks(
    conn: Connection, since: int | None = None, upto_event_id: int | None = None
) -> Iterator[EventBlock]:
    """Stream every interaction (``timestamp >= since``, ``id <= upto_event_id`` if given) in
    blocks of arrays."""
    ranges = id_ranges(conn, _BLOCK_IDS, upto_event_id)
    return backend_of(conn).event_blocks(conn, ranges, since)


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


def read_items(conn: Connection) -> tuple[np.ndarray, IdMap, pd.DataFrame]:
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
        value = orjson.loads(value)
    return value if isinstance(value, dict) else {}


def snapshot(
    engine: Engine,
    weighting: EventWeighting | None = None,
    *,
    since: int | None = None,
    upto_event_id: int | None = None,
    progress: bool = False,
) -> Dataset:
    """The store as a Dataset: every user and item (ordered by surrogate id), weighted events.

    Events dropped by the weighting (NaN weight, e.g. ratings below ``min_value``) are left out;
    ``since`` keeps only events with ``timestamp >= since`` (epoch seconds) while the id maps
    still hold every user and item; ``upto_event_id`` only events stored up to that surrogate
    id (a cached snapshot's mark, see ``marks``).
    """
    weighting = weighting or EventWeighting()
    parts: dict[str, list[np.ndarray]] = {"u": [], "i": [], "w": [], "t": []}
    with read_transaction(engine) as conn:
        user_sids, users = _read_users(conn)
        item_sids, items, item_meta = read_items(conn)
        total = _count(conn) if progress else None
        user_pos, item_pos = positions_of(user_sids), positions_of(item_sids)
        with ProgressTask("snapshot", total=total, enabled=progress) as task:
            for block in event_blocks(conn, since, upto_event_id):
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
