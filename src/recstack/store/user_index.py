"""Each user's events on SQLite, found through an index kept in a file of its own.

On a store of millions of events, a ``(user_id, timestamp)`` index on ``interactions`` made
each acknowledged batch about five times as slow: every event of a batch lands on its own
index page, so a 1,000-event commit wrote about 1,000 index pages. SQLite stores keep that
index instead in a side file beside the database (``<database>-by-user``), filled from
``interactions`` in sorted runs by a background thread, in a file of its own so a merge never
holds the database's write lock. The side file has two levels, like a log-structured merge
tree: runs go into ``recent``, small enough that a run writes each of its pages once for many
events, and ``recent`` moves into ``events`` as one sorted run once it holds ``LEVEL_ROWS``.
On the 25M store one writer stores 109K events/s this way against 20K/s with the index,
merges included (``benchmarks/sqlite_event_floor.py --side-index``).

The side file covers the events up to an id (its ``covered`` row); ``user_index_mark`` in the
database holds the same id, lowered by the writers when SQLite would reuse ids above it
(``GUARD``). Events above ``min(covered, mark)``, the tail, are found by a scan of those ids,
which merges keep under about ``MERGE_ROWS``. A reader asks the side file for a user's ids up
to that mark and the database for those ids and the tail in one query, so an id the side
file still holds for a deleted event finds nothing. PostgreSQL keeps the plain index.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from recstack.progress import ProgressTask

MERGE_ROWS = 500_000  # tail length from which a write starts a background merge
MARK_TABLE = "user_index_mark"
LEVEL_ROWS = 4_000_000  # entries of ``recent`` from which they move into ``events``
LEVELS = ("events", "recent")
_SIDE_SCHEMA = (
    *(
        f"CREATE TABLE IF NOT EXISTS {level} (user_id INTEGER NOT NULL, "
        "timestamp INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (user_id, timestamp, id)) "
        "WITHOUT ROWID"
        for level in LEVELS
    ),
    "CREATE TABLE IF NOT EXISTS covered (one INTEGER PRIMARY KEY CHECK (one = 1), "
    "upto INTEGER NOT NULL, recent INTEGER NOT NULL, pruned INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO covered VALUES (1, 0, 0, 0)",
)
_IDS = " UNION ALL ".join(
    f"SELECT id FROM {level} WHERE user_id = ? AND id <= ?" for level in LEVELS
)
GUARD = (
    f"UPDATE {MARK_TABLE} SET upto = (SELECT ifnull(max(id), 0) FROM interactions) "
    "WHERE upto > (SELECT ifnull(max(id), 0) FROM interactions)"
)
_TAIL = f"SELECT (SELECT ifnull(max(id), 0) FROM interactions) - upto FROM {MARK_TABLE}"


def side_path(database: str | None) -> Path | None:
    """The side file of a SQLite database path; None for in-memory and URI databases (their
    every event is tail)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database).expanduser()
    return path.with_name(path.name + "-by-user")


def engine_side_path(engine: Engine) -> Path | None:
    return side_path(engine.url.database) if engine.dialect.name == "sqlite" else None


def _connect(path: Path) -> sqlite3.Connection:
    side = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    side.execute("PRAGMA journal_mode=WAL")
    side.execute("PRAGMA synchronous=FULL")  # a covered id must never outlive a power cut
    for statement in _SIDE_SCHEMA:
        side.execute(statement)
    return side


def mark(conn: Connection) -> int:
    """The database's mark (0 where the table is missing: not migrated yet)."""
    row = conn.exec_driver_sql(f"SELECT upto FROM {MARK_TABLE}").first()
    return int(row[0]) if row else 0


def user_ids(path: Path | None, user: int, upto: int) -> tuple[int, list[int]]:
    """``(covered, ids)``: how far the side file reaches, capped at ``upto``, and the event
    ids it holds for surrogate ``user`` up to there. A plain read: no schema statement, which
    would wait for a running merge's write lock."""
    if path is None or upto <= 0 or not path.exists():
        return 0, []
    side = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        side.execute("BEGIN")  # one snapshot for both reads
        (covered,) = side.execute("SELECT upto FROM covered").fetchone()
        upto = min(upto, int(covered))
        ids = [r[0] for r in side.execute(_IDS, (user, upto) * len(LEVELS))] if upto else []
        return upto, ids
    except sqlite3.OperationalError as exc:  # created but not built yet
        if "no such table" not in str(exc):
            raise
        return 0, []
    finally:
        side.close()


def user_filter(
    engine: Engine, conn: Connection, interactions: sa.Table, user: int
) -> sa.ColumnElement:
    """A ``WHERE`` clause selecting surrogate ``user``'s rows of ``interactions`` on SQLite:
    the side file's ids up to the mark, and the tail. Read the mark inside ``conn``'s
    transaction, so the tail it names is the one that transaction sees."""
    upto, found = user_ids(engine_side_path(engine), user, mark(conn))
    ids = orjson.dumps(found).decode()
    listed = sa.select(sa.column("value")).select_from(sa.func.json_each(ids))
    return sa.and_(
        interactions.c.user_id == user,
        sa.or_(
            sa.and_(interactions.c.id.in_(listed), interactions.c.id <= upto),
            interactions.c.id > upto,
        ),
    )


