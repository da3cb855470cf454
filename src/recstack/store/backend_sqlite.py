"""The SQLite backend: one file in WAL mode, durable on commit, bulk paths in ``ingest_sqlite``
and the online event writer in ``rows_sqlite``.

Connections run the driver in autocommit mode and begin transactions themselves, so a writer
can ask for ``BEGIN IMMEDIATE`` (take the write lock up front and wait for it, instead of
failing with "database is locked" when a read transaction later tries to write).
``synchronous=FULL`` makes every commit wait until the WAL is on disk: an event the store
acknowledged survives a power cut (under ``NORMAL`` the last commits could roll back).

The WAL is copied back into the database file (checkpointed) once it holds
``WAL_CHECKPOINT_PAGES`` pages rather than SQLite's default 1,000: a batch of API events
dirties about one index page per event, so the default would checkpoint after nearly every
batch, while a longer WAL writes each page back once for many commits that changed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine

from recstack.data.validation import dumps_json
from recstack.progress import ProgressTask
from recstack.store import ingest_sqlite, user_index
from recstack.store.blocks import (
    NO_LOWER_BOUND,
    TYPE_SEPARATOR,
    EventBlock,
    EventFigures,
    checked,
    count_distinct,
    distinct_sorted,
    event_types,
)
from recstack.store.bulk_delegate import BulkDelegate
from recstack.store.dbapi import WRITE_OPTION, driver_connection
from recstack.store.group_commit import GroupCommitWriter
from recstack.store.rows_sqlite import sqlite_event_writer
from recstack.store.tables import interactions

BUSY_TIMEOUT_MS = 30_000
WAL_CHECKPOINT_PAGES = 8_192  # 32 MiB of 4 KiB pages
CONNECTION_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=FULL",
    "foreign_keys=ON",
    f"busy_timeout={BUSY_TIMEOUT_MS}",
    "temp_store=MEMORY",
    f"wal_autocheckpoint={WAL_CHECKPOINT_PAGES}",
    "journal_size_limit=67108864",  # after a checkpoint, keep at most 64 MiB of WAL file
)

_BLOCK = """
SELECT count(*), group_concat(user_id), group_concat(item_id), group_concat(event_type, char(31)),
       group_concat(ifnull(value, 'nan')), group_concat("timestamp")
FROM interactions WHERE id >= ? AND id < ? AND "timestamp" >= ?
"""
_FIGURES = """
SELECT min(timestamp), max(timestamp), group_concat(event_type, char(31)),
       group_concat(user_id), group_concat(item_id)
FROM interactions WHERE id >= ? AND id < ?
"""


class SQLiteBackend(BulkDelegate):
    """SQLite through the standard library's sqlite3."""

    ingest = ingest_sqlite

    name = "sqlite"
    read_isolation = None  # a read transaction in WAL mode already sees one snapshot

    def create_engine(self, url: sa.URL) -> Engine:
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            json_serializer=dumps_json,
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
            for pragma in CONNECTION_PRAGMAS:
                dbapi_conn.execute(f"PRAGMA {pragma}")

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @contextmanager
    def foreign_keys_off(self, conn: Connection) -> Iterator[None]:
        raw = driver_connection(conn)  # the pragma is a no-op inside a transaction: set it before
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            yield
        finally:
            raw.execute("PRAGMA foreign_keys=ON")

    def lock_for_migration(self, conn: Connection) -> None:
        """Nothing to do: the migration's write transaction holds SQLite's one write lock."""

    def insert(self, table: sa.Table) -> sqlite.Insert:
        return sqlite.insert(table)

    def event_writer(self, engine: Engine) -> GroupCommitWriter:
        return sqlite_event_writer(engine)

    def user_events(self, engine: Engine, conn: Connection, user: int) -> sa.ColumnElement[bool]:
        return user_index.user_filter(engine, conn, interactions, user)

    def index_users(
        self, engine: Engine, *, task: ProgressTask | None = None, at_least: int | None = None
    ) -> None:
        threshold = user_index.MERGE_ROWS if at_least is None else at_least
        user_index.merge(engine.url.database, at_least=threshold, task=task)

    def forget_user(self, engine: Engine, user: int) -> None:
        user_index.forget_user(engine.url.database, user)

    # ---- reads ------------------------------------------------------------------------------
    def event_blocks(
        self, conn: Connection, ranges: Iterable[tuple[int, int]], since: int | None
    ) -> Iterator[EventBlock]:
        """Each column joined into text by ``group_concat`` and parsed by numpy."""
        raw = driver_connection(conn)
        floor = NO_LOWER_BOUND if since is None else int(since)
        for start, stop in ranges:
            n, users, items, types, values, stamps = raw.execute(
                _BLOCK, (start, stop, floor)
            ).fetchone()
            if n:
                yield checked(
                    EventBlock(
                        np.fromstring(users, dtype=np.int64, sep=","),
                        np.fromstring(items, dtype=np.int64, sep=","),
                        event_types(types),
                        np.fromstring(values, dtype=np.float64, sep=","),
                        np.fromstring(stamps, dtype=np.int64, sep=","),
                    ),
                    n,
                )

    def event_figures(
        self, conn: Connection, ranges: Iterable[tuple[int, int]], max_item: int
    ) -> EventFigures:
        """One scan of blocks: time range, event types and user/item ids joined into text.

        pyarrow counts the event types and numpy parses the ids; comparing every row with
        every known type in SQL, or a ``GROUP BY`` (a sort of all rows), costs more.
        """
        raw = driver_connection(conn)
        figures = EventFigures()
        type_counts: dict[str, int] = {}
        pairs: list[np.ndarray] = []
        for start, stop in ranges:
            low, high, types, users, items = raw.execute(_FIGURES, (start, stop)).fetchone()
            if users is None:
                continue
            figures.first = low if figures.first is None else min(figures.first, low)
            figures.last = high if figures.last is None else max(figures.last, high)
            for name, count in _type_counts(types):
                type_counts[name] = type_counts.get(name, 0) + count
            user_ids = np.fromstring(users, dtype=np.int64, sep=",")
            item_ids = np.fromstring(items, dtype=np.int64, sep=",")
            pairs.append(distinct_sorted(user_ids * (max_item + 1) + item_ids))
        figures.type_counts = type_counts
        figures.distinct_pairs = count_distinct(pairs)
        return figures


def _type_counts(joined: str) -> list[tuple[str, int]]:
    """(event type, count) for types joined by ``TYPE_SEPARATOR``, counted by pyarrow."""
    names = pc.split_pattern(pa.array([joined]), TYPE_SEPARATOR).values
    return [(e["values"], e["counts"]) for e in pc.value_counts(names).to_pylist()]


SQLITE = SQLiteBackend()
