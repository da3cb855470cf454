"""PostgreSQL fast paths: ``unnest`` of array parameters for ids and catalogue rows, and
``COPY`` into a temporary staging table for interactions.

All functions run on a connection already inside the caller's transaction; they never commit.
Interactions travel as CSV written by pyarrow (C++), so no Python loop touches each row.

Small batches go ``staging -> INSERT ... ON CONFLICT (event_id) DO NOTHING``. A large load
locks ``interactions`` against other writers, stages everything, removes event ids already
stored with one join, and inserts with plain ``INSERT ... SELECT``; when the new rows are many
next to the stored ones it also drops the indexes and constraints first and rebuilds them once
at the end (speculative ON CONFLICT inserts, per-row index updates and per-row foreign key
triggers cost several times more than that).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy.engine import Connection

from recstack.progress import ProgressTask
from recstack.store.bulk import chunks, is_large_load, stored_rows_estimate
from recstack.store.engine import driver_connection

STAGING_TABLE = "recstack_staging_interactions"
_COPY_BLOCK_BYTES = 8 * 1024 * 1024
_MAINTENANCE_MEMORY = "256MB"
_SMALL_BATCH = 5_000  # below this, one INSERT ... SELECT FROM unnest(...) beats COPY
_COLUMNS = 'event_id, user_id, item_id, event_type, value, "timestamp", context'
_STAGED_COLUMNS = 'event_id, user_id, item_id, event_type, value, "timestamp", context::json'


def prepare_bulk(conn: Connection) -> None:
    """Give index builds and the existing-event join enough memory for this transaction."""
    raw = driver_connection(conn)
    raw.execute(f"SET LOCAL maintenance_work_mem = '{_MAINTENANCE_MEMORY}'")
    raw.execute(f"SET LOCAL work_mem = '{_MAINTENANCE_MEMORY}'")


def finish_bulk(conn: Connection) -> None:
    """Nothing to undo: SET LOCAL and the staging table (ON COMMIT DROP) end with the transaction."""


def insert_missing_ids(conn: Connection, table: str, external_ids: Sequence[str]) -> int:
    """Create bare ``users``/``items`` rows for ids not yet stored; returns how many were new."""
    cur = driver_connection(conn).execute(
        f"INSERT INTO {table} (external_id) SELECT e FROM unnest(%b::text[]) WITH ORDINALITY "
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
            f"SELECT external_id, id FROM {table} WHERE external_id = ANY(%b::text[])",
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
FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::boolean[]) AS u(e, t, x, a, v)
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
SELECT e, a::json FROM unnest(%b::text[], %b::text[]) AS u(e, a)
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


_INSERT_FROM_ARRAYS = f"""
INSERT INTO interactions ({_COLUMNS})
SELECT e, u, i, t, v, ts, c::json
FROM unnest(%b::text[], %b::bigint[], %b::bigint[], %b::text[], %b::float8[], %b::bigint[],
            %b::text[]) AS r(e, u, i, t, v, ts, c)
