"""SQLite fast paths: plain-tuple ``executemany`` on the raw sqlite3 connection.

All functions run on a connection already inside the caller's write transaction; they never
commit. Row counts come from ``cursor.rowcount``, which sqlite3 sums over an executemany.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from recstack.store.engine import driver_connection

_LOOKUP_BATCH = 20_000  # well under SQLite's 32766 bound variables
_BULK_CACHE_KIB = 256 * 1024


def prepare_bulk(conn: Connection) -> None:
    """Give this connection a large page cache for a bulk load."""
    driver_connection(conn).execute(f"PRAGMA cache_size=-{_BULK_CACHE_KIB}")


def finish_bulk(conn: Connection) -> None:
    """Return the connection's cache to SQLite's default size."""
    driver_connection(conn).execute("PRAGMA cache_size=-2000")


def insert_missing_ids(conn: Connection, table: str, external_ids: Sequence[str]) -> int:
    """Create bare ``users``/``items`` rows for ids not yet stored; returns how many were new."""
    cur = driver_connection(conn).cursor()
    cur.executemany(
        f"INSERT OR IGNORE INTO {table} (external_id) VALUES (?)",
        ((e,) for e in external_ids),
    )
    created = max(cur.rowcount, 0)
    cur.close()
    return created


def lookup_ids(conn: Connection, table: str, external_ids: Sequence[str]) -> np.ndarray:
    """Surrogate ids (int64) aligned with ``external_ids``; -1 where the id is not stored."""
    wanted = pd.Index(list(external_ids), dtype=object)
    found_ext: list[str] = []
    found_id: list[int] = []
    raw = driver_connection(conn)
    for start in range(0, len(wanted), _LOOKUP_BATCH):
        batch = wanted[start : start + _LOOKUP_BATCH].tolist()
        marks = ",".join("?" * len(batch))
        rows = raw.execute(
            f"SELECT external_id, id FROM {table} WHERE external_id IN ({marks})", batch
        ).fetchall()
        found_ext.extend(r[0] for r in rows)
        found_id.extend(r[1] for r in rows)
    return _align(wanted, found_ext, found_id)


def _align(wanted: pd.Index, found_ext: list[str], found_id: list[int]) -> np.ndarray:
    out = np.full(len(wanted), -1, dtype=np.int64)
    if found_ext:
        pos = wanted.get_indexer(pd.Index(found_ext, dtype=object))
        out[pos] = np.asarray(found_id, dtype=np.int64)
    return out


_UPSERT_ITEMS = """
INSERT INTO items (external_id, title, text, attributes, active) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (external_id) DO UPDATE SET
    title = COALESCE(excluded.title, items.title),
    text = COALESCE(excluded.text, items.text),
    attributes = COALESCE(excluded.attributes, items.attributes),
    active = excluded.active,
    updated_at = CURRENT_TIMESTAMP
WHERE items.title IS NOT COALESCE(excluded.title, items.title)
   OR items.text IS NOT COALESCE(excluded.text, items.text)
   OR items.attributes IS NOT COALESCE(excluded.attributes, items.attributes)
   OR items.active IS NOT excluded.active
"""

_UPSERT_USERS = """
INSERT INTO users (external_id, attributes) VALUES (?, ?)
ON CONFLICT (external_id) DO UPDATE SET attributes = excluded.attributes
WHERE excluded.attributes IS NOT NULL AND users.attributes IS NOT excluded.attributes
"""


def upsert_items(conn: Connection, rows: pd.DataFrame) -> int:
    """Insert or update catalogue rows (see ``frames.prepare_items``); rows inserted + changed."""
    cur = driver_connection(conn).cursor()
    cur.executemany(
        _UPSERT_ITEMS,
        zip(
            rows["item_id"].tolist(),
            rows["title"].tolist(),
            rows["text"].tolist(),
            rows["attributes"].tolist(),
            [int(a) for a in rows["active"].tolist()],
            strict=True,
        ),
    )
    affected = max(cur.rowcount, 0)
    cur.close()
    return affected


def upsert_users(conn: Connection, rows: pd.DataFrame) -> int:
    """Insert users or replace their attributes when new ones are given; rows inserted + changed."""
    cur = driver_connection(conn).cursor()
    cur.executemany(
        _UPSERT_USERS, zip(rows["user_id"].tolist(), rows["attributes"].tolist(), strict=True)
    )
    affected = max(cur.rowcount, 0)
    cur.close()
    return affected


_INSERT_INTERACTIONS = (
    "INSERT OR IGNORE INTO interactions "
    '(event_id, user_id, item_id, event_type, value, "timestamp", context) VALUES '
)
_ROW_MARKS = "(?, ?, ?, ?, ?, ?, ?)"
_ROWS_PER_STATEMENT = 100  # 700 bound variables per statement: fewer, bigger steps


def write_interactions(conn: Connection, chunk: pd.DataFrame) -> int:
    """Insert interactions whose event_id is new (``user_id``/``item_id`` are surrogate ids).

    Rows go in as multi-row ``VALUES`` statements (parameters laid out by numpy), which costs
    about half of a one-row-per-statement executemany.
    """
    n = len(chunk)
    params = np.empty((n, 7), dtype=object)
    params[:, 0] = chunk["event_id"].to_numpy(dtype=object)
    params[:, 1] = chunk["user_id"].to_numpy(dtype=np.int64).tolist()
    params[:, 2] = chunk["item_id"].to_numpy(dtype=np.int64).tolist()
    params[:, 3] = chunk["event_type"].to_numpy(dtype=object)
    params[:, 4] = chunk["value"].to_numpy(dtype=np.float64).tolist()  # NaN binds as NULL
    params[:, 5] = chunk["timestamp"].to_numpy(dtype=np.int64).tolist()
    params[:, 6] = chunk["context"].to_numpy(dtype=object)
    full = n - n % _ROWS_PER_STATEMENT
    cur = driver_connection(conn).cursor()
    inserted = 0
    if full:
        marks = ", ".join([_ROW_MARKS] * _ROWS_PER_STATEMENT)
        cur.executemany(
            _INSERT_INTERACTIONS + marks,
            params[:full].reshape(-1, 7 * _ROWS_PER_STATEMENT).tolist(),
        )
        inserted += max(cur.rowcount, 0)
    if full < n:
        cur.executemany(_INSERT_INTERACTIONS + _ROW_MARKS, params[full:].tolist())
        inserted += max(cur.rowcount, 0)
    cur.close()
    return inserted


def suspend_secondary_indexes(conn: Connection) -> list[str]:
    """Drop the non-unique indexes of ``interactions``; returns the DDL that rebuilds them.

    Building an index once after a large load is much faster than updating it row by row.
    """
    raw = driver_connection(conn)
    rows = raw.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
        "AND tbl_name = 'interactions' AND sql IS NOT NULL"
    ).fetchall()
    rebuild = []
    for name, sql in rows:
        if sql.lstrip().upper().startswith("CREATE UNIQUE"):
            continue
        raw.execute(f'DROP INDEX "{name}"')
        rebuild.append(sql)
    return rebuild


def restore_secondary_indexes(conn: Connection, rebuild: list[str]) -> None:
    """Run the DDL from ``suspend_secondary_indexes``."""
    raw = driver_connection(conn)
    for sql in rebuild:
        raw.execute(sql)
