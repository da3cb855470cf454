"""Background jobs of the admin API (training), run one at a time in a worker thread.

Jobs live in the memory of the worker process that accepted them: ``GET /v1/admin/jobs/{id}``
must reach the same worker (true with one worker; with several, read the result from the
registry via ``GET /v1/admin/models``). Finished jobs are kept up to ``max_jobs``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("recstack.serving")


def _now() -> datetime:
    return datetime.now(UTC)


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


class JobManager:
    """Queues callables on a single worker thread and records their status."""

    def __init__(self, max_jobs: int = 200) -> None:
        self.max_jobs = max_jobs
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, kind: str, request: dict[str, Any], work: Callable[[], dict[str, Any]]) -> Job:
        """Queue ``work``; its returned dict becomes the job's result."""
        job = Job(uuid.uuid4().hex, kind, request)
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
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        return list(self._jobs.values())

    def _run(self, job: Job, work: Callable[[], dict[str, Any]]) -> None:
        job.status = "running"
        job.started_at = _now()
        try:
            job.result = work()
            job.status = "succeeded"
        except Exception as exc:  # noqa: BLE001 - any failure is reported on the job
            log.exception("job %s (%s) failed", job.id, job.kind)
            job.error = f"{type(exc).__name__}: {exc}"
            job.status = "failed"
        finally:
            job.finished_at = _now()

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
