"""Admin routes: background training, job status, hot reload, registered models."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from recstack.errors import NotFoundError
from recstack.models.catalog import MODELS, create_model
from recstack.serving.api.auth import AdminScope
from recstack.serving.api.errors import ApiError
from recstack.serving.api.schemas import (
    JobOut,
    ModelsResponse,
    ReloadResponse,
    SlotIn,
    SlotOut,
    TrainRequest,
    error_responses,
)
from recstack.serving.runtime.loader import registry_configured

router = APIRouter(prefix="/v1/admin", tags=["admin"])
SlotName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Slot name.")
]
ERRORS = error_responses(401, 403, 404, 422, 429, 503)


@router.post(
    "/train", status_code=202, response_model=JobOut, responses=ERRORS, summary="Train a model"
)
def train(request: Request, body: TrainRequest, _principal: object = AdminScope) -> dict:
    """Queue a training job (snapshot, optional holdout evaluation, fit, register, alias).

    Returns at once with the job; poll `GET /v1/admin/jobs/{id}`, then `POST /v1/admin/reload`
    to serve a version promoted to the serving alias."""
    from recstack.workflows.auto import AUTO  # training code: a worker need not import it

    if body.model != AUTO and body.model not in MODELS:
        known = ", ".join([AUTO, *MODELS])
        raise ApiError(422, f"unknown model {body.model!r}; known: {known}")
    if body.model == AUTO and body.params:
        raise ApiError(422, "model 'auto' chooses its own params; send none")
    try:
        if body.model != AUTO:  # reject bad params now, not in the job
            create_model(body.model, **(body.params or {}))
    except (ValueError, TypeError) as exc:
        raise ApiError(422, f"invalid params for {body.model!r}: {exc}") from None
    state = request.app.state.recstack
    settings = state.settings

    def work() -> dict[str, Any]:
        from recstack.serving.runtime.loader import serving_preparation
        from recstack.workflows.train import train_and_register

        info = train_and_register(
            settings,
            body.model,
            body.params,
            evaluate=body.evaluate,
            promote=body.promote,
            name=body.registered_name,
            prepare_serving=serving_preparation(settings),
        )
        return info.to_dict()

    job = state.jobs.submit("train", body.model_dump(), work)
    return job.as_dict()


@router.get("/jobs/{job_id}", response_model=JobOut, responses=ERRORS, summary="A job's status")
def job_status(
    request: Request,
    job_id: Annotated[str, Path(min_length=1, max_length=64)],
    _principal: object = AdminScope,
) -> dict:
    job = request.app.state.recstack.jobs.get(job_id)
    if job is None:
        raise NotFoundError(f"unknown job {job_id!r}")
    return job.as_dict()


@router.post(
    "/reload", response_model=ReloadResponse, responses=ERRORS, summary="Hot-swap the model"
)
def reload(request: Request, _principal: object = AdminScope) -> dict:
    """Load the version the serving alias points at and a fresh store snapshot into a new
    engine, then swap it in atomically; requests keep being served throughout."""
    state = request.app.state.recstack
    start = time.perf_counter()
    previous, slot = state.reload()
    if state.broadcast is not None:
        state.broadcast.publish("reload")
    engine = slot.engine
    fallback = {"name": "none", "version": None, "registered_name": None}
    return {
        "model": engine.model_info.as_dict(),
        "previous": previous.as_dict() if previous is not None else fallback,
        "seconds": round(time.perf_counter() - start, 3),
        "items": engine.n_items,
        "users": engine.histories.n_users,
    }


@router.get("/models", response_model=ModelsResponse, responses=ERRORS, summary="Model versions")
def models(request: Request, _principal: object = AdminScope) -> dict:
    """Every registered version, marking the one this worker serves."""
    state = request.app.state.recstack
    engine = state.engine
    loaded = engine.model_info
    versions: list[dict[str, Any]] = []
    if registry_configured(state.settings):
        from recstack.registry import ModelRegistry

        for info in ModelRegistry(state.settings).list_versions():
            versions.append(
                {
                    "name": info.name,
                    "version": info.version,
                    "run_id": info.run_id,
                    "aliases": list(info.aliases),
                    "metrics": {k: float(v) for k, v in (info.metrics or {}).items()},
                    "created_at": str(info.created_at) if info.created_at else None,
                    "loaded": info.name == loaded.registered_name
                    and info.version == loaded.version,
                }
            )
    content = engine.content_info.as_dict() if engine.content_info is not None else None
    return {
        "loaded": loaded.as_dict(),
        "content": content,
        "slots": state.slots(),
        "versions": versions,
    }


@router.put("/slots/{slot}", response_model=SlotOut, responses=ERRORS, summary="Load a model slot")
def load_slot(
    request: Request,
    slot: SlotName,
    body: SlotIn | None = None,
    _principal: object = AdminScope,
) -> dict:
    """Serve a registered model from a named slot beside the others (`?slot=` on the
    recommendation routes picks it); loading or replacing one slot leaves the others serving.
    Every worker loads it. `ref` is an alias, a version or `NAME:VERSION`, or `precomputed:SET`
    for a list set in the store (404 when there is none); default: the slot's name as an alias."""
    state = request.app.state.recstack
    ref = body.ref if body is not None else None
    state.load_slot(slot, ref)
    if state.broadcast is not None:
        state.broadcast.publish("slot", slot=slot, ref=state.slot_refs.get(slot))
    return next(s for s in state.slots() if s["name"] == slot)


@router.delete("/slots/{slot}", status_code=204, responses=ERRORS, summary="Unload a model slot")
def unload_slot(request: Request, slot: SlotName, _principal: object = AdminScope) -> Response:
    """Stop serving an extra slot in every worker (the serving alias's slot stays)."""
    state = request.app.state.recstack
    state.unload_slot(slot)
    if state.broadcast is not None:
        state.broadcast.publish("unslot", slot=slot)
    return Response(status_code=204)
