"""Engines and transactions for the store, the same calls on SQLite and PostgreSQL.

What differs (connection settings, how a write transaction begins, read isolation) is the
backend's (``store.backend``); this module is what the rest of the store calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine

from recstack.data.validation import dumps_json
from recstack.store.backend import backend_for, backend_of, normalize_url
from recstack.store.dbapi import WRITE_OPTION, driver_connection

__all__ = [
    "create_store_engine",
    "driver_connection",
    "dumps_json",
    "normalize_url",
    "read_transaction",
    "write_transaction",
]


def create_store_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings the store relies on (see the backends)."""
    return backend_for(url).create_engine(normalize_url(url))


@contextmanager
def write_transaction(engine: Engine, *, check_foreign_keys: bool = True) -> Iterator[Connection]:
    """A connection inside one write transaction: committed on success, rolled back on error.

    ``check_foreign_keys=False`` turns per-row foreign key checks off for this transaction
    where the database allows it (bulk paths that resolve every key themselves).
    """
    backend = backend_of(engine)
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        if check_foreign_keys:
            with conn.begin():
                yield conn
        else:
            with backend.foreign_keys_off(conn), conn.begin():
                yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside one consistent read transaction (one snapshot for all its queries)."""
    isolation = backend_of(engine).read_isolation
    with engine.connect() as conn:
        if isolation is not None:
            conn = conn.execution_options(isolation_level=isolation)
        with conn.begin():
            yield conn
