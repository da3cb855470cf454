"""The PostgreSQL backend (psycopg 3): bulk paths in ``ingest_postgres``, the online event
writer in ``rows_postgres``, and block reads as binary aggregates (``int8send``/``float8send``)
that numpy decodes without a Python loop per event.

Commits are durable as configured on the server (``synchronous_commit``, on by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from recstack.data.validation import dumps_json
from recstack.progress import ProgressTask
from recstack.store import ingest_postgres
from recstack.store.blocks import (
    NO_LOWER_BOUND,
    EventBlock,
    EventFigures,
    checked,
    count_distinct,
    distinct_sorted,
    event_types,
)
from recstack.store.bulk_delegate import BulkDelegate
from recstack.store.dbapi import driver_connection
from recstack.store.group_commit import GroupCommitWriter
from recstack.store.rows_postgres import postgres_event_writer
from recstack.store.tables import interactions

# Any constant works; it only serialises concurrent migrators on one PostgreSQL server.
_MIGRATION_LOCK_KEY = 0x7265637374616B  # "recstak"

_BLOCK = """
SELECT count(*), string_agg(int8send(user_id), ''), string_agg(int8send(item_id), ''),
       string_agg(event_type, E'\\x1f'), string_agg(float8send(coalesce(value, 'NaN')), ''),
       string_agg(int8send("timestamp"), '')
FROM interactions WHERE id >= %s AND id < %s AND "timestamp" >= %s
"""
_TYPES = """
SELECT event_type, count(*), min("timestamp"), max("timestamp")
FROM interactions GROUP BY event_type
"""
_PAIRS = """
SELECT string_agg(int8send(user_id * %s + item_id), '')
FROM interactions WHERE id >= %s AND id < %s
"""


class PostgresBackend(BulkDelegate):
    """PostgreSQL through psycopg 3."""

    ingest = ingest_postgres

    name = "postgresql"
    read_isolation = "REPEATABLE READ"  # one snapshot across the queries of a read

    def create_engine(self, url: sa.URL) -> Engine:
        return sa.create_engine(url, pool_pre_ping=True, json_serializer=dumps_json)

    @contextmanager
    def foreign_keys_off(self, conn: Connection) -> Iterator[None]:
        """PostgreSQL keeps checking (large loads drop and re-add the constraints instead)."""
        yield

    def lock_for_migration(self, conn: Connection) -> None:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})

    def insert(self, table: sa.Table) -> postgresql.Insert:
        return postgresql.insert(table)

    def event_writer(self, engine: Engine) -> GroupCommitWriter:
        return postgres_event_writer(engine)

    def user_events(self, engine: Engine, conn: Connection, user: int) -> sa.ColumnElement[bool]:
        return interactions.c.user_id == user  # ix_interactions_user_ts

    def index_users(
        self, engine: Engine, *, task: ProgressTask | None = None, at_least: int | None = None
    ) -> None:
        """Nothing: the index is kept by every write."""

    def forget_user(self, engine: Engine, user: int) -> None:
        """Nothing: the index lost the user's entries with their rows."""

    # ---- reads ------------------------------------------------------------------------------
    def event_blocks(
        self, conn: Connection, ranges: Iterable[tuple[int, int]], since: int | None
    ) -> Iterator[EventBlock]:
        """Each column as one binary aggregate (big-endian numbers) per block."""
        cur = driver_connection(conn).cursor(binary=True)
        floor = NO_LOWER_BOUND if since is None else int(since)
        try:
            for start, stop in ranges:
                n, users, items, types, values, stamps = cur.execute(
                    _BLOCK, (start, stop, floor)
                ).fetchone()
                if n:
                    yield checked(
                        EventBlock(
                            np.frombuffer(users, dtype=">i8").astype(np.int64),
                            np.frombuffer(items, dtype=">i8").astype(np.int64),
                            event_types(types),
                            np.frombuffer(values, dtype=">f8").astype(np.float64),
                            np.frombuffer(stamps, dtype=">i8").astype(np.int64),
                        ),
                        n,
                    )
        finally:
            cur.close()

    def event_figures(
        self, conn: Connection, ranges: Iterable[tuple[int, int]], max_item: int
    ) -> EventFigures:
        """``GROUP BY event_type`` (a hash aggregate), then the pairs as binary int8 blocks."""
        rows = conn.execute(sa.text(_TYPES)).all()
        if not rows:
            return EventFigures()
        figures = EventFigures(
            type_counts={str(name): int(count) for name, count, _, _ in rows},
            first=min(int(row[2]) for row in rows),
            last=max(int(row[3]) for row in rows),
        )
        cur = driver_connection(conn).cursor(binary=True)
        pairs: list[np.ndarray] = []
        for start, stop in ranges:
            (packed,) = cur.execute(_PAIRS, (max_item + 1, start, stop)).fetchone()
            if packed:
                pairs.append(distinct_sorted(np.frombuffer(packed, dtype=">i8").astype(np.int64)))
        cur.close()
        figures.distinct_pairs = count_distinct(pairs)
        return figures


POSTGRES = PostgresBackend()
