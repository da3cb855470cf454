"""Run one piece of work as a job recorded in the store (table ``jobs``), with a heartbeat.

The scheduler's jobs (retrain, drift check, retention) are recorded exactly like the admin
API's, so ``GET /v1/admin/jobs/{id}`` and ``/v1/admin/jobs`` show them on every worker.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("recstack.scheduler")

HEARTBEAT_SECONDS = 10.0


def owner_name() -> str:
    """``host:pid`` of this process (the owner of its job records and locks)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_recorded(
    ops: Any,
    kind: str,
    request: dict[str, Any],
    work: Callable[[str], dict[str, Any]],
    *,
    beat: Callable[[], None] | None = None,
    started: datetime | None = None,
) -> dict[str, Any]:
    """Run ``work(job_id)`` now as a job of ``kind``; returns the finished job's record.

    The record goes from ``running`` to ``succeeded`` (with ``work``'s dict as result) or
    ``failed`` (with the error); a failure is recorded, not raised. ``beat`` is called with
    every heartbeat (to renew a lock held for the job). ``started``: the start time to record
    (default now; the scheduler passes the time of its pass).
    """
    job_id = uuid.uuid4().hex
    now = started or datetime.now(UTC)
    ops.insert_job(
        {
            "id": job_id,
            "kind": kind,
            "status": "running",
            "request": request,
            "owner": owner_name(),
            "created_at": now,
            "started_at": now,
            "heartbeat_at": now,
        }
    )
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                ops.update_job(job_id, heartbeat_at=datetime.now(UTC))
                if beat is not None:
                    beat()
            except Exception:  # noqa: BLE001 - the job goes on; the next beat retries
                log.warning("heartbeat of job %s failed", job_id, exc_info=True)

    thread = threading.Thread(target=heartbeat, name=f"recstack-{kind}-beat", daemon=True)
    thread.start()
    values: dict[str, Any]
    try:
        values = {"status": "succeeded", "result": work(job_id)}
    except Exception as exc:  # noqa: BLE001 - recorded on the job
        log.exception("%s job %s failed", kind, job_id)
        values = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    finally:
        stop.set()
    ops.update_job(job_id, finished_at=datetime.now(UTC), **values)
    return ops.get_job(job_id)
