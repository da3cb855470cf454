"""Online event writes on SQLite: group commit (``group_commit``) with this SQL.

In one ``BEGIN IMMEDIATE`` transaction: the items of every batch are looked up (and created
for batches that ask), batches naming unknown items fail, the users of the others are looked
up and the missing ones created, then each batch's events go in as multi-row ``INSERT ... ON
CONFLICT (event_id) DO NOTHING`` statements, with foreign keys off (the ids were just looked
up). Ids travel as one JSON array per statement (``json_each``), so every statement is
prepared once whatever the batch size.

The writer's connection gets a larger page cache, so the index pages a write touches stay in
memory between calls. After a commit that leaves ``user_index.MERGE_ROWS`` events above the
user index's mark, a background thread merges them into the index's side file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from recstack.data.validation import EventColumns
from recstack.store import user_index
from recstack.store.group_commit import Batch, GroupCommitWriter, Outcome, item_checks, settle

WRITER_CACHE_KIB = 64 * 1024
_ROWS_PER_STATEMENT = 100
_COLUMNS = '(event_id, user_id, item_id, event_type, value, "timestamp", context)'
_LOOKUP = (
    "SELECT t.external_id, t.id FROM json_each(?) AS j JOIN {table} AS t ON t.external_id = j.value"
)
_CREATE = (
    "INSERT INTO {table} (external_id) SELECT value FROM json_each(?) WHERE true "
    "ON CONFLICT (external_id) DO NOTHING"
)


def _insert_sql(rows: int) -> str:
    marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)
    return f"INSERT INTO interactions {_COLUMNS} VALUES {marks} ON CONFLICT (event_id) DO NOTHING"


_INSERT_FULL = _insert_sql(_ROWS_PER_STATEMENT)


def sqlite_event_writer(engine: Engine) -> GroupCommitWriter:
    """The group-committing event writer of a SQLite engine."""
    database = engine.url.database or ""
    if user_index.side_path(database) is None:
        return GroupCommitWriter(engine, _transaction, setup=_setup)
    lock = WriterLock(Path(database).expanduser().with_name(Path(database).name + "-writer.lock"))
    merger = user_index.BackgroundMerger(database)

    def transaction(raw: Any, group: list[Batch]) -> None:
        with lock:
            _transaction(raw, group)
        merger.after_commit(raw)

    return GroupCommitWriter(engine, transaction, setup=_setup)


class WriterLock:
    """An exclusive file lock the event writers of every process take around their write
    transactions.

    SQLite's own busy handler polls a held write lock with sleeps of 1 to 100 ms, so two
    server workers writing events hand the lock over late; a writer blocked in ``flock``
    wakes the moment the other releases it, and meanwhile more batches queue for its next
    group.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)


def _setup(raw: Any) -> None:
    raw.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")


def _transaction(raw: Any, group: list[Batch]) -> None:
    """Write ``group`` in one transaction; outcomes are set only once it committed.

    Foreign keys are off for the transaction (the pragma is a no-op inside one, so it is set
    around it): every user and item id an event row takes was read from its table, or created
    there, inside this same write transaction, so SQLite's per-row parent lookups would only
    repeat ``_lookup``'s.
    """
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        raw.execute("BEGIN IMMEDIATE")
        try:
            raw.execute(user_index.GUARD)
            outcomes = _write(raw.cursor(), group)
            raw.execute("COMMIT")
        except BaseException:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise
    finally:
        raw.execute("PRAGMA foreign_keys=ON")
    settle(group, outcomes)


def _write(cur: Any, group: list[Batch]) -> list[Outcome]:
    """Items first (created for batches that ask, else checked), then users, then events."""
    items = _lookup(cur, "items", list(dict.fromkeys(i for b in group for i in b.columns[2])))
    wanted = (i for b in group if b.create_items for i in b.columns[2] if i not in items)
    create = list(dict.fromkeys(wanted))
    if create:
        cur.execute(_CREATE.format(table="items"), (_json(create),))
        items.update(_lookup(cur, "items", create))
    outcomes = item_checks(group, items)
    ready = [b for b, o in zip(group, outcomes, strict=True) if not isinstance(o, Exception)]
    users = _lookup(cur, "users", list(dict.fromkeys(u for b in ready for u in b.columns[1])))
    new_users = list(dict.fromkeys(u for b in ready for u in b.columns[1] if u not in users))
    if new_users:
        cur.execute(_CREATE.format(table="users"), (_json(new_users),))
        users.update(_lookup(cur, "users", new_users))
    counts = iter([_insert(cur, b.columns, users, items) for b in ready])
    return [o if isinstance(o, Exception) else next(counts) for o in outcomes]


def _lookup(cur: Any, table: str, external_ids: list[str]) -> dict[str, int]:
    if not external_ids:
        return {}
    cur.execute(_LOOKUP.format(table=table), (_json(external_ids),))
    return dict(cur.fetchall())


def _json(external_ids: list[str]) -> str:
    """Ids as one JSON array for ``json_each``: one parameter and one prepared statement
    whatever the batch size, where an ``IN (?, ?, ...)`` list would be parsed anew per size."""
    return orjson.dumps(external_ids).decode()


def _insert(cur: Any, columns: EventColumns, users: dict, items: dict) -> int:
    """Multi-row ``VALUES`` statements (a fixed statement per 100 rows, prepared once) with
    parameters sliced from one row-major list."""
    n = len(columns[0])
    mapped = list(columns)
    mapped[1] = [users[u] for u in columns[1]]
    mapped[2] = [items[i] for i in columns[2]]
    width = len(mapped)
    flat: list[Any] = [None] * (n * width)
    for j, values in enumerate(mapped):
        flat[j::width] = values
    step = width * _ROWS_PER_STATEMENT
    full = (n // _ROWS_PER_STATEMENT) * step
    inserted = 0
    if full:
        cur.executemany(_INSERT_FULL, [flat[k : k + step] for k in range(0, full, step)])
        inserted += max(cur.rowcount, 0)
    if full < len(flat):
        cur.execute(_insert_sql(n % _ROWS_PER_STATEMENT), flat[full:])
        inserted += max(cur.rowcount, 0)
    return inserted
