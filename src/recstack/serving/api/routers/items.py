"""Reading and upserting catalogue items."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from recstack.errors import NotFoundError
from recstack.serving.api.auth import ReadScope, WriteScope
from recstack.serving.api.schemas import (
    NO_NUL,
    ItemBatch,
    ItemBatchResponse,
    ItemIn,
    ItemOut,
    error_responses,
)
from recstack.serving.runtime.service import upsert_item, upsert_items

router = APIRouter(prefix="/v1", tags=["items"])

ItemId = Annotated[str, Path(min_length=1, max_length=255, pattern=NO_NUL)]


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
    return upsert_item(request.app.state.recstack, item_id, _fields(body))


@router.post(
    "/items/batch",
    response_model=ItemBatchResponse,
    responses=error_responses(
        401,
        403,
        413,
        422,
        429,
        503,
        reasons={422: "An invalid item: nothing is stored; the message names its index."},
    ),
    summary="Create or update many items",
)
async def put_items(request: Request, body: ItemBatch, _principal: object = WriteScope) -> dict:
    """Store up to 10,000 items in one transaction (all or none), then serve them at once, as
    `PUT /v1/items/{item_id}` does for one: loading a catalogue takes a request per 10,000
    items, and the engine's catalogue is rebuilt once per batch, not once per item."""
    entries = [{"item_id": item.item_id, **_fields(item)} for item in body.items]
    records = await run_in_threadpool(upsert_items, request.app.state.recstack, entries)
    item_ids = list(dict.fromkeys(record["item_id"] for record in records))
    return {"upserted": len(item_ids), "item_ids": item_ids}


def _fields(body: ItemIn) -> dict[str, Any]:
    """The fields the client sent (the others keep their stored values); ``active`` is
    always set, true unless given."""
    fields = {name: getattr(body, name) for name in body.model_fields_set if name != "item_id"}
    fields.setdefault("active", body.active)
    return fields
