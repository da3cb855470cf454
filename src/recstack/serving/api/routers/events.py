"""Posting interactions: durable first, then live in the engine."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from starlette.concurrency import run_in_threadpool

from recstack.serving.api.auth import WriteScope
from recstack.serving.api.schemas import EventBatch, EventIn, EventsResponse, error_responses
from recstack.serving.runtime.service import post_events

router = APIRouter(prefix="/v1", tags=["events"])


@router.post(
    "/events",
    response_model=EventsResponse,
    responses=error_responses(401, 403, 413, 422, 429, 503),
    summary="Record interactions",
)
async def record_events(
    request: Request,
    body: Annotated[EventIn | EventBatch, Body(description='One event, or {"events": [...]}')],
    _principal: object = WriteScope,
) -> dict:
    """Store events (idempotent by `event_id`) before answering, and apply them at once: the
    user's next recommendations exclude the new items and reflect the new history."""
    # The write runs in the thread pool (it may wait for the database's write lock); the
    # route itself is async so the answer is not sent through a second thread hop.
    events = body.events if isinstance(body, EventBatch) else [body]
    return await run_in_threadpool(post_events, request.app.state.recstack, events)
