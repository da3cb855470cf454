"""SQLite fast paths: ``executemany`` of plain values on the raw sqlite3 connection.

All functions run on a connection already inside the caller's write transaction (which holds
SQLite's single write lock and, for ingest, has per-row foreign key checks off: every key is
resolved in the same transaction); they never commit. Row counts come from
``cursor.rowcount``, which sqlite3 sums over an executemany.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from recstack.data.schema import INTERACTION_COLUMNS
from recstack.progress import ProgressTask
from recstack.store import user_index
from recstack.store.bulk import chunks, is_large_load
from recstack.store.dbapi import driver_connection

_LOOKUP_BATCH = 20_000  # well under SQLite's 32766 bound variables
_BULK_CACHE_KIB = 1024 * 1024  # 1 GiB: fewer pages spilled to the WAL mid-load and written twice
_SORT_RUN_KIB = 2 * 1024  # page cache while building indexes = size of each sorted run
_DEFAULT_CACHE_KIB = 2000
_TEMP_STORE_MEMORY = 2
_SAVED_TEMP_STORE = "recstack_saved_temp_store"  # key in the connection's info dict


def prepare_bulk(conn: Connection, *, large: bool) -> None:
    """A large page cache for the load; for a large load also temporary files for sorting.

    Runs first in the write transaction, before anything is written (see
    ``_switch_temp_store``). With temporary storage in memory SQLite sorts the entries of an
    index being built as one in-memory list, which gets slower per row as the table grows;
    with temporary files it sorts runs of a few MB and merges them (``_build_indexes``).
    """
    raw = driver_connection(conn)
    raw.execute(f"PRAGMA cache_size=-{_BULK_CACHE_KIB}")
    if large:
        temp_store = raw.execute("PRAGMA temp_store").fetchone()[0]
        if temp_store == _TEMP_STORE_MEMORY:
            conn.info[_SAVED_TEMP_STORE] = temp_store
            _switch_temp_store(raw, "FILE")


def finish_bulk(conn: Connection) -> None:
    """Return the connection's cache (and temporary storage) to their usual settings."""
    raw = driver_connection(conn)
    raw.execute(f"PRAGMA cache_size=-{_DEFAULT_CACHE_KIB}")
    temp_store = conn.info.pop(_SAVED_TEMP_STORE, None)
    if temp_store is not None:
        try:
            raw.execute(f"PRAGMA temp_store={int(temp_store)}")
        except sqlite3.OperationalError:
            pass  # the temp schema was opened meanwhile: the connection keeps temporary files


def _switch_temp_store(raw: sqlite3.Connection, mode: str) -> None:
    """Set ``temp_store`` in a write transaction in which nothing has been written yet.

    SQLite refuses the change inside a transaction once the connection has opened its temp
    schema (schema reflection does). Then the empty transaction is committed and a new write
    transaction begun around the change, also when the change fails, so that nothing ever
    runs outside a transaction; if that ``BEGIN`` fails the load fails before writing.
    """
    try:
        raw.execute(f"PRAGMA temp_store={mode}")
    except sqlite3.OperationalError:
        raw.execute("COMMIT")
        try:
            raw.execute(f"PRAGMA temp_store={mode}")
        finally:
            raw.execute("BEGIN IMMEDIATE")


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


_NEW_ROWS_SAMPLE = 2_000  # event ids probed to estimate how much of a load is new
_ROWS_PER_STATEMENT = 100  # a few hundred bound variables per statement: fewer, bigger steps


def _columns_to_bind(chunk: pd.DataFrame) -> list[str]:
    """All columns, less ``value``/``context`` when the whole chunk has none (they stay NULL)."""
    columns = list(INTERACTION_COLUMNS)
    if chunk["context"].isna().all():
        columns.remove("context")
    if chunk["value"].isna().all():
        columns.remove("value")
    return columns


def _column_values(chunk: pd.DataFrame, column: str) -> list:
    """One column as the plain Python values sqlite3 binds without adapters."""
    values = chunk[column]
    if column in ("user_id", "item_id", "timestamp"):
        return values.to_numpy(dtype=np.int64).tolist()
    if column == "value":
        return values.to_numpy(dtype=np.float64).tolist()  # NaN binds as NULL
    if column == "event_type":  # a handful of names: one shared str per name, not one per row
        codes, names = pd.factorize(values)
        return np.asarray(names, dtype=object)[codes].tolist()
    return values.to_numpy(dtype=object).tolist()


