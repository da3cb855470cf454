"""Admin routes of the monitoring loop: drift reports, gated retraining, decisions, rollback,
model cards. Each calls the same workflow function as the command line and the scheduler."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from recstack.errors import ConflictError
from recstack.monitoring.config import DriftConfig, GateConfig
from recstack.serving.api.auth import AdminScope
from recstack.serving.api.schemas import JobOut, error_responses

router = APIRouter(prefix="/v1/admin", tags=["monitoring"])
ERRORS = error_responses(401, 403, 404, 409, 422, 429, 503)
ReportId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="Report id.")
]


class DriftRequest(BaseModel):
    """Thresholds for this report (defaults: Evidently's)."""

    model_config = ConfigDict(extra="forbid")
    config: DriftConfig | None = None


class RetrainRequest(BaseModel):
    """Gate thresholds and what prompted the retrain."""

    model_config = ConfigDict(extra="forbid")
    config: GateConfig | None = None
    drift_report_id: str | None = Field(None, max_length=64)
    reason: str = Field("manual", min_length=1, max_length=64)


class SignalOut(BaseModel):
    name: str
    method: str
    kind: str
    value: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    detail: dict[str, Any] = Field(default_factory=dict)


class DriftReportOut(BaseModel):
    id: str
    created_at: str
    drifted: bool
    share: float
    signals: list[SignalOut]
    reference: dict[str, Any]
    current: dict[str, Any]
    model: dict[str, Any]
    config: dict[str, Any]
    skipped: list[str]


class DriftReportsOut(BaseModel):
    reports: list[DriftReportOut]


class DecisionOut(BaseModel):
    id: str
    created_at: str
    action: str
    model_name: str
    promoted: bool
    reason: str
    champion: dict[str, Any]
    challenger: dict[str, Any] | None = None
    trigger: str = "manual"
    drift_report_id: str | None = None
    thresholds: dict[str, Any] = Field(default_factory=dict)
    data_window: dict[str, Any] = Field(default_factory=dict)
    holdout: dict[str, Any] = Field(default_factory=dict)
    checks: list[dict[str, Any]] = Field(default_factory=list)
    aliases: dict[str, int] = Field(default_factory=dict)
    notified: str = ""
    seconds: float = 0.0
    experiment: str | None = None


class DecisionsOut(BaseModel):
    decisions: list[DecisionOut]


@router.get("/drift", response_model=DriftReportsOut, responses=ERRORS, summary="Drift reports")
def drift_reports(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    _principal: object = AdminScope,
) -> dict:
    """The newest stored drift reports first."""
    from recstack.workflows.monitor import list_drift_reports

    state = request.app.state.recstack
    reports = list_drift_reports(state.settings, store=state.store, limit=limit)
    return {"reports": [r.to_dict() for r in reports]}


@router.post("/drift", response_model=DriftReportOut, responses=ERRORS, summary="Run drift")
def drift(
    request: Request, body: DriftRequest | None = None, _principal: object = AdminScope
) -> dict:
    """Compare the events after the champion's training window with it; store the report."""
    from recstack.workflows.monitor import run_drift

    state = request.app.state.recstack
    config = body.config if body is not None else None
    return run_drift(state.settings, store=state.store, config=config).to_dict()


@router.get(
    "/drift/{report_id}", response_model=DriftReportOut, responses=ERRORS, summary="A report"
)
def drift_report(request: Request, report_id: ReportId, _principal: object = AdminScope) -> dict:
    from recstack.workflows.monitor import get_drift_report

    state = request.app.state.recstack
    return get_drift_report(state.settings, report_id, store=state.store)[0].to_dict()


@router.get(
    "/drift/{report_id}/html",
    response_model=None,
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}, **ERRORS},
    summary="A report as a page",
)
def drift_report_html(
    request: Request, report_id: ReportId, _principal: object = AdminScope
) -> HTMLResponse:
    from recstack.workflows.monitor import get_drift_report

    state = request.app.state.recstack
    return HTMLResponse(get_drift_report(state.settings, report_id, store=state.store)[1])


def _reload_everywhere(state: Any, wait: bool) -> str:
    """Reload this worker (now, or in the background) and tell the others."""
    if wait:
        state.reload()
    else:
        threading.Thread(target=state.reload, name="recstack-reload", daemon=True).start()
    if state.broadcast is not None:
        state.broadcast.publish("reload")
        return "this worker reloaded; the others were told to reload"
    return "this worker reloaded"


@router.post(
    "/retrain", status_code=202, response_model=JobOut, responses=ERRORS, summary="Retrain"
)
def retrain(
    request: Request, body: RetrainRequest | None = None, _principal: object = AdminScope
) -> dict:
    """Queue a gated retrain: fit a challenger like the champion, score both on a recent
    temporal holdout, promote only if it wins (then every worker reloads). Poll the job; the
    result is the decision. 409 while another retrain runs."""
    from recstack.workflows.retrain import require_champion, retrain_running, run_retrain

    state = request.app.state.recstack
    settings = state.settings
    body = body or RetrainRequest()
    running = retrain_running(settings, store=state.store)
    if running is not None:
        raise ConflictError(f"a retrain is already running (held by {running['owner']})")
    require_champion(settings)  # 404 now rather than a failed job

    def work() -> dict[str, Any]:
        decision = run_retrain(
            settings,
            store=state.store,
            reason=body.reason,
            drift_report_id=body.drift_report_id,
            config=body.config,
            notify=lambda: _reload_everywhere(state, wait=True),
        )
        return decision.to_dict()

    return state.jobs.submit("retrain", body.model_dump(mode="json"), work).as_dict()


@router.get(
    "/decisions", response_model=DecisionsOut, responses=ERRORS, summary="Promotion decisions"
)
def decisions(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    _principal: object = AdminScope,
) -> dict:
    """Promotions, refusals and rollbacks, newest first."""
    from recstack.workflows.retrain import list_decisions

    state = request.app.state.recstack
    return {"decisions": list_decisions(state.settings, store=state.store, limit=limit)}


@router.post("/rollback", response_model=DecisionOut, responses=ERRORS, summary="Roll back")
def rollback(request: Request, _principal: object = AdminScope) -> dict:
    """Point the champion back at the previous version; every worker reloads."""
    from recstack.workflows.rollback import run_rollback

    state = request.app.state.recstack
    return run_rollback(
        state.settings,
        store=state.store,
        registry=_registry(request),
        notify=lambda: _reload_everywhere(state, wait=False),
    ).to_dict()


def _registry(request: Request) -> Any:
    """This app's registry client, made once: starting MLflow's store costs more than the
    few calls a rollback makes."""
    from recstack.registry.mlflow_registry import ModelRegistry

    settings = request.app.state.recstack.settings
    registry = getattr(request.app.state, "monitoring_registry", None)
    if registry is None or registry.settings is not settings:
        registry = ModelRegistry(settings)
        request.app.state.monitoring_registry = registry
    return registry


class CardOut(BaseModel):
    name: str
    version: int
    markdown: str


@router.get("/cards/{version}", response_model=CardOut, responses=ERRORS, summary="A model card")
def model_card(
    request: Request,
    version: Annotated[int, Path(ge=1, le=1_000_000_000)],
    _principal: object = AdminScope,
) -> dict:
    """The Markdown model card of a registered version of the served model."""
    from recstack.registry.cards import read_model_card

    settings = request.app.state.recstack.settings
    card = read_model_card(settings, version=version)
    return {"name": settings.model_name, "version": version, "markdown": card}
