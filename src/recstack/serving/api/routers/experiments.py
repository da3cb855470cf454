"""Experiments over HTTP: define, start, ramp, stop, read results (admin keys).

Starting loads every arm's model into a slot of this worker *before* the experiment is marked
running (an arm that cannot load is a 422 and nothing changes), then tells the other workers,
which load the same slots.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import BaseModel, Field

from recstack.errors import NotFoundError
from recstack.experiments.config import Experiment, ExperimentSpec, validated
from recstack.serving.api.auth import AdminScope
from recstack.serving.api.schemas import error_responses
from recstack.serving.runtime.experiments import runtime_of

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])
Key = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
ERRORS = error_responses(401, 403, 404, 409, 422, 429, 503)
CREATE_422 = (
    "Invalid definition (arm weights not summing to 1, repeated arm names, a forced user naming "
    "no arm, end before start, interleaving with other than two arms) or an arm model the "
    "registry does not have."
)


class TrafficIn(BaseModel):
    traffic: float = Field(gt=0, le=1, description="New share of all users (only up).")


def _store(request: Request) -> Any:
    state = request.app.state.recstack
    if state.store is None:
        from recstack.errors import UnavailableError

        raise UnavailableError("no store connected")
    return state.store


def _announce(request: Request) -> None:
    """Load this worker's arm slots now and tell the other workers to do the same."""
    state = request.app.state.recstack
    runtime_of(state).refresh()
    if state.broadcast is not None:
        state.broadcast.publish("experiments")


def _flows() -> Any:
    """The experiment workflows, imported on first use (their statistics are not needed to
    serve, and importing them costs every worker's start)."""
    from recstack.workflows import experiments

    return experiments


@router.post(
    "",
    status_code=201,
    response_model=Experiment,
    responses=error_responses(401, 403, 409, 422, 429, 503, reasons={422: CREATE_422}),
    summary="Define an experiment (draft)",
)
def create(
    request: Request,
    body: Annotated[ExperimentSpec, Body()],
    _principal: object = AdminScope,
) -> dict:
    """Store a draft experiment; 409 when the key exists, 422 naming an unknown arm model."""
    state = request.app.state.recstack
    data = body.model_dump(mode="json", exclude_unset=True)
    return _flows().create_experiment(_store(request), state.settings, data)


@router.get("", response_model=list[Experiment], responses=ERRORS, summary="List experiments")
def list_all(
    request: Request,
    status: Annotated[str | None, Query(pattern="^(draft|running|stopped)$")] = None,
    _principal: object = AdminScope,
) -> list[dict]:
    return _flows().list_experiments(_store(request), status)


@router.get("/{key}", response_model=Experiment, responses=ERRORS, summary="One experiment")
def get_one(request: Request, key: Key, _principal: object = AdminScope) -> dict:
    return _flows().get_experiment(_store(request), key)


@router.post(
    "/{key}/start", response_model=Experiment, responses=ERRORS, summary="Start an experiment"
)
def start(request: Request, key: Key, _principal: object = AdminScope) -> dict:
    """Load the arms' models, then serve the experiment's users by arm; 409 unless a draft."""
    store = _store(request)
    definition = _flows().get_experiment(store, key)
    if definition["status"] != "draft":
        from recstack.errors import ConflictError

        raise ConflictError(f"experiment {key!r} is {definition['status']}; only a draft starts")
    runtime_of(request.app.state.recstack).load_arms(validated(definition))
    started = _flows().start_experiment(store, key)
    _announce(request)
    return started


@router.post(
    "/{key}/stop", response_model=Experiment, responses=ERRORS, summary="Stop an experiment"
)
def stop(request: Request, key: Key, _principal: object = AdminScope) -> dict:
    """Serve its users from the default slot again (results stay readable)."""
    stopped = _flows().stop_experiment(_store(request), key)
    _announce(request)
    return stopped


@router.post(
    "/{key}/traffic", response_model=Experiment, responses=ERRORS, summary="Ramp traffic up"
)
def ramp(request: Request, key: Key, body: TrafficIn, _principal: object = AdminScope) -> dict:
    """Raise the share of users in the experiment; nobody already in it changes arm."""
    ramped = _flows().ramp_experiment(_store(request), key, body.traffic)
    _announce(request)
    return ramped


@router.get(
    "/{key}/results",
    response_model=dict[str, Any],
    responses=ERRORS,
    summary="Experiment results",
)
def results(
    request: Request,
    key: Key,
    alpha: Annotated[float, Query(gt=0, lt=0.5)] = 0.05,
    mde: Annotated[float, Query(gt=0, le=10)] = 0.05,
    _principal: object = AdminScope,
) -> dict:
    """Per arm: users, exposures, metrics with CIs; `srm` (`p_value`, `flag`); lifts,
    p-values, sequential status and the decision. Interleaving: the preference test."""
    return _flows().experiment_results(_store(request), key, alpha=alpha, mde=mde)


@router.get(
    "/{key}/report",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"text/html": {}}}},
    summary="Experiment report (HTML with plots)",
)
def report(request: Request, key: Key, _principal: object = AdminScope) -> Response:
    from recstack.workflows.experiment_report import report_html

    store = _store(request)
    if store.experiments.get(key) is None:
        raise NotFoundError(f"unknown experiment {key!r}")
    return Response(report_html(store, key), media_type="text/html")
