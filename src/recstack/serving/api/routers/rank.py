"""Scores of the caller's own candidate items for a user: ``POST /v1/users/{user_id}/rank``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from recstack.serving.api.auth import ReadScope
from recstack.serving.api.errors import ApiError, request_id_of
from recstack.serving.api.schemas import ModelRef, RecommendedItem, error_responses
from recstack.serving.engine.rank import MAX_RANK_ITEMS, rank_items
from recstack.serving.runtime.keys import Principal
from recstack.serving.runtime.service import ensure_items, fresh_user

router = APIRouter(prefix="/v1", tags=["recommendations"])


class RankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        min_length=1,
        max_length=MAX_RANK_ITEMS,
        description=f"Ids of the items to score, 1 to {MAX_RANK_ITEMS} (none or more: 422).",
    )
    context: dict[str, str | int | float | bool] | None = Field(
        None, description="Request context (device, page, ...); rerankers may use it."
    )
    explain: bool = Field(False, description="Add reasons and the reranker's top features.")


class FeatureContribution(BaseModel):
    feature: str
    contribution: float = Field(description="Its share of the score (LightGBM pred_contrib).")


class RankedItem(RecommendedItem):
    features: list[FeatureContribution] | None = None


class RankResponse(BaseModel):
    user_id: str
    items: list[RankedItem] = Field(description="The known items, best first.")
    unknown: list[str] = Field(description="Requested ids the catalogue does not have.")
    unscored: list[str] = Field(description="Catalogue items the served model cannot score.")
    source: str = Field(description="`model`, or `popularity` for a user the model cannot use.")
    model: ModelRef
    request_id: str


@router.post(
    "/users/{user_id}/rank",
    response_model=RankResponse,
    responses=error_responses(401, 403, 404, 422, 429, 503),
    summary="Score the given items for a user, best first",
)
def rank(
    request: Request,
    body: RankRequest,
    user_id: Annotated[str, Path(min_length=1, max_length=255)],
    slot: Annotated[
        str | None,
        Query(min_length=1, max_length=255, description="Model slot (admin keys only)."),
    ] = None,
    principal: Principal = ReadScope,
) -> dict[str, Any]:
    """For teams that bring their own candidates: the served model (its reranker, for a
    two-stage model) scores exactly these items from the user's live history."""
    state = request.app.state.recstack
    if slot is not None and not principal.allows("admin"):
        raise ApiError(403, "choosing a model slot needs a key with scope 'admin'")
    engine = state.engine
    missing = [i for i in dict.fromkeys(body.items) if not engine.has_item(i)]
    if missing:
        ensure_items(state, engine, missing)
    fresh_user(state, user_id)
    result = rank_items(
        engine, user_id, body.items, context=body.context, slot=slot, explain=body.explain
    )
    items = []
    for item in result.items:
        out: dict[str, Any] = {"item_id": item.item_id, "score": item.score, "title": item.title}
        if body.explain:
            out["explanation"] = item.explanation or []
            out["features"] = result.features.get(item.item_id)
        items.append(out)
    return {
        "user_id": user_id,
        "items": items,
        "unknown": result.unknown,
        "unscored": result.unscored,
        "source": result.source,
        "model": engine.slot_info(slot).as_dict(),
        "request_id": request_id_of(request),
    }
