"""API keys, JWTs and scopes: who may call which route, and how often.

A key travels as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. With a JWKS
configured (``jwt_jwks_path`` / ``jwt_jwks_url``) a JWT bearer token (RS256/ES256) is accepted
too, its role claim mapped to a scope (``recstack.serving.runtime.tokens``); an expired, wrongly
signed or wrong-audience token is a 401. Scopes are ordered
``read < write < admin``: admin keys may do everything, write keys also read. Keys are stored
hashed by the store; verified keys are remembered in process for ``KEY_CACHE_SECONDS`` (keyed
by the key's hash), so the hot path does not query the database per request — a revoked key
stops working within that time. Rejected keys are remembered for a shorter time so a client
retrying a bad key cannot hammer the database either.

Missing key -> 401, unknown or revoked key -> 401, key with too small a scope -> 403, over the
rate limit of the key's scope (``rate_limit_per_minute`` for read keys,
``rate_limit_write_per_minute``, ``rate_limit_admin_per_minute``) -> 429 with ``Retry-After``.
The check runs on the event loop (no thread hop): it is a dict lookup and a counter, touching
the database only when the key cache misses. With ``auth_enabled=False`` every caller is an
admin and the admin limit applies per client address.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.datastructures import Headers

from recstack.serving.api.errors import ApiError
from recstack.serving.runtime.keys import SCOPE_RANK, Principal
from recstack.serving.runtime.ratelimit import scope_limits

# The two ways to present a key, as OpenAPI security schemes (alternatives: either one).
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "HTTPBearer": {
        "type": "http",
        "description": "`Authorization: Bearer <api key or JWT>`",
        "scheme": "bearer",
    },
    "APIKeyHeader": {
        "type": "apiKey",
        "description": "The API key.",
        "in": "header",
        "name": "X-API-Key",
    },
}
SECURITY_REQUIREMENT: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]


def presented_key(headers: Headers) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key`` (bearer wins).

    Read straight from the headers with the rules of FastAPI's ``HTTPBearer`` and
    ``APIKeyHeader`` (``auto_error=False``): letting FastAPI solve those two as sub-dependencies
    cost more per request than the rest of the check.
    """
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and credentials:
            return credentials
    return headers.get("x-api-key") or None


def authorize(request: Request, scope: str) -> Principal:
    """The caller of ``request`` if their key has at least ``scope`` and they are under the
    rate limit; raises ``ApiError`` 401/403/429 otherwise. With auth off every caller is an
    admin identified by their address."""
    state = request.app.state.recstack
    if not state.settings.auth_enabled:
        host = request.client.host if request.client else "unknown"
        principal = Principal(f"addr:{host}", "admin")
    else:
        key = presented_key(request.headers)
        if key is None:
            raise ApiError(
                401,
                "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        found = state.principal(key)
        if found is None:
            raise ApiError(
                401,
                "invalid or revoked API key, or invalid, expired or unmapped token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = found
        if not principal.allows(scope):
            raise ApiError(
                403,
                f"this route needs a key with scope '{scope}'; yours has '{principal.scope}'",
            )
    limit = scope_limits(state.settings).get(principal.scope, state.limiter.limit)
    decision = state.limiter.hit(principal.id, limit)
    if not decision.allowed:
        raise ApiError(
            429,
            f"rate limit of {decision.limit} requests per minute for {principal.scope} keys "
            f"exceeded; retry in {decision.retry_after} s",
            headers={"Retry-After": str(decision.retry_after)},
        )
    request.state.principal = principal
    return principal


def require(scope: str) -> Any:
    """A FastAPI dependency admitting callers whose key has at least ``scope`` (``authorize``).

    The routes using it are documented as needing a key by ``document_security``.
    """
    if scope not in SCOPE_RANK:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(request: Request) -> Principal:
        return authorize(request, scope)

    dependency.__name__ = f"require_{scope}"
    dependency.required_scope = scope  # type: ignore[attr-defined] - read by document_security
    return dependency


def needs_key(route: APIRoute) -> bool:
    """Whether one of the route's dependencies (at any depth) is a ``require`` check."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if getattr(dependant.call, "required_scope", None) is not None:
            return True
        pending.extend(dependant.dependencies)
    return False


def document_security(router: APIRouter) -> None:
    """Mark the router's key-protected operations with the security schemes in OpenAPI.

    Call before the router is included; ``security_schemes_openapi`` adds the schemes
    themselves to the schema's components.
    """
    for route in router.routes:
        if isinstance(route, APIRoute) and needs_key(route):
            extra = dict(route.openapi_extra or {})
            extra["security"] = SECURITY_REQUIREMENT
            route.openapi_extra = extra


def security_schemes_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` list ``SECURITY_SCHEMES`` under ``components.securitySchemes``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {})
            components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


ReadScope = Depends(require("read"))
WriteScope = Depends(require("write"))
AdminScope = Depends(require("admin"))
