"""Reading and upserting catalogue items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from recstack.errors import NotFoundError
from recstack.serving.api.auth import ReadScope, WriteScope
from recstack.serving.api.schemas import ItemIn, ItemOut, error_responses
from recstack.serving.runtime.service import upsert_item

router = APIRouter(prefix="/v1", tags=["items"])

ItemId = Annotated[str, Path(min_length=1, max_length=255)]


@router.get(
    "/items/{item_id}",
    response_model=ItemOut,
    responses=error_responses(401, 403, 404, 429, 503),
    summary="An item",
)
def get_item(request: Request, item_id: ItemId, _principal: object = ReadScope) -> dict:
    state = request.app.state.recstack
    record = state.store.get_item(item_id) if state.store is not None else None
    if record is None:
        raise NotFoundError(f"unknown item {item_id!r}")
    return record


@router.put(
    "/items/{item_id}",
    response_model=ItemOut,
    responses=error_responses(401, 403, 413, 422, 429, 503),
    summary="Create or update an item",
)
def put_item(
    request: Request, item_id: ItemId, body: ItemIn, _principal: object = WriteScope
) -> dict:
    """Store the item, then serve it at once: a new item is recommendable, similar-able and
    searchable immediately (through the content model when one is loaded). Fields left out
    keep their stored values."""
    fields = {name: getattr(body, name) for name in body.model_fields_set}
    fields.setdefault("active", body.active)
    return upsert_item(request.app.state.recstack, item_id, fields)
