"""``Operations``: job records, locks, the audit log and retention bound to one store's engine.

``store.operations`` is how the serving runtime, the scheduler and the CLI reach the tables of
revision 0004 without passing the engine around (see ``store.jobs`` and ``store.audit``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from recstack.store import audit
from recstack.store import jobs as job_rows


class Operations:
    """The operations tables of one store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- jobs
    def insert_job(self, record: dict[str, Any]) -> None:
        job_rows.insert_job(self.engine, record)

    def update_job(self, job_id: str, **values: Any) -> None:
        job_rows.update_job(self.engine, job_id, **values)

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return job_rows.get_job(self.engine, job_id)

    def list_jobs(
        self, *, kind: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        return job_rows.list_jobs(self.engine, kind=kind, status=status, limit=limit)

    def job_counts(self) -> dict[tuple[str, str], int]:
        return job_rows.job_counts(self.engine)

    def fail_stale_jobs(self, older_than: datetime, reason: str) -> int:
        return job_rows.fail_stale_jobs(self.engine, older_than, reason)

    # ---- locks
    def acquire_lock(
        self, name: str, owner: str, ttl_seconds: float, *, job_id: str | None = None
    ) -> bool:
        return job_rows.acquire_lock(self.engine, name, owner, ttl_seconds, job_id=job_id)

    def renew_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        return job_rows.renew_lock(self.engine, name, owner, ttl_seconds)

    def release_lock(self, name: str, owner: str) -> bool:
        return job_rows.release_lock(self.engine, name, owner)

    def lock_holder(self, name: str) -> dict[str, Any] | None:
        return job_rows.lock_holder(self.engine, name)

    # ---- audit log and retention
    def record_audit(self, **entry: Any) -> None:
        audit.record_audit(self.engine, **entry)

    def list_audit(self, **filters: Any) -> list[dict[str, Any]]:
        return audit.list_audit(self.engine, **filters)

    def delete_events_before(
        self,
        cutoff: int,
        *,
        batch_size: int = 10_000,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        return audit.delete_events_before(
            self.engine, cutoff, batch_size=batch_size, on_batch=on_batch
        )

    # ---- what /metrics reports
    def stats(self) -> dict[str, Any]:
        """Jobs, retrain outcomes, the latest drift report, event and exposure marks."""
        from recstack.store.ops_stats import operations_stats

        return operations_stats(self.engine)

    def count_events_after(self, timestamp: int) -> int:
        """Events timestamped after ``timestamp`` (a full scan: call it rarely)."""
        from recstack.store.ops_stats import count_events_after

        return count_events_after(self.engine, timestamp)
