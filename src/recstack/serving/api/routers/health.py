"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

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


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401, 403, 429)},
    summary="Prometheus metrics",
)
def metrics(request: Request, _principal: object = ReadScope) -> Response:
    """Prometheus text format; needs a read key (scrape with `authorization: Bearer <key>`)."""
    state = request.app.state.recstack
    return Response(state.metrics.render(), media_type=state.metrics.content_type)
