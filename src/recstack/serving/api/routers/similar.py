"""Items similar to an item."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from recstack.errors import NotFoundError
from recstack.serving.api.auth import ReadScope
from recstack.serving.api.errors import ApiError, request_id_of
from recstack.serving.api.schemas import MAX_K, SimilarResponse, error_responses, scored_items
from recstack.serving.runtime.arms import record, route
from recstack.serving.runtime.keys import Principal
from recstack.serving.runtime.service import ensure_items

router = APIRouter(prefix="/v1", tags=["items"])
UserQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=255, description="Serve by this user's experiment arm."),
]
SlotQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=255, description="Model slot (admin keys only)."),
]


@router.get(
    "/items/{item_id}/similar",
    response_model=SimilarResponse,
    responses=error_responses(401, 403, 404, 422, 429, 503),
    summary="Items similar to an item",
)
def similar_items(
    request: Request,
    item_id: Annotated[str, Path(min_length=1, max_length=255)],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    slot: SlotQuery = None,
    user_id: UserQuery = None,
    principal: Principal = ReadScope,
) -> dict:
    """Nearest items by the served model; items it never saw use the content model. With
    `user_id`, a user in an experiment is served by their arm's model."""
    state = request.app.state.recstack
    if slot is not None and not principal.allows("admin"):
        raise ApiError(403, "choosing a model slot needs a key with scope 'admin'")
    engine = state.engine
    if not engine.has_item(item_id) and ensure_items(state, engine, [item_id]):
        raise NotFoundError(f"unknown item {item_id!r}")
    assignment, slot = route(state, user_id, slot)
    info = engine.slot_info(slot)
    items, source = engine.similar(item_id, k, slot=slot)
    body = {
        "item_id": item_id,
        "items": scored_items(items),
        "model": info.as_dict(),
        "source": source,
        "request_id": request_id_of(request),
    }
    return record(state, body, "similar", user_id, assignment)
