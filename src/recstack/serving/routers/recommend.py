"""Recommendations for a user (GET with query parameters, POST with a JSON body) and popular items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request

from recstack.serving.auth import ReadScope
from recstack.serving.errors import request_id_of
from recstack.serving.filters import parse_filter
from recstack.serving.schemas import (
    FILTER_DOC,
    MAX_K,
    PopularResponse,
    RecommendationRequest,
    RecommendationResponse,
    error_responses,
)
from recstack.serving.service import recommendations

router = APIRouter(prefix="/v1", tags=["recommendations"])

UserId = Annotated[str, Path(min_length=1, max_length=255, description="External user id.")]
K = Annotated[int, Query(ge=1, le=MAX_K, description="How many items to return.")]
FilterText = Annotated[
    str | None, Query(max_length=10_000, description=f"URL-encoded JSON. {FILTER_DOC}")
]
ERRORS = error_responses(401, 403, 413, 422, 429, 503)


@router.get(
    "/users/{user_id}/recommendations",
    response_model=RecommendationResponse,
    responses=ERRORS,
    summary="Recommend items to a user",
)
def get_recommendations(
    request: Request,
    user_id: UserId,
    k: K = 10,
    exclude_seen: Annotated[bool, Query(description="Leave out items already seen.")] = True,
    filter: FilterText = None,
    exclude: Annotated[
        list[str], Query(max_length=1000, description="Item ids never to return (repeatable).")
    ] = [],  # noqa: B006 - FastAPI copies defaults
    explain: Annotated[bool, Query(description="Attach the history items behind each pick.")] = False,
    _principal: object = ReadScope,
) -> dict:
    """Top-k items for the user. Unknown users get popular items with `cold_start: true`."""
    req = RecommendationRequest(
        k=k, exclude_seen=exclude_seen, exclude=exclude, filter=parse_filter(filter), explain=explain
    )
    return recommendations(request.app.state.recstack, user_id, req, request_id_of(request))


@router.post(
    "/users/{user_id}/recommendations",
    response_model=RecommendationResponse,
    responses=ERRORS,
    summary="Recommend items to a user (options in the body)",
)
def post_recommendations(
    request: Request,
    user_id: UserId,
    body: Annotated[RecommendationRequest, Body()] = RecommendationRequest(),  # noqa: B008
    _principal: object = ReadScope,
) -> dict:
    """Like the GET form, with `filter` and `exclude` as JSON."""
    return recommendations(request.app.state.recstack, user_id, body, request_id_of(request))


@router.get("/popular", response_model=PopularResponse, responses=ERRORS, summary="Popular items")
def popular(
    request: Request,
    k: K = 10,
    filter: FilterText = None,
    _principal: object = ReadScope,
) -> dict:
    """The items the most distinct users interacted with (live), filtered."""
    engine = request.app.state.recstack.engine
    items = engine.popular(k, parse_filter(filter))
    return {
        "items": [{"item_id": i.item_id, "score": i.score, "title": i.title} for i in items],
        "request_id": request_id_of(request),
    }
