"""Job records and cross-process locks in the store (tables ``jobs`` and ``job_locks``).

A job accepted by one server worker, or started by the scheduler process, is a row here, so
``GET /v1/admin/jobs/{id}`` answers the same on every worker and every replica. A lock is a row
naming its owner with an expiry: the owner renews it (a heartbeat) while it works, and a lock
whose owner died expires, so another process can take it without anyone cleaning up.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from recstack.store.engine import write_transaction
from recstack.store.tables import job_locks, jobs

FIELDS = ("status", "result", "error", "started_at", "finished_at", "heartbeat_at", "owner")
FINISHED = ("succeeded", "failed")


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC datetimes, PostgreSQL aware ones: make both aware."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    """A JSON-safe copy (datetimes and other objects as strings)."""
    return None if value is None else json.loads(json.dumps(value, default=str))


def _record(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for key in ("created_at", "started_at", "finished_at", "heartbeat_at"):
        out[key] = _aware(out[key])
    return out


def insert_job(engine: Engine, record: dict[str, Any]) -> None:
    """Store a new job (``id, kind, status, request, created_at`` and any of ``FIELDS``)."""
    row = {**record, "request": _json(record.get("request")), "result": _json(record.get("result"))}
    with write_transaction(engine) as conn:
        conn.execute(sa.insert(jobs).values(**row))


def update_job(engine: Engine, job_id: str, **values: Any) -> None:
    """Change some of a job's ``FIELDS``."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"not job fields: {sorted(unknown)}")
    if "result" in values:
        values["result"] = _json(values["result"])
    with write_transaction(engine) as conn:
        conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))


def get_job(engine: Engine, job_id: str) -> dict[str, Any] | None:
    """The job's record, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
    return _record(row) if row is not None else None


def list_jobs(
    engine: Engine, *, kind: str | None = None, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest jobs first, optionally of one kind and status."""
    query = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit)
    if kind is not None:
        query = query.where(jobs.c.kind == kind)
    if status is not None:
        query = query.where(jobs.c.status == status)
    with engine.connect() as conn:
        return [_record(row) for row in conn.execute(query)]


def job_counts(engine: Engine) -> dict[tuple[str, str], int]:
    """How many jobs there are by ``(kind, status)``."""
    query = sa.select(jobs.c.kind, jobs.c.status, sa.func.count()).group_by(
        jobs.c.kind, jobs.c.status
    )
    with engine.connect() as conn:
        return {(kind, status): int(n) for kind, status, n in conn.execute(query)}


def fail_stale_jobs(engine: Engine, older_than: datetime, reason: str) -> int:
    """Mark jobs still queued or running whose last heartbeat (or creation) is before
    ``older_than`` as failed: their process died. Returns how many."""
    last_seen = sa.func.coalesce(jobs.c.heartbeat_at, jobs.c.started_at, jobs.c.created_at)
    with write_transaction(engine) as conn:
        result = conn.execute(
            sa.update(jobs)
            .where(jobs.c.status.in_(("queued", "running")), last_seen < older_than)
            .values(status="failed", error=reason, finished_at=datetime.now(UTC))
        )
    return int(result.rowcount or 0)


# ---- locks --------------------------------------------------------------------------------------
def acquire_lock(
    engine: Engine,
    name: str,
    owner: str,
    ttl_seconds: float,
    *,
    job_id: str | None = None,
    now: float | None = None,
) -> bool:
    """Take the lock ``name`` for ``owner`` until ``now + ttl_seconds``; True when taken.

    Taking succeeds when nobody holds it, when its holder's time ran out, or when ``owner``
    already holds it (then it is renewed). Safe between processes and hosts: the update of an
    expired row and the insert of a new one are each one atomic statement.
    """
    now = time.time() if now is None else now
    values = {"owner": owner, "job_id": job_id, "acquired_at": now, "expires_at": now + ttl_seconds}
    with write_transaction(engine) as conn:
        taken = conn.execute(
            sa.update(job_locks)
            .where(
                job_locks.c.name == name,
                sa.or_(job_locks.c.expires_at < now, job_locks.c.owner == owner),
            )
            .values(**values)
        ).rowcount
    if taken:
        return True
    try:
        with write_transaction(engine) as conn:
            conn.execute(sa.insert(job_locks).values(name=name, **values))
    except IntegrityError:  # someone else holds it
        return False
    return True


def renew_lock(
    engine: Engine, name: str, owner: str, ttl_seconds: float, *, now: float | None = None
) -> bool:
    """Push the lock's expiry on (a heartbeat); False when ``owner`` no longer holds it."""
    now = time.time() if now is None else now
    with write_transaction(engine) as conn:
        renewed = conn.execute(
            sa.update(job_locks)
            .where(job_locks.c.name == name, job_locks.c.owner == owner)
            .values(expires_at=now + ttl_seconds)
        ).rowcount
    return bool(renewed)


def release_lock(engine: Engine, name: str, owner: str) -> bool:
    """Give the lock back; False when ``owner`` did not hold it."""
    with write_transaction(engine) as conn:
        deleted = conn.execute(
            sa.delete(job_locks).where(job_locks.c.name == name, job_locks.c.owner == owner)
        ).rowcount
    return bool(deleted)


def lock_holder(engine: Engine, name: str, *, now: float | None = None) -> dict[str, Any] | None:
    """``{"name", "owner", "job_id", "acquired_at", "expires_at"}`` of a live lock, or None."""
    now = time.time() if now is None else now
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(job_locks).where(job_locks.c.name == name, job_locks.c.expires_at >= now)
        ).first()
    return dict(row._mapping) if row is not None else None
