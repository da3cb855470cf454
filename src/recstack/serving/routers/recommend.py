"""Recommendations for a user (GET with query parameters, POST with a JSON body) and popular items."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from recstack.serving.auth import SECURITY_REQUIREMENT, ReadScope, authorize
from recstack.serving.errors import request_id_of
from recstack.serving.filters import parse_filter
from recstack.serving.schemas import (
    FILTER_DOC,
    MAX_FILTER_LENGTH,
    MAX_ID_LENGTH,
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
    return rendered(await _serve(request, user_id, options))


class RecommendationsEndpoint:
    """The recommendations path as a plain ASGI app, put ahead of FastAPI's routes.

    GET, the hottest route, reads only the request (key, path, query) and returns a ready
    response, so FastAPI's per-request routing, dependency and serialisation machinery only
    cost it time (a fifth of its throughput). POST goes on to FastAPI's route. The
    ``APIRoute``s stay for the OpenAPI schema; errors still reach the app's handlers.
    """

    def __init__(self, post: APIRoute) -> None:
        self.post = post
        self.route = Route(post.path, self, methods=["GET", "POST"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # the route template the metrics label responses with
        if scope["method"] == "POST":
            await self.post.handle(scope, receive, send)
            return
        response = await get_recommendations(Request(scope, receive, send))
        await response(scope, receive, send)


def plain_routes() -> list[Route]:
    """``RecommendationsEndpoint`` as a route for the app to place before FastAPI's."""
    path = router.prefix + "/users/{user_id}/recommendations"
    post = next(
        r
        for r in router.routes
        if isinstance(r, APIRoute) and r.path == path and "POST" in r.methods
    )
    return [RecommendationsEndpoint(post).route]


def rendered(body: dict[str, Any]) -> Response:
    """``body`` as ``RecommendationResponse`` JSON.

    Without explanations the service builds the body from plain strings, floats and bools in
    the model's field order, so it is dumped directly: FastAPI validating it against the model
    again cost more than the ANN search. Explanations, or a value orjson does not take as
    plain JSON (a numpy scalar), go through the model's own validation and serialisation;
    both write NaN as null.
    """
    content = None
    if all(item["explanation"] is None for item in body["items"]):
        try:
            content = orjson.dumps(body)
        except TypeError:
            content = None
    if content is None:
        content = RecommendationResponse.model_validate(body).model_dump_json().encode()
    return Response(content, media_type="application/json")


def recommendation_options(request: Request) -> tuple[str, RecommendationRequest]:
    """The GET form's user id and options, validated like FastAPI parameters (422 on errors).

    The usual query (``k``, ``exclude_seen``, ``filter`` in their plain forms) is read
    directly; anything else goes through ``RecommendationQuery``'s validation.
    """
    user_id = request.path_params["user_id"]
    params = request.query_params
    raw: dict[str, Any] = {name: params[name] for name in QUERY_FIELDS if name in params}
    excluded = params.getlist("exclude")
    if excluded:
        raw["exclude"] = excluded
    query = _plain_query(raw) if 0 < len(user_id) <= MAX_ID_LENGTH else None
    if query is None:
        query = _validated_query(user_id, raw)
    return user_id, RecommendationRequest.model_construct(
        k=query.k,
        exclude_seen=query.exclude_seen,
        exclude=query.exclude,
        filter=parse_filter(query.filter),
        explain=query.explain,
    )


_PLAIN_BOOLS = {"true": True, "false": False, "1": True, "0": False}


def _plain_query(raw: dict[str, Any]) -> RecommendationQuery | None:
    """``raw`` as a query when every value has a form whose meaning is beyond doubt (digits
    without a leading zero, true/false/1/0, a filter within its length), else None."""
    if "exclude" in raw:
        return None
    k_text = raw.get("k", "10")
    if not (k_text.isascii() and k_text.isdigit() and k_text[0] != "0"):
        return None
    k = int(k_text)
    exclude_seen = _PLAIN_BOOLS.get(raw.get("exclude_seen", "true"))
    explain = _PLAIN_BOOLS.get(raw.get("explain", "false"))
    text = raw.get("filter")
    if k > MAX_K or exclude_seen is None or explain is None:
        return None
    if text is not None and len(text) > MAX_FILTER_LENGTH:
        return None
    return RecommendationQuery.model_construct(
        k=k, exclude_seen=exclude_seen, filter=text, exclude=[], explain=explain
    )


def _validated_query(user_id: str, raw: dict[str, Any]) -> RecommendationQuery:
    errors: list[Any] = []
    try:
        USER_ID.validate_python(user_id)
    except ValidationError as exc:
        errors += [{**e, "loc": ("path", "user_id")} for e in exc.errors(include_url=False)]
    query = None
    try:
        query = RecommendationQuery.model_validate(raw)
    except ValidationError as exc:
        errors += [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
    if errors or query is None:
        raise RequestValidationError(errors)
    return query


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
