"""PostgreSQL fast paths: ``unnest`` of array parameters for ids and catalogue rows, and
``COPY`` into a temporary staging table for interactions.

All functions run on a connection already inside the caller's transaction; they never commit.
Interactions are written as CSV produced by pyarrow (C++), so no Python loop touches each row.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy.engine import Connection

from recstack.store.engine import driver_connection

STAGING_TABLE = "recstack_staging_interactions"
_COPY_BLOCK_BYTES = 8 * 1024 * 1024
_INDEX_BUILD_MEMORY = "256MB"
_SMALL_BATCH = 5_000  # below this, one INSERT ... SELECT FROM unnest(...) beats COPY


def prepare_bulk(conn: Connection) -> None:
    """Nothing to tune per connection on PostgreSQL (kept for symmetry with SQLite)."""


def finish_bulk(conn: Connection) -> None:
    """Nothing to undo: the staging table is dropped at commit (ON COMMIT DROP) or rollback."""


def insert_missing_ids(conn: Connection, table: str, external_ids: Sequence[str]) -> int:
    """Create bare ``users``/``items`` rows for ids not yet stored; returns how many were new."""
    cur = driver_connection(conn).execute(
        f"INSERT INTO {table} (external_id) SELECT e FROM unnest(%s::text[]) WITH ORDINALITY "
        "AS u(e, n) ORDER BY n ON CONFLICT (external_id) DO NOTHING",
        (list(external_ids),),
    )
    return max(cur.rowcount, 0)


def lookup_ids(conn: Connection, table: str, external_ids: Sequence[str]) -> np.ndarray:
    """Surrogate ids (int64) aligned with ``external_ids``; -1 where the id is not stored."""
    wanted = pd.Index(list(external_ids), dtype=object)
    out = np.full(len(wanted), -1, dtype=np.int64)
    if not len(wanted):
        return out
    rows = (
        driver_connection(conn)
        .execute(
            f"SELECT external_id, id FROM {table} WHERE external_id = ANY(%s::text[])",
            (wanted.tolist(),),
        )
        .fetchall()
    )
    if rows:
        pos = wanted.get_indexer(pd.Index([r[0] for r in rows], dtype=object))
        out[pos] = np.asarray([r[1] for r in rows], dtype=np.int64)
    return out


_UPSERT_ITEMS = """
INSERT INTO items AS it (external_id, title, text, attributes, active)
SELECT e, t, x, a::json, v
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::boolean[]) AS u(e, t, x, a, v)
ON CONFLICT (external_id) DO UPDATE SET
    title = COALESCE(EXCLUDED.title, it.title),
    text = COALESCE(EXCLUDED.text, it.text),
    attributes = COALESCE(EXCLUDED.attributes, it.attributes),
    active = EXCLUDED.active,
    updated_at = now()
WHERE it.title IS DISTINCT FROM COALESCE(EXCLUDED.title, it.title)
   OR it.text IS DISTINCT FROM COALESCE(EXCLUDED.text, it.text)
   OR it.attributes::jsonb IS DISTINCT FROM COALESCE(EXCLUDED.attributes, it.attributes)::jsonb
   OR it.active IS DISTINCT FROM EXCLUDED.active
"""

_UPSERT_USERS = """
INSERT INTO users AS us (external_id, attributes)
SELECT e, a::json FROM unnest(%s::text[], %s::text[]) AS u(e, a)
ON CONFLICT (external_id) DO UPDATE SET attributes = EXCLUDED.attributes
WHERE EXCLUDED.attributes IS NOT NULL
  AND us.attributes::jsonb IS DISTINCT FROM EXCLUDED.attributes::jsonb
"""


def upsert_items(conn: Connection, rows: pd.DataFrame) -> int:
    """Insert or update catalogue rows (see ``frames.prepare_items``); rows inserted + changed."""
    cur = driver_connection(conn).execute(
        _UPSERT_ITEMS,
        (
            rows["item_id"].tolist(),
            rows["title"].tolist(),
            rows["text"].tolist(),
            rows["attributes"].tolist(),
            [bool(a) for a in rows["active"].tolist()],
        ),
    )
    return max(cur.rowcount, 0)


def upsert_users(conn: Connection, rows: pd.DataFrame) -> int:
    """Insert users or replace their attributes when new ones are given; rows inserted + changed."""
    cur = driver_connection(conn).execute(
        _UPSERT_USERS, (rows["user_id"].tolist(), rows["attributes"].tolist())
    )
    return max(cur.rowcount, 0)


_COLUMNS = 'event_id, user_id, item_id, event_type, value, "timestamp", context'

_INSERT_FROM_ARRAYS = f"""
INSERT INTO interactions ({_COLUMNS})
SELECT e, u, i, t, v, ts, c::json
FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::float8[], %s::bigint[],
            %s::text[]) AS r(e, u, i, t, v, ts, c)
