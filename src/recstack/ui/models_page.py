"""The Models page: registered versions, aliases, metrics, evaluation reports; train, promote
and roll back (each confirmed on its own page first), and the progress of training jobs.

Training is queued on the app's job manager with ``workflows.train.train_and_register``, and a
promotion or rollback moves the registry alias and then reloads whatever serves that alias
(the primary slot or a named one) and tells the other workers — the calls the admin API and
the CLI make.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from recstack.errors import ConfigError, NotFoundError, RecstackError
from recstack.models.catalog import MODELS, create_model
from recstack.ui.web import Refused, Viewer, action, app_state, dashboard, page_viewer
from recstack.workflows.auto import AUTO

router = APIRouter(prefix="/ui")
ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REPORT_FILE = re.compile(r"^[A-Za-z0-9_.-]{1,128}\.png$")


def registry_configured(settings: Any) -> bool:
    """False when the local registry was never created (nothing registered yet)."""
    return bool(settings.mlflow_tracking_uri) or (Path(settings.home) / "mlflow.db").exists()


def versions(settings: Any) -> list[Any]:
    """Every registered version, newest first (empty when there is no registry yet)."""
    if not registry_configured(settings):
        return []
    from recstack.registry import ModelRegistry

    found = ModelRegistry(settings).list_versions()
    return sorted(found, key=lambda v: (v.name, -int(v.version)))


def reports(settings: Any, limit: int = 10) -> list[dict[str, Any]]:
    """The newest evaluation reports under ``home/reports`` (``recstack evaluate``)."""
    root = Path(settings.home) / "reports"
    if not root.is_dir():
        return []
    found = []
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), reverse=True)[:limit]:
        summary = None
        results = folder / "results.json"
        if results.exists():
            try:
                summary = json.loads(results.read_text())
            except ValueError:
                summary = None
        plots = sorted(p.name for p in folder.glob("*.png") if REPORT_FILE.match(p.name))
        found.append({"name": folder.name, "plots": plots, "summary": _table(summary)})
    return found


def _table(summary: Any) -> list[dict[str, Any]]:
    """Rows ``{model, metric@k: value}`` of a report's results.json (its ``models`` list)."""
    if not isinstance(summary, dict) or not isinstance(summary.get("models"), list):
        return []
    k = summary.get("k", "")
    shown = ("ndcg", "precision", "recall", "map", "hit_rate", "coverage")
    rows = []
    for model in summary["models"]:
        if not isinstance(model, dict):
            continue
        metrics = model.get("metrics") or {}
        row: dict[str, Any] = {"model": model.get("name")}
        row.update({f"{m}@{k}": metrics.get(m) for m in shown})
        rows.append(row)
    return rows


