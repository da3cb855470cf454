"""Items similar to an item."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from recstack.errors import NotFoundError
from recstack.serving.auth import ReadScope
from recstack.serving.errors import request_id_of
from recstack.serving.schemas import MAX_K, SimilarResponse, error_responses
from recstack.serving.service import ensure_items

router = APIRouter(prefix="/v1", tags=["items"])


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
    _principal: object = ReadScope,
) -> dict:
    """Nearest items by the served model; items it never saw use the content model."""
    state = request.app.state.recstack
    engine = state.engine
    if not engine.has_item(item_id) and ensure_items(state, engine, [item_id]):
        raise NotFoundError(f"unknown item {item_id!r}")
    items, source = state.engine.similar(item_id, k)
    return {
        "item_id": item_id,
        "items": [{"item_id": i.item_id, "score": i.score, "title": i.title} for i in items],
        "model": engine.model_info.as_dict(),
        "source": source,
        "request_id": request_id_of(request),
    }
