"""What differs between SQLite and PostgreSQL, behind one ``StoreBackend`` protocol.

The backend is chosen once, from the store URL (``backend_for``); code that is handed only an
engine or connection finds the same object with ``backend_of``. Everything else in the store
(ingest, snapshot, stats, online writes, migrations) is written once against the protocol:
engine settings, transactions, bulk loading, upserts, index rebuilds and the SQL that reads
interactions in blocks live in ``backend_sqlite`` / ``backend_postgres`` and the modules they
delegate to (``ingest_*``, ``rows_*``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url

from recstack.data.validation import EventColumns
from recstack.errors import ConfigError
from recstack.progress import ProgressTask
from recstack.store.backend_postgres import POSTGRES
from recstack.store.backend_sqlite import SQLITE
from recstack.store.blocks import EventBlock, EventFigures


class EventWriter(Protocol):
    """Stores checked event columns durably (committed before ``write`` returns)."""

    def write(self, columns: EventColumns, *, create_items: bool) -> int:
        """Insert events new by event_id; returns how many were new. Raises ``NotFoundError``
        naming unknown items (unless ``create_items``), writing nothing for the batch."""
        ...

    def close(self) -> None:
        """Release what the writer holds (connections)."""
        ...


class StoreBackend(Protocol):
    """One database's way of doing what the store needs."""

    name: str  # "sqlite" or "postgresql", as SQLAlchemy names the dialect
    read_isolation: str | None  # isolation level for consistent multi-query reads

    def create_engine(self, url: sa.URL) -> Engine:
        """An engine with the connection settings the store relies on."""
        ...

    def foreign_keys_off(self, conn: Connection) -> AbstractContextManager[None]:
        """Per-row foreign key checks off around a write transaction begun inside it (bulk
        paths that resolve every key themselves)."""
        ...

    def lock_for_migration(self, conn: Connection) -> None:
        """Serialise concurrent migrators (inside their transaction)."""
        ...

    def insert(self, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT supporting ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
        ...

    def event_writer(self, engine: Engine) -> EventWriter:
        """The online event writer for ``engine`` (see ``event_writer`` below)."""
        ...

    # ---- each user's events -------------------------------------------------------------------
    def user_events(self, engine: Engine, conn: Connection, user: int) -> sa.ColumnElement[bool]:
        """A ``WHERE`` clause on ``interactions`` for surrogate ``user``'s rows, read inside
        ``conn``'s transaction (SQLite's user index is a side file, ``store.user_index``)."""
        ...

    def index_users(
        self, engine: Engine, *, task: ProgressTask | None = None, at_least: int | None = None
    ) -> None:
        """Bring a deferred per-user index up to date when ``at_least`` events wait for it
        (None: the backend's own threshold, as after its writes)."""
        ...

    def forget_user(self, engine: Engine, user: int) -> None:
        """After surrogate ``user``'s rows were deleted: erase what a deferred index holds."""
        ...

    # ---- bulk ingest (all inside the caller's write transaction; none commits) -----------------
    def prepare_bulk(self, conn: Connection, *, large: bool) -> None: ...
    def finish_bulk(self, conn: Connection) -> None: ...
    def insert_missing_ids(self, conn: Connection, table: str, ids: Sequence[str]) -> int: ...
    def lookup_ids(self, conn: Connection, table: str, ids: Sequence[str]) -> np.ndarray: ...
    def upsert_items(self, conn: Connection, rows: pd.DataFrame) -> int: ...
    def upsert_users(self, conn: Connection, rows: pd.DataFrame) -> int: ...
    def write_interactions(self, conn: Connection, chunk: pd.DataFrame) -> int: ...
    def load_interactions(
        self,
        conn: Connection,
        frame: pd.DataFrame,
        *,
        chunk_size: int,
        task: ProgressTask,
        large: bool,
        stored: int,
    ) -> int: ...

    # ---- reads (inside a read transaction) ---------------------------------------------------
    def event_blocks(
        self, conn: Connection, ranges: Iterable[tuple[int, int]], since: int | None
    ) -> Iterator[EventBlock]:
        """Interactions of each surrogate id range (``timestamp >= since``) as arrays."""
        ...

    def event_figures(
        self, conn: Connection, ranges: Iterable[tuple[int, int]], max_item: int
    ) -> EventFigures:
        """Event type counts, time range and distinct (user, item) pairs."""
        ...


_BACKENDS: dict[str, StoreBackend] = {SQLITE.name: SQLITE, POSTGRES.name: POSTGRES}


def normalize_url(url: str | sa.URL) -> sa.URL:
    """Parse a store URL; plain ``postgresql://`` / ``postgres://`` mean psycopg 3."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in _BACKENDS:
        raise ConfigError(f"unsupported store database {backend!r}: use sqlite or postgresql")
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise ConfigError("PostgreSQL stores need the psycopg (3) driver: postgresql+psycopg://...")
    return parsed


def backend_for(url: str | sa.URL) -> StoreBackend:
    """The backend for a store URL."""
    return _BACKENDS[normalize_url(url).get_backend_name()]


def backend_of(bind: Engine | Connection) -> StoreBackend:
    """The backend of an engine or connection the store created."""
    return _BACKENDS[bind.dialect.name]


_WRITERS: weakref.WeakKeyDictionary[Engine, EventWriter] = weakref.WeakKeyDictionary()
_WRITERS_LOCK = threading.Lock()


def event_writer(engine: Engine) -> EventWriter:
    """The one online event writer of ``engine``, created on first use and shared by every
    caller in this process (on SQLite it batches concurrent callers into one commit)."""
    with _WRITERS_LOCK:
        writer = _WRITERS.get(engine)
        if writer is None:
            writer = _WRITERS[engine] = backend_of(engine).event_writer(engine)
        return writer


def close_event_writer(engine: Engine) -> None:
    """Close ``engine``'s event writer, if it has one (before disposing of the engine)."""
    with _WRITERS_LOCK:
        writer = _WRITERS.pop(engine, None)
    if writer is not None:
        writer.close()
