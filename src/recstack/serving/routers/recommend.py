"""Recommendations for a user (GET with query parameters, POST with a JSON body) and popular items."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from recstack.serving.auth import SECURITY_REQUIREMENT, ReadScope, authorize
from recstack.serving.errors import request_id_of
from recstack.serving.filters import parse_filter
from recstack.serving.schemas import (
    FILTER_DOC,
    MAX_K,
    Identifier,
    PopularResponse,
    RecommendationQuery,
    RecommendationRequest,
    RecommendationResponse,
    error_responses,
    query_parameters,
)
from recstack.serving.service import recommendations

router = APIRouter(prefix="/v1", tags=["recommendations"])

UserId = Annotated[str, Path(min_length=1, max_length=255, description="External user id.")]
K = Annotated[int, Query(ge=1, le=MAX_K, description="How many items to return.")]
FilterText = Annotated[
    str | None, Query(max_length=10_000, description=f"URL-encoded JSON. {FILTER_DOC}")
]
ERRORS = error_responses(401, 403, 413, 422, 429, 503)
QUERY_FIELDS = ("k", "exclude_seen", "filter", "explain")
USER_ID = TypeAdapter(Identifier)
USER_ID_PARAMETER = {
    "name": "user_id",
    "in": "path",
    "required": True,
    "schema": {**USER_ID.json_schema(), "description": "External user id.", "title": "User Id"},
    "description": "External user id.",
}


@router.get(
    "/users/{user_id}/recommendations",
    response_model=RecommendationResponse,
    responses=ERRORS,
    summary="Recommend items to a user",
    openapi_extra={
        "parameters": [USER_ID_PARAMETER, *query_parameters(RecommendationQuery)],
        "security": SECURITY_REQUIREMENT,
    },
)
async def get_recommendations(request: Request) -> dict:
    """Top-k items for the user. Unknown users get popular items with `cold_start: true`."""
    # The hottest route takes only the request: FastAPI's per-parameter extraction and
    # sub-dependency solving cost more than the recommendation. The key check, the path
    # parameter and the query (one RecommendationQuery model) are validated here with the
    # same rules, order (key first) and 422 errors, and openapi_extra documents them.
    authorize(request, "read")
    user_id, options = recommendation_options(request)
    return await _serve(request, user_id, options)


def recommendation_options(request: Request) -> tuple[str, RecommendationRequest]:
    """The GET form's user id and options, validated like FastAPI parameters (422 on errors)."""
    errors: list[Any] = []
    user_id = request.path_params["user_id"]
    try:
        USER_ID.validate_python(user_id)
    except ValidationError as exc:
        errors += [{**e, "loc": ("path", "user_id")} for e in exc.errors(include_url=False)]
    params = request.query_params
    raw: dict[str, object] = {name: params[name] for name in QUERY_FIELDS if name in params}
    excluded = params.getlist("exclude")
    if excluded:
        raw["exclude"] = excluded
    try:
        query = RecommendationQuery.model_validate(raw)
    except ValidationError as exc:
        errors += [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
    if errors:
        raise RequestValidationError(errors)
    return user_id, RecommendationRequest.model_construct(
        k=query.k,
        exclude_seen=query.exclude_seen,
        exclude=query.exclude,
        filter=parse_filter(query.filter),
        explain=query.explain,
    )


@router.post(
    "/users/{user_id}/recommendations",
    response_model=RecommendationResponse,
    responses=ERRORS,
    summary="Recommend items to a user (options in the body)",
)
async def post_recommendations(
    request: Request,
    user_id: UserId,
    body: Annotated[RecommendationRequest, Body()] = RecommendationRequest(),  # noqa: B008
    _principal: object = ReadScope,
) -> dict:
    """Like the GET form, with `filter` and `exclude` as JSON."""
    return await _serve(request, user_id, body)


async def _serve(request: Request, user_id: str, req: RecommendationRequest) -> dict:
    """Compute on the event loop when everything is in memory: the usual request is about a
    millisecond of numpy, cheaper than a hop to the thread pool. With Redis (a network round
    trip per request) or explanations (a solve per item) the work goes to the thread pool, so
    a slow call never stalls the other requests of this worker."""
    state, request_id = request.app.state.recstack, request_id_of(request)
    if req.explain or state.settings.redis_url:
        return await run_in_threadpool(recommendations, state, user_id, req, request_id)
    return recommendations(state, user_id, req, request_id)


@router.get("/popular", response_model=PopularResponse, responses=ERRORS, summary="Popular items")
async def popular(
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
