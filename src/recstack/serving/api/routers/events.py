"""Posting interactions: durable first, then live in the engine.

Like the recommendations route, the path is served by a plain ASGI endpoint ahead of FastAPI's
router: the body goes from bytes through orjson and ``event_body`` (strict JSON types) to the
runtime as tuples, with no per-event model objects. The ``APIRoute`` documents it.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from recstack.serving.api.auth import WriteScope, authorize
from recstack.serving.api.event_body import event_tuples, recommendation_ids
from recstack.serving.api.schemas import EventBatch, EventIn, EventsResponse, error_responses
from recstack.serving.runtime.outcomes import post_attributed_events

router = APIRouter(prefix="/v1", tags=["events"])
PATH = "/events"


@router.post(
    PATH,
    response_model=EventsResponse,
    responses=error_responses(401, 403, 413, 422, 429, 503),
    summary="Record interactions",
)
async def record_events(
    request: Request,
    body: Annotated[EventIn | EventBatch, Body(description='One event, or {"events": [...]}')],
    _principal: object = WriteScope,
) -> Response:
    """Store events (idempotent by `event_id`) before answering, and apply them at once: the
    user's next recommendations exclude the new items and reflect the new history. An event
    for an item the catalogue lacks, or naming a `recommendation_id` never served, is refused
    (422) and nothing of the batch is stored."""
    return await serve_events(request)


async def serve_events(request: Request) -> Response:
    """Key check, then the body, then the write (in the thread pool: it may wait for the
    database's write lock)."""
    authorize(request, "write")
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = {"loc": ("body",), "msg": "JSON decode error", "type": "json_invalid"}
        raise RequestValidationError([{**error, "ctx": {"error": str(exc)}}]) from None
    events = event_tuples(body)
    refs = recommendation_ids(body)
    state = request.app.state.recstack
    result = await run_in_threadpool(post_attributed_events, state, events, refs)
    return Response(orjson.dumps(result), media_type="application/json")


class EventsEndpoint:
    """``POST /v1/events`` as a plain ASGI app, ahead of FastAPI's routes."""

    def __init__(self) -> None:
        self.route = Route(router.prefix + PATH, self, methods=["POST"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # the route template the metrics label responses with
        response = await serve_events(Request(scope, receive, send))
        await response(scope, receive, send)


def plain_routes() -> list[Route]:
    return [EventsEndpoint().route]