ON CONFLICT (event_id) DO NOTHING
"""


def write_interactions(conn: Connection, chunk: pd.DataFrame) -> int:
    """Insert interactions whose event_id is new (``user_id``/``item_id`` are surrogate ids)."""
    if len(chunk) < _SMALL_BATCH:
        return _write_small(conn, chunk)
    raw = driver_connection(conn)
    raw.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} (event_id text, user_id bigint, "
        "item_id bigint, event_type text, value float8, timestamp bigint, context text) "
        "ON COMMIT DROP"
    )
    with raw.cursor() as cur:
        with cur.copy(f"COPY {STAGING_TABLE} FROM STDIN (FORMAT csv)") as copy:
            payload = _csv_bytes(chunk)
            for start in range(0, len(payload), _COPY_BLOCK_BYTES):
                copy.write(payload[start : start + _COPY_BLOCK_BYTES])
        cur.execute(
            f"INSERT INTO interactions ({_COLUMNS}) "
            f"SELECT {_COLUMNS.replace('context', 'context::json')} FROM {STAGING_TABLE} "
            "ON CONFLICT (event_id) DO NOTHING"
        )
        inserted = max(cur.rowcount, 0)
        cur.execute(f"TRUNCATE {STAGING_TABLE}")
    return inserted


def suspend_secondary_indexes(conn: Connection) -> list[str]:
    """Drop the foreign keys and non-unique indexes of ``interactions`` for a large load.

    Returns the DDL that rebuilds them: one index build and one set-based foreign key check
    after the load cost far less than per-row index updates and per-row foreign key triggers.
    The dropped objects (and the table) stay locked until the transaction ends.
    """
    raw = driver_connection(conn)
    indexes = raw.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = 'interactions'::regclass AND NOT indisunique AND NOT indisprimary"
    ).fetchall()
    foreign_keys = raw.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'interactions'::regclass AND contype = 'f'"
    ).fetchall()
    rebuild = []
    for name, definition in indexes:
        raw.execute(f"DROP INDEX {name}")
        rebuild.append(definition)
    for name, definition in foreign_keys:
        raw.execute(f'ALTER TABLE interactions DROP CONSTRAINT "{name}"')
        rebuild.append(f'ALTER TABLE interactions ADD CONSTRAINT "{name}" {definition}')
    return rebuild


def restore_secondary_indexes(conn: Connection, rebuild: list[str]) -> None:
    """Run the DDL from ``suspend_secondary_indexes`` (indexes first, then foreign keys)."""
    raw = driver_connection(conn)
    raw.execute(f"SET LOCAL maintenance_work_mem = '{_INDEX_BUILD_MEMORY}'")
    for sql in rebuild:
        raw.execute(sql)


def _write_small(conn: Connection, chunk: pd.DataFrame) -> int:
    values = chunk["value"].to_numpy(dtype=np.float64)
    cur = driver_connection(conn).execute(
        _INSERT_FROM_ARRAYS,
        (
            chunk["event_id"].tolist(),
            chunk["user_id"].tolist(),
            chunk["item_id"].tolist(),
            chunk["event_type"].tolist(),
            [None if np.isnan(v) else float(v) for v in values],
            chunk["timestamp"].tolist(),
            chunk["context"].tolist(),
        ),
    )
    return max(cur.rowcount, 0)


def _csv_bytes(chunk: pd.DataFrame) -> memoryview:
    """The chunk as headerless CSV, NULLs as unquoted empty fields (PostgreSQL's CSV NULL)."""
    table = pa.table(
        {
            "event_id": _arrow_strings(chunk["event_id"]),
            "user_id": pa.array(chunk["user_id"].to_numpy(dtype=np.int64)),
            "item_id": pa.array(chunk["item_id"].to_numpy(dtype=np.int64)),
            "event_type": _arrow_strings(chunk["event_type"]),
            "value": pa.array(chunk["value"].to_numpy(dtype=np.float64), from_pandas=True),
            "timestamp": pa.array(chunk["timestamp"].to_numpy(dtype=np.int64)),
            "context": _arrow_strings(chunk["context"]),
        }
    )
    sink = io.BytesIO()
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    pa_csv.write_csv(table, sink, write_options=options)
    return sink.getbuffer()


def _arrow_strings(column: pd.Series) -> pa.Array:
    """A string column as Arrow (zero-copy for Arrow-backed pandas strings)."""
    return pa.array(column, type=pa.string(), from_pandas=True)
