"""The Experiments page: create an experiment from a form, its arms and traffic, live results
(metric per arm with its interval, lift, p-value and sequential status, SRM, decision), start
and stop.

Every action makes the calls ``/v1/experiments`` makes: ``workflows.experiments`` to define,
start, stop and analyse, and the serving runtime to load the arms' models into slots before an
experiment starts (and to tell the other workers).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from recstack.errors import ConflictError, NotFoundError, RecstackError
from recstack.experiments.config import METRICS, validated
from recstack.ui.web import Refused, Viewer, action, app_state, dashboard, page_viewer
from recstack.workflows import experiments as flows

router = APIRouter(prefix="/ui")
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ARM_ROWS = 4
REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def _store(request: Request) -> Any:
    store = app_state(request).store
    if store is None:
        raise Refused(503, "no store connected")
    return store


def _key(key: str) -> str:
    if not KEY.match(key):
        raise Refused(404, "no such experiment")
    return key


def _refused(exc: RecstackError) -> Refused:
    if isinstance(exc, NotFoundError):
        return Refused(404, str(exc))
    if isinstance(exc, ConflictError):
        return Refused(409, str(exc))
    return Refused(400, str(exc))


@router.get("/experiments", response_class=HTMLResponse, include_in_schema=False)
def experiments_page(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
    state = app_state(request)
    experiments = list(reversed(flows.list_experiments(_store(request))))
    models = sorted({s["ref"] for s in state.slots()}) if state.loaded else []
    return dashboard(request).render(
        request,
        "experiments.html",
        viewer=viewer,
        page="experiments",
        experiments=experiments,
        metrics=METRICS,
        arm_rows=ARM_ROWS,
        models=["popularity", *models],
    )


@router.get("/experiments/{key}", response_class=HTMLResponse, include_in_schema=False)
def experiment_page(
    request: Request, key: str, viewer: Viewer = Depends(page_viewer)
) -> HTMLResponse:
    store = _store(request)
    try:
        definition = flows.get_experiment(store, _key(key))
    except RecstackError as exc:
        raise _refused(exc) from None
    return dashboard(request).render(
        request,
        "experiment.html",
        viewer=viewer,
        page="experiments",
        exp=definition,
        results=_results(store, key),
    )


@router.get("/experiments/{key}/results", response_class=HTMLResponse, include_in_schema=False)
def results_partial(
    request: Request, key: str, viewer: Viewer = Depends(page_viewer)
) -> HTMLResponse:
    """The results block alone: htmx refreshes it while the experiment runs."""
    store = _store(request)
    return dashboard(request).render(
        request, "_exp_results.html", viewer=viewer, results=_results(store, _key(key)), key=key
    )


@router.get("/experiments/{key}/report", include_in_schema=False)
def report(request: Request, key: str, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
    """The experiment's HTML report with its plots (scripts blocked)."""
    from recstack.workflows.experiment_report import report_html

    store = _store(request)
    if store.experiments.get(_key(key)) is None:
        raise Refused(404, f"unknown experiment {key!r}")
    return HTMLResponse(report_html(store, key), headers=REPORT_HEADERS)


def _results(store: Any, key: str) -> dict[str, Any]:
    try:
        return flows.experiment_results(store, key)
    except RecstackError as exc:
        return {"error": str(exc)}


def definition_from_form(form: dict[str, str]) -> dict[str, Any]:
    """An experiment definition from the create form (blank arm rows are left out).

    >>> definition_from_form({"key": "t1", "traffic": "0.5", "primary_metric": "ctr",
    ...     "arm0_name": "a", "arm0_model": "champion", "arm0_weight": "0.5",
    ...     "arm1_name": "b", "arm1_model": "challenger", "arm1_weight": "0.5",
    ...     "arm2_name": "", "arm2_model": "", "arm2_weight": ""})["arms"][1]
    {'name': 'b', 'model': 'challenger', 'weight': 0.5}
    """
    arms = []
    for i in range(ARM_ROWS):
        name = form.get(f"arm{i}_name", "").strip()
        model = form.get(f"arm{i}_model", "").strip()
        weight = form.get(f"arm{i}_weight", "").strip()
        if not (name or model or weight):
            continue
        try:
            value = float(weight)
        except ValueError:
            raise Refused(400, f"arm {i + 1}: the weight must be a number") from None
        arms.append({"name": name, "model": model, "weight": value})
    try:
        traffic = float(form.get("traffic") or 1.0)
    except ValueError:
        raise Refused(400, "traffic must be a number between 0 and 1") from None
    data: dict[str, Any] = {
        "key": form.get("key", "").strip(),
        "description": form.get("description", "").strip(),
        "traffic": traffic,
        "arms": arms,
        "primary_metric": form.get("primary_metric") or "ctr",
    }
    if form.get("mode") in ("ab", "interleave"):
        data["mode"] = form["mode"]
    return data


@router.post("/experiments", include_in_schema=False)
async def create(request: Request) -> RedirectResponse:
    _viewer, form = await action(request)
    data = definition_from_form(form)
    state = app_state(request)
    try:
        created = await run_in_threadpool(
            flows.create_experiment, _store(request), state.settings, data
        )
    except RecstackError as exc:
        raise _refused(exc) from None
    return RedirectResponse(f"/ui/experiments/{created['key']}", status_code=303)


@router.post("/experiments/{key}/start", include_in_schema=False)
async def start(request: Request, key: str) -> RedirectResponse:
    await action(request)
    await run_in_threadpool(_start, request, _key(key))
    return RedirectResponse(f"/ui/experiments/{key}", status_code=303)


@router.post("/experiments/{key}/stop", include_in_schema=False)
async def stop(request: Request, key: str) -> RedirectResponse:
    await action(request)
    try:
        await run_in_threadpool(flows.stop_experiment, _store(request), _key(key))
    except RecstackError as exc:
        raise _refused(exc) from None
    await run_in_threadpool(_announce, request)
    return RedirectResponse(f"/ui/experiments/{key}", status_code=303)


def _start(request: Request, key: str) -> None:
    """Load the arms' models in this worker, mark the experiment running, tell the others."""
    from recstack.serving.runtime.experiments import runtime_of

    store = _store(request)
    try:
        definition = flows.get_experiment(store, key)
        if definition["status"] != "draft":
            raise ConflictError(
                f"experiment {key!r} is {definition['status']}; only a draft starts"
            )
        runtime_of(app_state(request)).load_arms(validated(definition))
        flows.start_experiment(store, key)
    except RecstackError as exc:
        raise _refused(exc) from None
    _announce(request)


def _announce(request: Request) -> None:
    from recstack.serving.runtime.experiments import runtime_of

    state = app_state(request)
    runtime_of(state).refresh()
    if state.broadcast is not None:
        state.broadcast.publish("experiments")
