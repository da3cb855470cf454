"""Progress bars (rich) for long library jobs: ingest, snapshot, training, evaluation.

Library code reports progress through ``track`` or ``ProgressTask``; both are no-ops unless
``enabled`` is true, so servers and tests stay quiet. All bars share one live rich display on
stderr, so a job started inside another (a CLI command calling ``Store.ingest``) adds a second
line instead of failing because rich allows only one live display at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

_lock = threading.Lock()
_shared: Progress | None = None
_users = 0


def new_progress(console: Console | None = None) -> Progress:
    """A rich Progress with the columns every recstack bar uses (stderr by default)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
    )


@contextmanager
def shared_progress() -> Iterator[Progress]:
    """The process-wide live Progress, started on first use and stopped by its last user."""
    global _shared, _users
    with _lock:
        if _shared is None:
            _shared = new_progress()
            _shared.start()
        _users += 1
        progress = _shared
    try:
        yield progress
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _shared is not None:
                _shared.stop()
                _shared = None


class ProgressTask:
    """One progress bar as a context manager; does nothing when ``enabled`` is false.

    >>> with ProgressTask("counting", total=3, enabled=False) as task:
    ...     task.advance(3)
    """

    def __init__(self, description: str, total: float | None = None, enabled: bool = True) -> None:
        self.description = description
        self.total = total
        self.enabled = enabled
        self._ctx: object | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressTask:
        if self.enabled:
            self._ctx = shared_progress()
            self._progress = self._ctx.__enter__()  # type: ignore[attr-defined]
            self._task = self._progress.add_task(self.description, total=self.total)
        return self

    def advance(self, amount: float = 1) -> None:
        """Move the bar forward by ``amount`` units."""
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def update(
        self,
        *,
        total: float | None = None,
        completed: float | None = None,
        description: str | None = None,
    ) -> None:
        """Change the total, the completed amount or the description of the bar."""
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, total=total, completed=completed, description=description
            )

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[self._progress.task_ids.index(self._task)]
            if exc[0] is None and task.total is not None:
                self._progress.update(self._task, completed=task.total)
            self._progress.refresh()
            self._ctx.__exit__(*exc)  # type: ignore[union-attr]
        self._progress = self._task = self._ctx = None


def track(
    iterable: Iterable[T],
    description: str,
    total: float | None = None,
    enabled: bool = True,
) -> Iterator[T]:
    """Yield from ``iterable`` while advancing a bar by one per item (plain iteration if off)."""
    if not enabled:
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with ProgressTask(description, total=total, enabled=True) as task:
        for item in iterable:
            yield item
            task.advance(1)
