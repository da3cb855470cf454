"""PostgreSQL fast paths: ``unnest`` of binary array parameters for ids and catalogue rows,
``COPY`` for interactions.

All functions run on a connection already inside the caller's transaction; they never commit.
Interactions travel as CSV written by pyarrow (C++), so no Python loop touches each row.

* Small batches: ``COPY`` into a temporary staging table, then
  ``INSERT ... SELECT ... ON CONFLICT (event_id) DO NOTHING``.
* Large loads lock out other writers, drop repeated event ids in pandas, then
  - into an empty table (a first load): ``COPY`` straight into ``interactions``;
  - otherwise: stage everything, delete staged event ids already stored with one join, and
    ``INSERT ... SELECT`` without ON CONFLICT.
  When the new rows are many next to the stored ones, the indexes and constraints are dropped
  first and rebuilt once at the end, in the same transaction. Speculative ON CONFLICT inserts,
  per-row index updates and per-row foreign key triggers cost several times more than that.
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
from recstack.store.bulk import chunks, is_large_load
from recstack.store.dbapi import driver_connection

STAGING_TABLE = "recstack_staging_interactions"
_COPY_BLOCK_BYTES = 8 * 1024 * 1024
_MAINTENANCE_MEMORY = "256MB"
_SMALL_BATCH = 5_000  # below this, one INSERT ... SELECT FROM unnest(...) beats COPY
_COLUMNS = 'event_id, user_id, item_id, event_type, value, "timestamp", context'
_STAGED_COLUMNS = 'event_id, user_id, item_id, event_type, value, "timestamp", context::json'


def prepare_bulk(conn: Connection, *, large: bool) -> None:
    """Memory for index builds and the existing-event join; locks for a large load.

    A large load takes its table locks first, in the order every writer touches the tables
    (users, items, interactions): other writers then wait for it instead of deadlocking with
    it when it re-adds the foreign keys at the end. Readers are not blocked by these locks.
    """
    raw = driver_connection(conn)
    raw.execute(f"SET LOCAL maintenance_work_mem = '{_MAINTENANCE_MEMORY}'")
    raw.execute(f"SET LOCAL work_mem = '{_MAINTENANCE_MEMORY}'")
    if large:
        raw.execute("LOCK TABLE users, items, interactions IN SHARE ROW EXCLUSIVE MODE")


def finish_bulk(conn: Connection) -> None:
    """Nothing to undo: SET LOCAL and the staging table (ON COMMIT DROP) end with the transaction."""


def insert_missing_ids(conn: Connection, table: str, external_ids: Sequence[str]) -> int:
    """Create bare ``users``/``items`` rows for ids not yet stored; returns how many were new.

    Ids already stored are filtered out first so they do not use up sequence values (ON
    CONFLICT alone would draw one per conflicting row); ON CONFLICT still covers a concurrent
    writer adding the same id.
    """
    cur = driver_connection(conn).execute(
        f"INSERT INTO {table} (external_id) SELECT e FROM unnest(%b::text[]) WITH ORDINALITY "
        f"AS u(e, n) WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.external_id = u.e) "
        "ORDER BY n ON CONFLICT (external_id) DO NOTHING",
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
    conn: Connection,
    frame: pd.DataFrame,
    *,
    chunk_size: int,
    task: ProgressTask,
    large: bool,
    stored: int,
) -> int:
    """Write mapped interactions (surrogate user/item ids); returns how many were new.

    ``large`` loads must run after ``prepare_bulk(conn, large=True)`` (which locks out other
    writers, so no event_id can appear between the join and the insert); ``stored`` is the
    estimate of rows already stored.
    """
    if not large:
        inserted = 0
        for chunk in chunks(frame, chunk_size):
            inserted += write_interactions(conn, chunk)
            task.advance(len(chunk))
        return inserted
    raw = driver_connection(conn)
    first = frame.loc[~frame["event_id"].duplicated(keep="first").to_numpy()]
    if not stored:
        return _copy_into_empty_table(raw, first, chunk_size, task)
    for chunk in chunks(first, chunk_size):
        _stage(raw, chunk)
        task.advance(len(chunk))
    raw.execute(f"ANALYZE {STAGING_TABLE}")
    raw.execute(f"DELETE FROM {STAGING_TABLE} s USING interactions i WHERE i.event_id = s.event_id")
    new_rows = raw.execute(f"SELECT count(*) FROM {STAGING_TABLE}").fetchone()[0]
    rebuild = []
    if is_large_load(new_rows, stored) and _owns_interactions(raw):
        task.update(description=f"{task.description}: writing")
        rebuild = _drop_indexes_and_constraints(raw)
    cur = raw.execute(
        f"INSERT INTO interactions ({_COLUMNS}) SELECT {_STAGED_COLUMNS} FROM {STAGING_TABLE}"
    )
    inserted = max(cur.rowcount, 0)
    _rebuild(raw, rebuild, task)
    raw.execute(f"TRUNCATE {STAGING_TABLE}")
    return inserted


def _copy_into_empty_table(
    raw,  # noqa: ANN001 - psycopg connection
    frame: pd.DataFrame,
    chunk_size: int,
    task: ProgressTask,
) -> int:
    """The first load of a store: COPY straight into ``interactions``, then index once.

    Nothing is stored yet and other writers are locked out, so event ids (deduplicated by the
    caller) cannot clash and no staging table is needed.
    """
    owner = _owns_interactions(raw)
    rebuild = _drop_indexes_and_constraints(raw, primary_key=True) if owner else []
    for chunk in chunks(frame, chunk_size):
        _copy(raw, f"interactions ({_COLUMNS})", chunk)
        task.advance(len(chunk))
    _rebuild(raw, rebuild, task)
    return len(frame)


def _rebuild(raw, rebuild: list[str], task: ProgressTask) -> None:  # noqa: ANN001
    """Re-create what a large load dropped, then refresh the planner's statistics: after
    millions of new rows the old ones would steer snapshot and history queries wrong."""
    if rebuild:
        task.update(description=f"{task.description}: indexing")
        for ddl in rebuild:
            raw.execute(ddl)
        raw.execute("ANALYZE interactions")


def _owns_interactions(raw) -> bool:  # noqa: ANN001 - psycopg connection
    """Dropping and re-adding constraints needs ownership of the table."""
    row = raw.execute(
        "SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = 'interactions'::regclass"
    ).fetchone()
    return bool(row and row[0])


def _drop_indexes_and_constraints(raw, primary_key: bool = False) -> list[str]:  # noqa: ANN001
    """Drop unique/foreign key constraints and plain indexes of ``interactions``.

    The primary key goes too when ``primary_key`` (a first load: rebuilding it over rows in id
    order is cheaper than maintaining it). Returns the DDL that recreates everything, keys and
    unique constraints first and foreign keys last, so the rebuild validates every stored row
    again before the transaction can commit.
    """
    kinds = ("p", "u", "f") if primary_key else ("u", "f")
    constraints = raw.execute(
        "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
        "WHERE conrelid = 'interactions'::regclass AND contype = ANY(%s)",
        (list(kinds),),
    ).fetchall()
    indexes = raw.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = 'interactions'::regclass AND NOT i.indisprimary AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
    ).fetchall()
    order = {"p": 0, "u": 1, "f": 2}
    constraints = sorted(constraints, key=lambda row: order[row[2]])
    for name, _, _ in reversed(constraints):
        raw.execute(f'ALTER TABLE interactions DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        raw.execute(f"DROP INDEX {name}")
    keys = [
        f'ALTER TABLE interactions ADD CONSTRAINT "{n}" {d}' for n, d, k in constraints if k != "f"
    ]
    foreign = [
        f'ALTER TABLE interactions ADD CONSTRAINT "{n}" {d}' for n, d, k in constraints if k == "f"
    ]
    return keys + [d for _, d in indexes] + foreign


def _stage(raw, chunk: pd.DataFrame) -> None:  # noqa: ANN001 - psycopg connection
    """Append ``chunk`` to the session's staging table (created on first use)."""
    raw.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} (event_id text, user_id bigint, "
        "item_id bigint, event_type text, value float8, timestamp bigint, context text) "
        "ON COMMIT DROP"
    )
    _copy(raw, STAGING_TABLE, chunk)


def _copy(raw, target: str, chunk: pd.DataFrame) -> None:  # noqa: ANN001 - psycopg connection
    """COPY ``chunk`` (canonical column order) into ``target`` (a table and column list)."""
    payload = _csv_bytes(chunk)
    with raw.cursor() as cur, cur.copy(f"COPY {target} FROM STDIN (FORMAT csv)") as copy:
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
