"""SQLAlchemy engines for the store: SQLite in WAL mode, or PostgreSQL through psycopg 3.

SQLite connections run the driver in autocommit mode and begin transactions themselves, so a
writer can ask for ``BEGIN IMMEDIATE`` (take the write lock up front and wait for it, instead of
failing with "database is locked" when a read transaction later tries to write).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

from recstack.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "recstack_write"


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays (common in frames) as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)


def dumps_json(value: Any) -> str:
    """The one JSON encoding the store writes (also for bulk paths, so texts compare equal)."""
    return _ENCODER.encode(value)


def normalize_url(url: str) -> sa.URL:
    """Parse a store URL; plain ``postgresql://`` / ``postgres://`` mean psycopg 3."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported store database {backend!r}: use sqlite or postgresql")
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise ConfigError("PostgreSQL stores need the psycopg (3) driver: postgresql+psycopg://...")
    return parsed


def create_store_engine(url: str) -> Engine:
    """An engine for ``url`` with the pragmas/options the store relies on."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return sa.create_engine(parsed, pool_pre_ping=True, json_serializer=dumps_json, future=True)


def _sqlite_engine(url: sa.URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        json_serializer=dumps_json,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@contextmanager
def write_transaction(engine: Engine, *, check_foreign_keys: bool = True) -> Iterator[Connection]:
    """A connection inside one write transaction: committed on success, rolled back on error.

    ``check_foreign_keys=False`` turns SQLite's per-row foreign key checks off for this
    transaction (bulk paths that resolve every key themselves); PostgreSQL ignores it.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(**{_WRITE_OPTION: True})
        sqlite_unchecked = not check_foreign_keys and engine.dialect.name == "sqlite"
        if sqlite_unchecked:  # the pragma is a no-op inside a transaction, so set it before
            driver_connection(conn).execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                yield conn
        finally:
            if sqlite_unchecked:
                driver_connection(conn).execute("PRAGMA foreign_keys=ON")


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside one consistent read transaction (REPEATABLE READ on PostgreSQL)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def driver_connection(conn: Connection) -> Any:
    """The DBAPI connection (sqlite3 / psycopg) under ``conn``, in the same transaction."""
    return conn.connection.driver_connection
