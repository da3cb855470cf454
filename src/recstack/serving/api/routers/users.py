"""Reading a user and erasing one (GDPR)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path, Query, Request

from recstack.errors import NotFoundError
from recstack.serving.api.auth import ReadScope, WriteScope
from recstack.serving.api.schemas import UserDeleted, UserOut, error_responses
from recstack.serving.runtime.service import purge_user

router = APIRouter(prefix="/v1", tags=["users"])

UserId = Annotated[str, Path(min_length=1, max_length=255)]


@router.get(
    "/users/{user_id}",
    response_model=UserOut,
    responses=error_responses(401, 403, 404, 422, 429, 503),
    summary="A user and their recent history",
)
def get_user(
    request: Request,
    user_id: UserId,
    limit: Annotated[int, Query(ge=0, le=1000, description="Events of history to show.")] = 50,
    _principal: object = ReadScope,
) -> dict:
    state = request.app.state.recstack
    record = state.store.get_user(user_id) if state.store is not None else None
    if record is None:
        raise NotFoundError(f"unknown user {user_id!r}")
    events = state.store.user_history(user_id, limit=limit)
    history = [
        {
            "event_id": row.event_id,
            "item_id": row.item_id,
            "event_type": row.event_type,
            "value": None if np.isnan(row.value) else float(row.value),
            "timestamp": int(row.timestamp),
        }
        for row in events.itertuples(index=False)
    ]
    return {
        "user_id": record["user_id"],
        "attributes": record.get("attributes") or {},
        "n_events": int(record.get("n_events", len(history))),
        "known_to_model": state.engine.known_to_model(user_id),
        "history": history,
    }


@router.delete(
    "/users/{user_id}",
    response_model=UserDeleted,
    responses=error_responses(401, 403, 404, 429, 503),
    summary="Erase a user (GDPR)",
)
def delete_user(request: Request, user_id: UserId, _principal: object = WriteScope) -> dict:
    """Delete every event and trace of the user: store rows, in-memory history and cached
    responses (in every worker when Redis is configured)."""
    deleted = purge_user(request.app.state.recstack, user_id)
    return {"user_id": user_id, "events_deleted": deleted}
