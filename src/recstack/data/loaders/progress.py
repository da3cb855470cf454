"""A step-by-step progress bar for long data jobs (loading, generating), silent when disabled."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


class Steps:
    """Advances a bar one named step at a time; does nothing when no bar is shown."""

    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, label: str, amount: int = 1) -> None:
        """Mark ``amount`` steps done and show ``label`` as the step now running."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=amount, step=label)


@contextmanager
def step_progress(description: str, total: int, enabled: bool) -> Iterator[Steps]:
    """A rich progress bar (on stderr, so stdout stays machine-readable) when ``enabled``."""
    if not enabled:
        yield Steps(None, None)
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[step]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    with progress:
        task = progress.add_task(description, total=total, step="")
        yield Steps(progress, task)
        progress.update(task, completed=total, step="done")