def _interleaved(columns: list[list]) -> list:
    """Row-major parameters: row 0's values, then row 1's, ... (C-level slice assignment)."""
    width = len(columns)
    flat: list = [None] * (len(columns[0]) * width)
    for j, values in enumerate(columns):
        flat[j::width] = values
    return flat


def write_interactions(conn: Connection, chunk: pd.DataFrame) -> int:
    """Insert interactions whose event_id is new (``user_id``/``item_id`` are surrogate ids).

    Rows go in as multi-row ``VALUES`` statements, which costs about half of a
    one-row-per-statement executemany; their parameters are sliced from one flat list.
    """
    n = len(chunk)
    if not n:
        return 0
    columns = _columns_to_bind(chunk)
    width = len(columns)
    flat = _interleaved([_column_values(chunk, c) for c in columns])
    driver_connection(conn).execute(user_index.GUARD)  # before SQLite may reuse an id
    head = "INSERT OR IGNORE INTO interactions ({}) VALUES ".format(
        ", ".join(f'"{c}"' for c in columns)
    )
    row_marks = "(" + ", ".join("?" * width) + ")"
    step = width * _ROWS_PER_STATEMENT
    full = (n // _ROWS_PER_STATEMENT) * step
    cur = driver_connection(conn).cursor()
    inserted = 0
    if full:
        cur.executemany(
            head + ", ".join([row_marks] * _ROWS_PER_STATEMENT),
            [flat[k : k + step] for k in range(0, full, step)],
        )
        inserted += max(cur.rowcount, 0)
    if full < len(flat):
        cur.execute(head + ", ".join([row_marks] * (n % _ROWS_PER_STATEMENT)), flat[full:])
        inserted += max(cur.rowcount, 0)
    cur.close()
    return inserted


def load_interactions(
    conn: Connection,
    frame: pd.DataFrame,
    *,
    chunk_size: int,
    task: ProgressTask,
    large: bool,
    stored: int,
) -> int:
    """Write mapped interactions (surrogate user/item ids); returns how many were new.

    A large load drops the non-unique indexes of ``interactions`` first and rebuilds them at
    the end: one sorted index build is much faster than updating it row by row. When rows
    are already stored, a sample of the event ids first estimates how many rows are new, so
    that re-ingesting a file does not rebuild the indexes for nothing.
    """
    raw = driver_connection(conn)
    if large and stored:
        large = is_large_load(_estimated_new_rows(raw, frame["event_id"]), stored)
    rebuild = _drop_secondary_indexes(raw) if large else []
    inserted = 0
    for chunk in chunks(frame, chunk_size):
        inserted += write_interactions(conn, chunk)
        task.advance(len(chunk))
    if rebuild:
        task.update(description=f"{task.description}: indexing")
        _build_indexes(raw, rebuild)
    return inserted


def _estimated_new_rows(raw: sqlite3.Connection, event_ids: pd.Series) -> int:
    """How many of ``event_ids`` are not stored yet, from an evenly spread sample."""
    n = len(event_ids)
    picks = np.unique(np.linspace(0, n - 1, min(n, _NEW_ROWS_SAMPLE)).astype(np.int64))
    sample = event_ids.iloc[picks].tolist()
    marks = ",".join("?" * len(sample))
    stored = raw.execute(
        f"SELECT count(*) FROM interactions WHERE event_id IN ({marks})", sample
    ).fetchone()[0]
    return round(n * (1 - stored / len(sample))) if sample else 0


def _build_indexes(raw: sqlite3.Connection, ddl: list[str]) -> None:
    """Run ``CREATE INDEX`` statements as an external merge sort of small runs.

    The page cache sets SQLite's sort run size: runs of ~2 MB sort in the CPU caches and
    merge sequentially, 2-3 times faster than runs of hundreds of MB (with temporary storage
    on files, see ``prepare_bulk``). Reading the table and appending the index pages need no
    large cache. The bulk cache size is restored afterwards.
    """
    cache_size = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size=-{_SORT_RUN_KIB}")
    try:
        for sql in ddl:
            raw.execute(sql)
    finally:
        raw.execute(f"PRAGMA cache_size={int(cache_size)}")


def _drop_secondary_indexes(raw: sqlite3.Connection) -> list[str]:
    """Drop the non-unique indexes of ``interactions``; returns the DDL that rebuilds them."""
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