ON CONFLICT (event_id) DO NOTHING
"""


def write_interactions(conn: Connection, chunk: pd.DataFrame) -> int:
    """Insert interactions whose event_id is new (``user_id``/``item_id`` are surrogate ids)."""
    raw = driver_connection(conn)
    if len(chunk) < _SMALL_BATCH:
        values = chunk["value"].to_numpy(dtype=np.float64)
        cur = raw.execute(
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
    _stage(raw, chunk)
    cur = raw.execute(
        f"INSERT INTO interactions ({_COLUMNS}) SELECT {_STAGED_COLUMNS} FROM {STAGING_TABLE} "
        "ON CONFLICT (event_id) DO NOTHING"
    )
    inserted = max(cur.rowcount, 0)
    raw.execute(f"TRUNCATE {STAGING_TABLE}")
    return inserted


def load_interactions(
    conn: Connection, frame: pd.DataFrame, *, chunk_size: int, task: ProgressTask
) -> int:
    """Write mapped interactions (surrogate user/item ids); returns how many were new."""
    stored = stored_rows_estimate(conn)
    if not is_large_load(len(frame), stored):
        inserted = 0
        for chunk in chunks(frame, chunk_size):
            inserted += write_interactions(conn, chunk)
            task.advance(len(chunk))
        return inserted
    raw = driver_connection(conn)
    # Other writers wait until commit, so no event_id can appear between the join and the insert.
    raw.execute("LOCK TABLE interactions IN SHARE ROW EXCLUSIVE MODE")
    first = frame.loc[~frame["event_id"].duplicated(keep="first").to_numpy()]
    for chunk in chunks(first, chunk_size):
        _stage(raw, chunk)
        task.advance(len(chunk))
    if stored:
        raw.execute(f"ANALYZE {STAGING_TABLE}")
        raw.execute(
            f"DELETE FROM {STAGING_TABLE} s USING interactions i WHERE i.event_id = s.event_id"
        )
    new_rows = raw.execute(f"SELECT count(*) FROM {STAGING_TABLE}").fetchone()[0]
    rebuild = []
    if is_large_load(new_rows, stored) and _owns_interactions(raw):
        task.update(description=f"{task.description}: writing")
        rebuild = _drop_indexes_and_constraints(raw)
    cur = raw.execute(
        f"INSERT INTO interactions ({_COLUMNS}) SELECT {_STAGED_COLUMNS} FROM {STAGING_TABLE}"
    )
    inserted = max(cur.rowcount, 0)
    if rebuild:
        task.update(description=f"{task.description}: indexing")
        for ddl in rebuild:
            raw.execute(ddl)
    raw.execute(f"TRUNCATE {STAGING_TABLE}")
    return inserted


def _owns_interactions(raw) -> bool:  # noqa: ANN001 - psycopg connection
    """Dropping and re-adding constraints needs ownership of the table."""
    row = raw.execute(
        "SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = 'interactions'::regclass"
    ).fetchone()
    return bool(row and row[0])


def _drop_indexes_and_constraints(raw) -> list[str]:  # noqa: ANN001 - psycopg connection
    """Drop unique/foreign key constraints and plain indexes of ``interactions`` (not the PK).

    Returns the DDL that recreates them, unique constraints first and foreign keys last, so
    the rebuild validates every stored row again before the transaction can commit.
    """
    constraints = raw.execute(
        "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
        "WHERE conrelid = 'interactions'::regclass AND contype IN ('u', 'f') ORDER BY contype DESC"
    ).fetchall()
    indexes = raw.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = 'interactions'::regclass AND NOT i.indisprimary AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
    ).fetchall()
    uniques = [(n, d) for n, d, kind in constraints if kind == "u"]
    foreign = [(n, d) for n, d, kind in constraints if kind == "f"]
    for name, _ in foreign + uniques:
        raw.execute(f'ALTER TABLE interactions DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        raw.execute(f"DROP INDEX {name}")
    return (
        [f'ALTER TABLE interactions ADD CONSTRAINT "{n}" {d}' for n, d in uniques]
        + [d for _, d in indexes]
        + [f'ALTER TABLE interactions ADD CONSTRAINT "{n}" {d}' for n, d in foreign]
    )


def _stage(raw, chunk: pd.DataFrame) -> None:  # noqa: ANN001 - psycopg connection
    """Append ``chunk`` to the session's staging table with COPY (created on first use)."""
    raw.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} (event_id text, user_id bigint, "
        "item_id bigint, event_type text, value float8, timestamp bigint, context text) "
        "ON COMMIT DROP"
    )
    payload = _csv_bytes(chunk)
    with raw.cursor() as cur, cur.copy(f"COPY {STAGING_TABLE} FROM STDIN (FORMAT csv)") as copy:
        for start in range(0, len(payload), _COPY_BLOCK_BYTES):
            copy.write(payload[start : start + _COPY_BLOCK_BYTES])


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
