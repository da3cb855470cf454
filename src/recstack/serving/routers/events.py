"""Posting interactions: durable first, then live in the engine."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request

from recstack.serving.auth import WriteScope
from recstack.serving.schemas import EventBatch, EventIn, EventsResponse, error_responses
from recstack.serving.service import post_events

router = APIRouter(prefix="/v1", tags=["events"])


@router.post(
    "/events",
    response_model=EventsResponse,
    responses=error_responses(401, 403, 413, 422, 429, 503),
    summary="Record interactions",
)
def record_events(
    request: Request,
    body: Annotated[EventIn | EventBatch, Body(description='One event, or {"events": [...]}')],
    _principal: object = WriteScope,
) -> dict:
    """Store events (idempotent by `event_id`) before answering, and apply them at once: the
    user's next recommendations exclude the new items and reflect the new history."""
    events = body.events if isinstance(body, EventBatch) else [body]
    return post_events(request.app.state.recstack, events)
