"""Recommendations for a user (GET with query parameters, POST with a JSON body) and popular items.

Both forms of the recommendations route are served by one plain ASGI endpoint placed ahead of
FastAPI's router: the hottest route reads only the request (key, path, options through the one
parser in ``params``) and returns ready JSON, so FastAPI's per-request dependency solving and
response validation, which cost more than the recommendation itself, are skipped. The two
``APIRoute``s below stay for the OpenAPI schema, generated from the same table of fields.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from recstack.serving.api.auth import SECURITY_REQUIREMENT, ReadScope, authorize
from recstack.serving.api.errors import ApiError, request_id_of
from recstack.serving.api.middleware import note_served_by
from recstack.serving.api.params import (
    body_schema,
    filter_from_query,
    filter_query_parameter,
    parse_options,
    query_options,
    query_parameters,
)
from recstack.serving.api.schemas import (
    MAX_ID_LENGTH,
    MAX_K,
    PopularResponse,
    RecommendationResponse,
    error_responses,
    scored_items,
)
from recstack.serving.engine.request import RecommendationRequest
from recstack.serving.runtime.arms import recommend_for
from recstack.serving.runtime.batching import batcher_of

router = APIRouter(prefix="/v1", tags=["recommendations"])

PATH = "/users/{user_id}/recommendations"
K = Annotated[int, Query(ge=1, le=MAX_K, description="How many items to return.")]
FILTER_422 = (
    "Invalid options, or a filter naming an attribute no catalogue item has (or a numeric "
    "range on an attribute without numbers): the message names it."
)
BODY_422 = f"{FILTER_422} In a body, `k` written with a fraction (`5.0`) is refused too."
ERRORS = error_responses(401, 403, 404, 413, 422, 429, 503, reasons={422: FILTER_422})
BODY_ERRORS = error_responses(401, 403, 404, 413, 422, 429, 503, reasons={422: BODY_422})
USER_ID_PARAMETER = {
    "name": "user_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
    "description": "External user id.",
}


@router.get(
    PATH,
    response_model=RecommendationResponse,
    responses=ERRORS,
    summary="Recommend items to a user",
    openapi_extra={
        "parameters": [USER_ID_PARAMETER, *query_parameters()],
        "security": SECURITY_REQUIREMENT,
    },
)
async def get_recommendations(request: Request) -> Response:
    """Top-k items for the user. Unknown users get popular items with `cold_start: true`."""
    return await serve_recommendations(request)


@router.post(
    PATH,
    response_model=RecommendationResponse,
    responses=BODY_ERRORS,
    summary="Recommend items to a user (options in the body)",
    openapi_extra={
        "parameters": [USER_ID_PARAMETER],
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": body_schema()}},
        },
        "security": SECURITY_REQUIREMENT,
    },
)
async def post_recommendations(request: Request) -> Response:
    """Like the GET form, with `filter` as a JSON object and `exclude` as a list."""
    return await serve_recommendations(request)


async def serve_recommendations(request: Request) -> Response:
    """Key check first, then the path and the options (422 naming every bad one), then the
    list from the requested slot."""
    principal = authorize(request, "read")
    user_id = request.path_params["user_id"]
    errors = []
    if not 0 < len(user_id) <= MAX_ID_LENGTH:
        message = f"String should have 1 to {MAX_ID_LENGTH} characters"
        errors.append({"loc": ("path", "user_id"), "msg": message, "type": "string_too_long"})
    try:
        options = await _options(request)
    except RequestValidationError as exc:
        raise RequestValidationError([*errors, *exc.errors()]) from None
    if errors:
        raise RequestValidationError(errors)
    if options.slot is not None and not principal.allows("admin"):
        raise ApiError(403, "choosing a model slot needs a key with scope 'admin'")
    return rendered(await _serve(request, user_id, options))


async def _options(request: Request) -> RecommendationRequest:
    if request.method == "GET":
        return query_options(request.scope["query_string"], lambda: request.query_params)
    raw = await request.body()
    if not raw.strip():
        return parse_options({}, "body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = {"loc": ("body",), "msg": "JSON decode error", "type": "json_invalid"}
        raise RequestValidationError([{**error, "ctx": {"error": str(exc)}}]) from None
    if not isinstance(body, dict):
        error = {"loc": ("body",), "msg": "Input should be a JSON object", "type": "dict_type"}
        raise RequestValidationError([error])
    return parse_options(body, "body")


class RecommendationsEndpoint:
    """The recommendations path as a plain ASGI app, ahead of FastAPI's routes."""

    def __init__(self) -> None:
        self.route = Route(router.prefix + PATH, self, methods=["GET", "POST"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # the route template the metrics label responses with
        response = await serve_recommendations(Request(scope, receive, send))
        await response(scope, receive, send)


def plain_routes() -> list[Route]:
    """``RecommendationsEndpoint`` as a route for the app to place before FastAPI's."""
    return [RecommendationsEndpoint().route]


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


async def _serve(request: Request, user_id: str, req: RecommendationRequest) -> dict:
    """Compute on the event loop when everything is in memory: the usual request is about a
    millisecond of numpy, cheaper than a hop to the thread pool. With Redis (a network round
    trip per request) or explanations (a solve per item) the work goes to the thread pool, so
    a slow call never stalls the other requests of this worker. A model that scores users
    faster together (``two_stage``) scores the requests of one loop turn in one call
    (``runtime.batching``)."""
    state, request_id = request.app.state.recstack, request_id_of(request)
    if req.explain or state.settings.redis_url:
        body = await run_in_threadpool(recommend_for, state, user_id, req, request_id)
    else:
        batcher = batcher_of(state)
        if batcher.takes(req):  # score with the requests that arrived with this one
            await batcher.turn(user_id, req)
        body = recommend_for(state, user_id, req, request_id)
    note_served_by(request, body)
    return body


@router.get(
    "/popular",
    response_model=PopularResponse,
    responses=error_responses(401, 403, 422, 429, 503, reasons={422: FILTER_422}),
    summary="Popular items",
    openapi_extra={"parameters": [filter_query_parameter()]},
)
async def popular(request: Request, k: K = 10, _principal: object = ReadScope) -> dict:
    """The items the most distinct users interacted with (live), filtered (`filter` as in
    recommendations)."""
    engine = request.app.state.recstack.engine
    items = engine.popular(k, filter_from_query(request.query_params))
    return {
        "items": scored_items(items),
        "request_id": request_id_of(request),
    }
