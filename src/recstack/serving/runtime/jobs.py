"""Background jobs of the admin API (training), run one at a time in a worker thread.

A job runs in the worker process that accepted it, and its record lives in the store (table
``jobs``): ``GET /v1/admin/jobs/{id}`` answers the same on every worker of every replica, and
so do jobs the scheduler process starts. While a job runs its worker renews a heartbeat on the
record; a job whose heartbeat stopped (its process died) is reported failed. Without a store
(an app built around a ready engine only) records stay in this process's memory, up to
``max_jobs``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger("recstack.serving")

HEARTBEAT_SECONDS = 10.0
STALE_AFTER = timedelta(seconds=90)
LOST = "the process running the job stopped (no heartbeat)"


def _now() -> datetime:
    return datetime.now(UTC)


def process_owner() -> str:
    """``host:pid`` of this process, as job records and locks name their owner."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Job:
    """One background job and its outcome."""

    id: str
    kind: str
    request: dict[str, Any]
    status: str = "queued"
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "request": self.request,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "result": self.result,
            "error": self.error,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        """A job from its store record (``store.operations.get_job``)."""
        names = ("id", "kind", "status", "created_at", "started_at", "finished_at", "result")
        return cls(
            request=record.get("request") or {},
            error=record.get("error"),
            **{name: record.get(name) for name in names},
        )


class JobManager:
    """Queues callables on a single worker thread and records their status in the store.

    Args:
        max_jobs: jobs kept in this process's memory.
        store_of: returns the store (or None before it is connected); records go there.
    """

    def __init__(self, max_jobs: int = 200, store_of: Callable[[], Any] | None = None) -> None:
        self.max_jobs = max_jobs
        self.store_of = store_of or (lambda: None)
        self.owner = process_owner()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def _ops(self) -> Any:
        store = self.store_of()
        return store.operations if store is not None else None

    def _write(self, job: Job, *, insert: bool = False, **values: Any) -> None:
        """Mirror ``job`` into the store; a store failure is logged, the job goes on."""
        ops = self._ops()
        if ops is None:
            return
        try:
            if insert:
                record = {**job.as_dict(), "owner": self.owner}
                ops.insert_job(record)
            else:
                ops.update_job(job.id, **values)
        except Exception:  # noqa: BLE001 - the job itself must not fail on bookkeeping
            log.exception("could not record job %s in the store", job.id)

    def submit(self, kind: str, request: dict[str, Any], work: Callable[[], dict[str, Any]]) -> Job:
        """Queue ``work``; its returned dict becomes the job's result."""
        job = Job(uuid.uuid4().hex, kind, request)
        self._write(job, insert=True)
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="recstack-job"
                )
            self._jobs[job.id] = job
            while len(self._jobs) > self.max_jobs:
                oldest = next(iter(self._jobs))
                if self._jobs[oldest].status in ("queued", "running"):
                    break
                self._jobs.pop(oldest)
            executor = self._executor
        executor.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job, whichever process accepted it (this one's memory first)."""
        job = self._jobs.get(job_id)
        if job is not None:
            return job
        ops = self._ops()
        if ops is None:
            return None
        record = ops.get_job(job_id)
        if record is not None and record["status"] in ("queued", "running"):
            seen = record["heartbeat_at"] or record["started_at"] or record["created_at"]
            if seen < _now() - STALE_AFTER and ops.fail_stale_jobs(_now() - STALE_AFTER, LOST):
                record = ops.get_job(job_id)
        return Job.from_record(record) if record is not None else None

    def list(self, kind: str | None = None, limit: int = 50) -> list[Job]:
        """Recent jobs, newest first (every process's when there is a store)."""
        ops = self._ops()
        if ops is None:
            jobs = [j for j in reversed(self._jobs.values()) if kind in (None, j.kind)]
            return jobs[:limit]
        return [Job.from_record(r) for r in ops.list_jobs(kind=kind, limit=limit)]

    def _run(self, job: Job, work: Callable[[], dict[str, Any]]) -> None:
        job.status = "running"
        job.started_at = _now()
        self._write(job, status="running", started_at=job.started_at, heartbeat_at=_now())
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job, stop), daemon=True)
        beat.start()
        try:
            job.result = work()
            job.status = "succeeded"
        except Exception as exc:  # noqa: BLE001 - any failure is reported on the job
            log.exception("job %s (%s) failed", job.id, job.kind)
            job.error = f"{type(exc).__name__}: {exc}"
            job.status = "failed"
        finally:
            stop.set()
            job.finished_at = _now()
            self._write(
                job,
                status=job.status,
                result=job.result,
                error=job.error,
                finished_at=job.finished_at,
            )

    def _heartbeat(self, job: Job, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            self._write(job, heartbeat_at=_now())

    def shutdown(self) -> None:
        """Stop taking jobs; queued ones are cancelled, a running one finishes."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
            for job in self._jobs.values():
                if job.status == "queued":
                    job.status = "failed"
                    job.error = "server shut down before the job started"
                    job.finished_at = _now()
                    self._write(job, status="failed", error=job.error, finished_at=job.finished_at)
