"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from recstack.serving.api.auth import ReadScope
from recstack.serving.api.schemas import Health, Readiness, error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> dict:
    """200 whenever the process serves HTTP (no auth)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready, with reasons"}},
    summary="Readiness",
)
def readyz(request: Request) -> JSONResponse:
    """200 when a model is loaded and the store answers; 503 listing the reasons otherwise
    (e.g. no registered model: the server then serves popularity). No auth."""
    state = request.app.state.recstack
    ready, reasons = state.readiness()
    model = state.engine.model_info.as_dict() if state.loaded else None
    body = {"ready": ready, "model": model, "reasons": reasons}
    return JSONResponse(body, status_code=200 if ready else 503)


def metrics_router(public: bool) -> APIRouter:
    """The /metrics route, open to any scraper when ``public`` (``settings.metrics_public``),
    else behind a read key; built per app so its OpenAPI entry says which."""
    metrics_routes = APIRouter(tags=["health"])
    if public:
        responses: dict[int | str, dict[str, Any]] = {}
        dependencies = []
        description = "Prometheus text format; no key (`metrics_public = true`)."
    else:
        responses = error_responses(401, 403, 429)
        dependencies = [ReadScope]
        description = (
            "Prometheus text format; needs a read key (`metrics_public = false`): scrape with "
            "`authorization: Bearer <key>`."
        )
    metrics_routes.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}, **responses},
        dependencies=dependencies,
        summary="Prometheus metrics",
        description=description,
    )
    return metrics_routes


def metrics(request: Request) -> Response:
    state = request.app.state.recstack
    return Response(state.metrics.render(), media_type=state.metrics.content_type)
