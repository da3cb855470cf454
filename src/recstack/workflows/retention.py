"""Event retention: delete stored events older than ``retention_days`` (seed 001: 90 days).

Run by the scheduler (``retention_schedule``) or by hand (``recstack retention``). Deletion
goes through the store in batches, each its own transaction, so serving and ingest keep going
while it runs. Users and items stay: a user whose events all expired is still known to the
store, with an empty history.
"""

from __future__ import annotations

import time
from typing import Any

from recstack.errors import ConfigError
from recstack.progress import ProgressTask
from recstack.settings import Settings

DAY = 86_400


def retention_cutoff(now: float, days: int) -> int:
    """Epoch seconds before which events are deleted: ``days`` whole days before ``now``.

    >>> retention_cutoff(100 * 86_400 + 5, 90)
    864005
    """
    if days < 1:
        raise ConfigError(f"retention_days must be at least 1, got {days}")
    return int(now) - days * DAY


def enforce_retention(
    settings: Settings,
    store: Any,
    *,
    days: int | None = None,
    now: float | None = None,
    batch_size: int = 10_000,
    progress: bool = False,
) -> dict[str, Any]:
    """Delete events older than ``days`` (default ``settings.retention_days``).

    Returns ``{"deleted", "cutoff", "days"}``; ``deleted`` is 0 when retention is off.
    """
    days = days if days is not None else settings.retention_days
    if days is None:
        return {"deleted": 0, "cutoff": None, "days": None}
    cutoff = retention_cutoff(time.time() if now is None else now, days)
    with ProgressTask(f"deleting events older than {days} days", enabled=progress) as task:
        deleted = store.operations.delete_events_before(
            cutoff, batch_size=batch_size, on_batch=task.advance
        )
    return {"deleted": deleted, "cutoff": cutoff, "days": days}
