"""One error body for every failure the API returns, and the handlers that produce it.

Every 4xx/5xx response has the shape ``{"error": {"code", "message", "request_id"}}`` —
including FastAPI's own 404/405/422 answers, which are overridden here — so clients parse
one thing. Validation problems (bad types, malformed JSON, out-of-range values) are 422.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from recstack.errors import (
    ConfigError,
    ConflictError,
    DataError,
    InvalidRequestError,
    NotFoundError,
    RecstackError,
    TooLargeError,
    UnavailableError,
)

log = logging.getLogger("recstack.serving")

STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error with an HTTP status, a stable machine code and a message for people."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or STATUS_CODES.get(status, "error")
        self.message = message
        self.headers = headers


def request_id_of(request: Request) -> str:
    """The id the request middleware gave this request (empty if it never ran)."""
    return str(getattr(request.state, "request_id", "") or request.scope.get("request_id", ""))


def error_body(code: str, message: str, request_id: str) -> dict[str, Any]:
    """The one error shape: ``{"error": {"code", "message", "request_id"}}``."""
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def error_response(
    request: Request,
    status: int,
    message: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSONResponse carrying the error body for ``request``."""
    body = error_body(code or STATUS_CODES.get(status, "error"), message, request_id_of(request))
    return JSONResponse(body, status_code=status, headers=headers)


def describe_validation(errors: list[Any] | tuple[Any, ...], limit: int = 3) -> str:
    """Pydantic/FastAPI validation errors as one readable sentence naming each field."""
    parts: list[str] = []
    for err in list(errors)[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        msg = err.get("msg", "invalid value")
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "")
            parts.append(f"malformed JSON body{': ' + detail if detail else ''}")
            continue
        parts.append(f"{loc}: {msg}")
    more = len(errors) - limit
    if more > 0:
        parts.append(f"and {more} more problem(s)")
    return "; ".join(parts) or "invalid request"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(request, exc.status, exc.message, exc.code, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 400 and exc.detail == "There was an error parsing the body":
        # e.g. a body that is not UTF-8: malformed JSON like any other, so 422 as well
        return error_response(request, 422, "malformed JSON body: it is not valid UTF-8 JSON")
    if status == 404 and exc.detail == "Not Found":
        message = f"no route for {request.method} {request.url.path}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
        headers = {**(getattr(exc, "headers", None) or {}), "Allow": allowed_methods(request)}
        return error_response(request, status, message, headers=headers)
    else:
        message = str(exc.detail)
    return error_response(request, status, message, headers=getattr(exc, "headers", None))


def allowed_methods(request: Request) -> str:
    """Every method some route serves on this path (Starlette lists only one route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET", "type": "http"})
        route_methods = getattr(route, "methods", None)
        if match != Match.NONE and route_methods:
            methods |= set(route_methods)
    return ", ".join(sorted(methods))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 422, describe_validation(exc.errors()))


async def _recstack_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, NotFoundError):
        return error_response(request, 404, str(exc))
    if isinstance(exc, InvalidRequestError | DataError | ConfigError):
        return error_response(request, 422, str(exc))
    if isinstance(exc, TooLargeError):
        return error_response(request, 413, str(exc))
    if isinstance(exc, ConflictError):
        return error_response(request, 409, str(exc))
    if isinstance(exc, UnavailableError):
        return error_response(request, 503, str(exc))
    log.exception("unhandled recstack error on %s %s", request.method, request.url.path)
    return error_response(request, 500, str(exc))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "internal server error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error FastAPI/Starlette can raise through the one error body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RecstackError, _recstack_error)
    app.add_exception_handler(Exception, _unexpected_error)
