"""Concurrent event batches sharing one durable commit (group commit), on one connection.

A durable commit waits for the disk (SQLite's ``synchronous=FULL``, PostgreSQL's
``synchronous_commit``), so the commit, not the SQL, bounds how many posts per second a store
takes. Callers queue their batches; whoever holds the write lock next writes every queued
batch in one transaction and commits once, then each caller returns its own count or error.
A caller alone takes the lock at once and writes just its batch.

Each batch keeps its own outcome: the backend's transaction fails a batch naming unknown
items before anything of it is written, and any other error makes the group retry batch by
batch, so the error reaches the caller whose batch caused it and nothing of that batch is
stored. Retrying is safe because events are idempotent by event_id.

The writer keeps one pooled connection checked out (with the store's connection settings),
so its prepared statements and page cache stay warm between calls; a connection the driver
reports broken (a restarted server) is replaced and the group tried once more.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from recstack.data.validation import EventColumns
from recstack.errors import NotFoundError

GROUP_ROWS = 20_000  # most rows one commit takes from the queue


class Batch:
    """One caller's events and, once written, their outcome."""

    __slots__ = ("columns", "create_items", "done", "inserted", "error")

    def __init__(self, columns: EventColumns, create_items: bool) -> None:
        self.columns, self.create_items = columns, create_items
        self.done, self.inserted = False, 0
        self.error: BaseException | None = None

    def __len__(self) -> int:
        return len(self.columns[0])


Transaction = Callable[[Any, list[Batch]], None]  # (driver connection, group) -> None
Outcome = int | Exception  # events stored, or why the batch failed


def item_checks(group: list[Batch], items: dict[str, int]) -> list[Outcome]:
    """Per batch: 0 when every item it names is in ``items`` (external id -> surrogate id),
    else a ``NotFoundError`` naming the first few unknown ones."""
    outcomes: list[Outcome] = []
    for batch in group:
        unknown = [i for i in dict.fromkeys(batch.columns[2]) if i not in items]
        outcomes.append(
            NotFoundError(f"unknown item ids (add them to the catalogue first): {unknown[:5]}")
            if unknown
            else 0
        )
    return outcomes


def settle(group: list[Batch], outcomes: list[Outcome]) -> None:
    """Hand each batch its outcome (once the transaction committed)."""
    for batch, outcome in zip(group, outcomes, strict=True):
        if isinstance(outcome, Exception):
            batch.error = outcome
        else:
            batch.inserted = outcome


class GroupCommitWriter:
    """The event writer of one engine: ``transaction`` writes a group in one transaction on a
    driver connection and sets each batch's outcome once it committed; ``setup`` prepares a
    new connection."""

    def __init__(
        self,
        engine: Engine,
        transaction: Transaction,
        setup: Callable[[Any], None] | None = None,
        max_rows: int = GROUP_ROWS,
    ) -> None:
        self._engine, self._transaction, self._setup = engine, transaction, setup
        self.max_rows = max_rows
        self._pooled: Any = None
        self._queue: deque[Batch] = deque()
        self._queue_lock = threading.Lock()
        self._write_lock = threading.Lock()

    def write(self, columns: EventColumns, *, create_items: bool) -> int:
        """Store ``columns`` (checked events); returns how many were new."""
        if not columns[0]:
            return 0
        batch = Batch(columns, create_items)
        with self._queue_lock:
            self._queue.append(batch)
        while not batch.done:
            with self._write_lock:
                if not batch.done:
                    self._commit(self._take())
        if batch.error is not None:
            raise batch.error
        return batch.inserted

    def close(self) -> None:
        """Return the connection to the engine's pool."""
        with self._write_lock:
            if self._pooled is not None:
                self._pooled.close()
                self._pooled = None

    def _take(self) -> list[Batch]:
        with self._queue_lock:
            group = [self._queue.popleft()]
            rows = len(group[0])
            while self._queue and rows + len(self._queue[0]) <= self.max_rows:
                rows += len(self._queue[0])
                group.append(self._queue.popleft())
        return group

    def _connection(self) -> Any:
        if self._pooled is None:
            self._pooled = self._engine.raw_connection()
            if self._setup is not None:
                self._setup(self._pooled.driver_connection)
        return self._pooled.driver_connection

    def _broken(self) -> bool:
        """Drop the connection if the driver says it is unusable; True if it did."""
        raw = self._pooled.driver_connection if self._pooled is not None else None
        if raw is None or not (getattr(raw, "broken", False) or getattr(raw, "closed", False)):
            return False
        self._pooled.invalidate()
        self._pooled = None
        return True

    def _run(self, group: list[Batch]) -> None:
        try:
            self._transaction(self._connection(), group)
        except Exception:
            if not self._broken():
                raise
            self._transaction(self._connection(), group)  # once more, on a new connection

    def _commit(self, group: list[Batch]) -> None:
        try:
            self._run(group)
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
            else:
                for batch in group:
                    try:
                        self._run([batch])
                    except Exception as own:
                        batch.error = own
        except BaseException as exc:
            for batch in group:
                batch.error = exc
            raise
        finally:
            for batch in group:
                batch.done = True
