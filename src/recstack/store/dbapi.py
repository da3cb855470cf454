"""The driver (DBAPI) connection under a SQLAlchemy connection, and the write-intent flag.

Both backends run their fast paths on the driver connection (sqlite3 / psycopg) inside the
transaction SQLAlchemy opened, so these helpers sit below every other store module.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

# Execution option marking a connection that will write: SQLite then begins with
# BEGIN IMMEDIATE (takes the write lock up front) instead of BEGIN.
WRITE_OPTION = "recstack_write"


def driver_connection(conn: Connection) -> Any:
    """The DBAPI connection (sqlite3 / psycopg) under ``conn``, in the same transaction."""
    return conn.connection.driver_connection
