"""Admin routes of operations: every job (from any worker or the scheduler), the audit log,
the scheduler's state."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from recstack.errors import ConfigError, UnavailableError
from recstack.serving.api.auth import AdminScope
from recstack.serving.api.schemas import JobOut, error_responses

router = APIRouter(prefix="/v1/admin", tags=["operations"])
ERRORS = error_responses(401, 403, 422, 429, 503)
JobKind = Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$")]


class JobsOut(BaseModel):
    jobs: list[JobOut]


class AuditEntry(BaseModel):
    id: int
    at: datetime
    key_prefix: str
    action: str
    target: str | None = None
    status: int
    request_id: str | None = None


class AuditOut(BaseModel):
    entries: list[AuditEntry]


class LockOut(BaseModel):
    owner: str
    job_id: str | None = None
    acquired_at: float
    expires_at: float


class SchedulerOut(BaseModel):
    active: LockOut | None
    retrain_running: LockOut | None
    triggers: list[str]
    recent: list[JobOut]


def _store(request: Request) -> Any:
    store = request.app.state.recstack.store
    if store is None:
        raise UnavailableError("no store connected")
    return store


@router.get("/jobs", response_model=JobsOut, responses=ERRORS, summary="Recent jobs")
def jobs(
    request: Request,
    kind: JobKind = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    _principal: object = AdminScope,
) -> dict:
    """Jobs of every worker and of the scheduler (train, retrain, drift, retention), newest
    first."""
    found = request.app.state.recstack.jobs.list(kind=kind, limit=limit)
    return {"jobs": [job.as_dict() for job in found]}


@router.get("/audit", response_model=AuditOut, responses=ERRORS, summary="Audit log")
def audit(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    key_prefix: Annotated[str | None, Query(max_length=64)] = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    _principal: object = AdminScope,
) -> dict:
    """Admin actions newest first: who (key prefix), what (method and route), on what (path),
    with which status, when. Page back with `before_id` (the last entry's id)."""
    entries = _store(request).operations.list_audit(
        limit=limit, key_prefix=key_prefix, before_id=before_id
    )
    return {"entries": entries}


@router.get("/scheduler", response_model=SchedulerOut, responses=ERRORS, summary="Scheduler")
def scheduler(request: Request, _principal: object = AdminScope) -> dict:
    """Which scheduler process is active, whether a retrain runs, the configured triggers
    (this server's settings) and the latest scheduled jobs."""
    from recstack.workflows.scheduler import LEADER_LOCK, RETRAIN_LOCK, SchedulerConfig

    state = request.app.state.recstack
    ops = _store(request).operations
    recent = [
        job.as_dict()
        for job in state.jobs.list(limit=20)
        if job.kind in ("retrain", "drift", "retention")
    ]
    try:
        triggers = SchedulerConfig.from_settings(state.settings).describe()
    except ConfigError as exc:  # this server's settings; the scheduler would refuse to start
        triggers = [f"invalid: {exc}"]
    return {
        "active": ops.lock_holder(LEADER_LOCK),
        "retrain_running": ops.lock_holder(RETRAIN_LOCK),
        "triggers": triggers,
        "recent": recent,
    }
