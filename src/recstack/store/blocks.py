"""Interactions read in blocks of a surrogate id range, as arrays, for snapshots and stats.

Each backend aggregates a block's columns into one value per column inside the database (in
C), so no Python code runs per event; these are the shapes both backends decode into.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from recstack.errors import RecstackError

TYPE_SEPARATOR = "\x1f"  # ASCII unit separator (event types have no control characters)
NO_LOWER_BOUND = -(2**63)


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


@dataclass
class EventFigures:
    """Aggregates over the interactions table."""

    type_counts: dict[str, int] = field(default_factory=dict)
    first: int | None = None
    last: int | None = None
    distinct_pairs: int = 0


def id_ranges(
    conn: Connection, block_ids: int, upto: int | None = None
) -> Iterator[tuple[int, int]]:
    """``[start, stop)`` surrogate id ranges of ``block_ids`` covering every interaction (up to
    id ``upto`` when given).

    One subquery each: both in one select make SQLite scan an index.
    """
    low, high = conn.execute(
        sa.text("SELECT (SELECT min(id) FROM interactions), (SELECT max(id) FROM interactions)")
    ).one()
    if low is None:
        return
    high = int(high) if upto is None else min(int(high), int(upto))
    for start in range(int(low), high + 1, block_ids):
        yield start, min(start + block_ids, high + 1)


def event_types(joined: str | bytes | None) -> pd.Series:
    """Event types joined by ``TYPE_SEPARATOR`` as a categorical Series."""
    if not joined:
        return pd.Series(pd.Categorical([]))
    if isinstance(joined, bytes):
        joined = joined.decode()
    parts = pc.split_pattern(pa.array([joined]), TYPE_SEPARATOR).values
    return parts.dictionary_encode().to_pandas()


def checked(block: EventBlock, expected: int) -> EventBlock:
    """``block`` if every column holds ``expected`` events, else an error (never bad data)."""
    columns = (block.user_id, block.item_id, block.event_type, block.value, block.timestamp)
    if not all(len(a) == expected for a in columns):
        raise RecstackError(f"snapshot read a malformed block ({expected} events expected)")
    return block


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


def distinct_sorted(keys: np.ndarray) -> np.ndarray:
    """``keys`` sorted with repeats dropped (keeps the per-block arrays small)."""
    keys = np.sort(keys)
    if len(keys) < 2:
        return keys
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