def tail(raw: sqlite3.Connection) -> int:
    """Events above the database's mark."""
    row = raw.execute(_TAIL).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def _merge_lock(path: Path, wait: bool) -> Iterator[bool]:
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def merge(
    database: str | None, *, at_least: int = 0, wait: bool = True, task: ProgressTask | None = None
) -> int:
    """Bring the side file up to the newest event of ``database``; returns events merged.

    Nothing happens when fewer than ``at_least`` events are above the mark, or, unless
    ``wait``, when another merge of the same database is running. The events above the mark
    go in as one sorted run (a transaction of the side file only), then the database's mark
    rises to match, unless a writer lowered it meanwhile.
    """
    path = side_path(database)
    if path is None:
        return 0
    with _merge_lock(path, wait) as locked:
        if not locked:
            return 0
        side = _connect(path)
        try:
            side.execute("ATTACH DATABASE ? AS src", (str(Path(database).expanduser()),))
            tables = side.execute(
                "SELECT 1 FROM src.sqlite_master WHERE name = ?", (MARK_TABLE,)
            ).fetchone()
            if tables is None:
                return 0
            side.execute("BEGIN")
            db_mark = int(side.execute(f"SELECT upto FROM src.{MARK_TABLE}").fetchone()[0])
            covered = int(side.execute("SELECT upto FROM covered").fetchone()[0])
            start = min(db_mark, covered)
            top = int(side.execute("SELECT ifnull(max(id), 0) FROM src.interactions").fetchone()[0])
            if top - start < max(at_least, 1):
                side.execute("ROLLBACK")
                return 0
            if task is not None:
                task.update(total=top - start, description="indexing events by user")
            level = "events" if top - start >= LEVEL_ROWS else "recent"
            side.execute(
                f"INSERT OR IGNORE INTO {level} SELECT user_id, timestamp, id "
                "FROM src.interactions WHERE id > ? AND id <= ? ORDER BY user_id, timestamp, id",
                (start, top),
            )
            grown = top - start if level == "recent" else 0
            side.execute("UPDATE covered SET upto = ?, recent = recent + ?", (top, grown))
            side.execute("COMMIT")
            _settle(side)
            if task is not None:
                task.advance(top - start)
        finally:
            side.close()
        _raise_mark(database, db_mark, top)
        return top - start


def _settle(side: sqlite3.Connection) -> None:
    """Move ``recent`` into ``events`` once it holds ``LEVEL_ROWS`` entries: already in key
    order, they go in as one sorted run that writes each page of ``events`` about once. Then
    drop the entries of ids below the lowest stored one (events a retention purge deleted), a
    pass over the side file made only when that lowest id has moved."""
    recent, pruned = side.execute("SELECT recent, pruned FROM covered").fetchone()
    if recent >= LEVEL_ROWS:
        side.execute("BEGIN")
        side.execute("INSERT OR IGNORE INTO events SELECT user_id, timestamp, id FROM recent")
        side.execute("DELETE FROM recent")
        side.execute("UPDATE covered SET recent = 0")
        side.execute("COMMIT")
    lowest = side.execute("SELECT min(id) FROM src.interactions").fetchone()[0]
    if lowest is not None and lowest > pruned:
        side.execute("BEGIN")
        for level in LEVELS:
            side.execute(f"DELETE FROM {level} WHERE id < ?", (lowest,))
        side.execute("UPDATE covered SET pruned = ?", (lowest,))
        side.execute("COMMIT")


def forget_user(database: str | None, user: int) -> None:
    """Erase a deleted user's entries from the side file (their events are gone already),
    after any running merge: it holds the side file's write lock for as long as it runs."""
    path = side_path(database)
    if path is None or not path.exists():
        return
    with _merge_lock(path, wait=True):
        side = _connect(path)
        try:
            side.execute("BEGIN")
            for level in LEVELS:
                side.execute(f"DELETE FROM {level} WHERE user_id = ?", (user,))
            side.execute("COMMIT")
        finally:
            side.close()


def _raise_mark(database: str, seen: int, top: int) -> None:
    """The database's mark to ``top``, if it still is ``seen`` (a writer may have lowered it)."""
    db = sqlite3.connect(Path(database).expanduser(), isolation_level=None, timeout=30)
    try:
        db.execute("PRAGMA synchronous=FULL")
        db.execute("BEGIN IMMEDIATE")
        db.execute(f"UPDATE {MARK_TABLE} SET upto = ? WHERE upto = ?", (top, seen))
        db.execute("COMMIT")
    finally:
        db.close()


class BackgroundMerger:
    """Starts one merge thread at a time for a database once its tail reaches ``MERGE_ROWS``
    (made only for databases with a side file: ``side_path`` is not None)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def after_commit(self, raw: sqlite3.Connection) -> None:
        """Called by a writer after its commit, outside any transaction."""
        if tail(raw) < MERGE_ROWS:
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=merge,
                args=(self.database,),
                kwargs={"at_least": MERGE_ROWS, "wait": False},
                name="recstack-user-index",
                daemon=True,
            )
            self._thread.start()