@router.get("/models", response_class=HTMLResponse, include_in_schema=False)
def models_page(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
    state = app_state(request)
    slots = state.slots() if state.loaded else []
    return dashboard(request).render(
        request,
        "models.html",
        viewer=viewer,
        page="models",
        versions=versions(state.settings),
        slots=slots,
        reports=reports(state.settings),
        model_names=[AUTO, *sorted(MODELS)],
        jobs=_jobs(state),
    )


@router.get("/models/jobs", response_class=HTMLResponse, include_in_schema=False)
def jobs_partial(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
    """The jobs table alone (htmx refreshes it while a job runs)."""
    jobs = _jobs(app_state(request))
    return dashboard(request).render(request, "_jobs.html", viewer=viewer, jobs=jobs)


def _jobs(state: Any) -> list[dict[str, Any]]:
    jobs = sorted(state.jobs.list(), key=lambda job: str(job.created_at), reverse=True)
    return [job.as_dict() for job in jobs[:20]]


@router.get("/reports/{report}/{filename}", include_in_schema=False)
def report_plot(
    request: Request, report: str, filename: str, viewer: Viewer = Depends(page_viewer)
) -> FileResponse:
    """A PNG chart of an evaluation report (names checked: no path leaves ``home/reports``)."""
    if not REPORT_FILE.match(filename) or not re.match(r"^[A-Za-z0-9_.-]{1,128}$", report):
        raise Refused(404, "no such report file")
    path = Path(app_state(request).settings.home) / "reports" / report / filename
    if report in (".", "..") or not path.is_file():
        raise Refused(404, "no such report file")
    return FileResponse(path, media_type="image/png")


@router.post("/models/train", include_in_schema=False)
async def train(request: Request) -> RedirectResponse:
    _viewer, form = await action(request)
    model = form.get("model", "")
    if model != AUTO and model not in MODELS:
        known = ", ".join([AUTO, *sorted(MODELS)])
        raise Refused(400, f"unknown model {model!r}; known: {known}")
    try:
        params = json.loads(form.get("params") or "{}")
        if not isinstance(params, dict):
            raise ValueError("params must be a JSON object")
        if model == AUTO and params:
            raise ValueError("model 'auto' chooses its own params; send none")
        if model != AUTO:  # reject bad params now, not in the job
            create_model(model, **params)
    except (ValueError, TypeError, ConfigError) as exc:
        raise Refused(400, f"invalid params for {model!r}: {exc}") from None
    promote = form.get("promote") or None
    if promote is not None and not ALIAS.match(promote):
        raise Refused(400, "an alias is 1-64 letters, digits, '-' or '_'")
    evaluate = form.get("evaluate") == "on"
    state = app_state(request)
    settings = state.settings

    def work() -> dict[str, Any]:
        from recstack.serving.runtime.loader import serving_preparation
        from recstack.workflows.train import train_and_register

        info = train_and_register(
            settings,
            model,
            params,
            evaluate=evaluate,
            promote=promote,
            prepare_serving=serving_preparation(settings),
        )
        return info.to_dict()

    body = {"model": model, "params": params, "evaluate": evaluate, "promote": promote}
    state.jobs.submit("train", body, work)
    return RedirectResponse("/ui/models#jobs", status_code=303)


@router.get("/models/confirm", response_class=HTMLResponse, include_in_schema=False)
def confirm(
    request: Request,
    op: str,
    name: str,
    alias: str = "champion",
    version: int | None = None,
    viewer: Viewer = Depends(page_viewer),
) -> HTMLResponse:
    """The confirmation step of a promotion or rollback (admins only)."""
    if not viewer.is_admin:
        raise Refused(403, "promoting and rolling back need the admin scope")
    if op not in ("promote", "rollback") or not ALIAS.match(alias):
        raise Refused(400, "op must be promote or rollback, with a valid alias")
    if op == "promote" and version is None:
        raise Refused(400, "a promotion needs a version")
    return dashboard(request).render(
        request,
        "confirm.html",
        viewer=viewer,
        page="models",
        op=op,
        name=name,
        alias=alias,
        version=version,
    )


@router.post("/models/promote", response_class=HTMLResponse, include_in_schema=False)
async def promote(request: Request) -> HTMLResponse:
    viewer, form = await action(request)
    return await run_in_threadpool(_move_alias, request, viewer, form, "promote")


@router.post("/models/rollback", response_class=HTMLResponse, include_in_schema=False)
async def rollback(request: Request) -> HTMLResponse:
    viewer, form = await action(request)
    return await run_in_threadpool(_move_alias, request, viewer, form, "rollback")


def _move_alias(request: Request, viewer: Viewer, form: dict[str, str], op: str) -> HTMLResponse:
    from recstack.registry import ModelRegistry

    state = app_state(request)
    name, alias = form.get("name", ""), form.get("alias", "")
    if not name or not ALIAS.match(alias):
        raise Refused(400, "a model name and a valid alias are needed")
    if not registry_configured(state.settings):
        raise Refused(404, "no model is registered yet: train one first")
    registry = ModelRegistry(state.settings)
    try:
        if op == "promote":
            version = int(form.get("version", ""))
            info = registry.promote(name, version, alias)
        else:
            info = registry.rollback(name, alias)
    except ValueError:
        raise Refused(400, "the version must be a number") from None
    except NotFoundError as exc:
        raise Refused(404, str(exc)) from None
    except RecstackError as exc:
        raise Refused(400, str(exc)) from None
    reloaded = apply_alias(state, name, alias)
    return dashboard(request).render(
        request,
        "moved.html",
        viewer=viewer,
        page="models",
        op=op,
        info=info,
        alias=alias,
        reloaded=reloaded,
    )


def apply_alias(state: Any, name: str, alias: str) -> list[str]:
    """Reload what serves ``alias`` of ``name`` here and in every other worker; the slots
    reloaded. The same calls as ``POST /v1/admin/reload`` and ``PUT /v1/admin/slots``."""
    settings = state.settings
    reloaded: list[str] = []
    if not state.loaded:
        return reloaded
    if name == settings.model_name and alias == settings.serving_alias:
        state.reload()
        if state.broadcast is not None:
            state.broadcast.publish("reload")
        reloaded.append(state.engine.primary)
    for slot, ref in list(state.slot_refs.items()):
        if ref == alias and slot != state.engine.primary and name == settings.model_name:
            state.load_slot(slot, ref)
            if state.broadcast is not None:
                state.broadcast.publish("slot", slot=slot, ref=ref)
            reloaded.append(slot)
    return reloaded
