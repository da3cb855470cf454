"""Semantic search over item text, optionally personalised."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from recstack.serving.api.auth import ReadScope
from recstack.serving.api.errors import request_id_of
from recstack.serving.api.schemas import MAX_K, SearchResponse, error_responses, scored_items
from recstack.serving.runtime.arms import record, route
from recstack.serving.runtime.service import fresh_user

router = APIRouter(prefix="/v1", tags=["search"])


@router.get(
    "/search",
    response_model=SearchResponse,
    responses=error_responses(401, 403, 422, 429, 503),
    summary="Search items by meaning",
)
def search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=1000, description="Free-text query.")],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    user_id: Annotated[
        str | None,
        Query(min_length=1, max_length=255, description="Re-rank for this user's taste."),
    ] = None,
    _principal: object = ReadScope,
) -> dict:
    """Items whose text is closest to `q` (content model); 503 when no content model is loaded.
    A user in an experiment is re-ranked by their arm's model."""
    state = request.app.state.recstack
    if user_id is not None:
        fresh_user(state, user_id)
    engine = state.engine
    assignment, slot = route(state, user_id, None)
    items, personalised = engine.search(q, k, user_id, slot=slot)
    content = engine.content_info or engine.model_info
    body = {
        "query": q,
        "user_id": user_id,
        "items": scored_items(items),
        "model": content.as_dict(),
        "personalised": personalised,
        "request_id": request_id_of(request),
    }
    return record(state, body, "search", user_id, assignment)
