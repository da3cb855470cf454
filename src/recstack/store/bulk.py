"""When a load counts as large, and chunking helpers shared by the bulk write paths.

A large load (many rows next to what is stored) is faster to write with the secondary
indexes (and on PostgreSQL the constraints) dropped and rebuilt once at the end, inside the
same transaction; a small one is faster left alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

LARGE_LOAD_MIN_ROWS = 100_000
LARGE_LOAD_FRACTION = 0.25


def stored_rows_estimate(conn: Connection) -> int:
    """Upper bound on stored interactions from the id range (two index lookups, not a count).

    Separate subqueries: SQLite answers a lone ``max(id)`` or ``min(id)`` from the end of the
    primary key, but both in one select make it scan a whole index.
    """
    span = conn.execute(
        sa.text(
            "SELECT (SELECT max(id) FROM interactions) - (SELECT min(id) FROM interactions) + 1"
        )
    ).scalar()
    return int(span or 0)


def is_large_load(new_rows: int, stored_rows: int) -> bool:
    """At least ``LARGE_LOAD_MIN_ROWS`` rows and ``LARGE_LOAD_FRACTION`` of the stored ones."""
    return new_rows >= LARGE_LOAD_MIN_ROWS and new_rows >= LARGE_LOAD_FRACTION * stored_rows


def chunks(frame: pd.DataFrame, chunk_size: int) -> Iterator[pd.DataFrame]:
    """Consecutive row slices of at most ``chunk_size`` rows."""
    step = max(1, int(chunk_size))
    for start in range(0, len(frame), step):
        yield frame.iloc[start : start + step]
