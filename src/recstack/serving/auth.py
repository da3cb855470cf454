"""API keys and scopes: who may call which route, and how often.

A key travels as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Scopes are ordered
``read < write < admin``: admin keys may do everything, write keys also read. Keys are stored
hashed by the store; verified keys are remembered in process for ``KEY_CACHE_SECONDS`` (keyed
by the key's hash), so the hot path does not query the database per request — a revoked key
stops working within that time. Rejected keys are remembered for a shorter time so a client
retrying a bad key cannot hammer the database either.

Missing key -> 401, unknown or revoked key -> 401, key with too small a scope -> 403, over the
rate limit -> 429 with ``Retry-After``. The check runs on the event loop (no thread hop): it is
a dict lookup and a counter, touching the database only when the key cache misses. With ``auth_enabled=False`` every caller is an admin
and rate limits apply per client address.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from recstack.serving.errors import ApiError

SCOPE_RANK: dict[str, int] = {"read": 0, "write": 1, "admin": 2}
KEY_CACHE_SECONDS = 5.0
REJECTED_CACHE_SECONDS = 1.0

bearer_scheme = HTTPBearer(auto_error=False, description="`Authorization: Bearer <api key>`")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key.")


@dataclass(frozen=True)
class Principal:
    """The caller: the key's public prefix (or client address), its scope and name."""

    id: str
    scope: str
    name: str = ""

    def allows(self, scope: str) -> bool:
        return SCOPE_RANK.get(self.scope, -1) >= SCOPE_RANK[scope]


class KeyVerifier:
    """Checks keys through ``verify`` (the store) with a small TTL cache in front."""

    def __init__(
        self,
        verify: Callable[[str], dict[str, Any] | None],
        ttl: float = KEY_CACHE_SECONDS,
        rejected_ttl: float = REJECTED_CACHE_SECONDS,
        max_entries: int = 10_000,
    ) -> None:
        self._verify = verify
        self.ttl = ttl
        self.rejected_ttl = rejected_ttl
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def principal(self, key: str) -> Principal | None:
        """The key's principal, or None if it is unknown or revoked."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        record = self._verify(key)
        found = None
        if record is not None:
            found = Principal(
                str(record["prefix"]), str(record["scope"]), str(record.get("name") or "")
            )
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache = {d: v for d, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= self.max_entries:
                    self._cache.clear()
            self._cache[digest] = (now + (self.ttl if found else self.rejected_ttl), found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


def presented_key(
    bearer: HTTPAuthorizationCredentials | None, header_key: str | None
) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-API-Key`` (bearer wins)."""
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return header_key or None


def require(scope: str) -> Any:
    """A FastAPI dependency admitting callers whose key has at least ``scope``."""
    if scope not in SCOPE_RANK:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
        header_key: str | None = Depends(api_key_scheme),
    ) -> Principal:
        state = request.app.state.recstack
        if not state.settings.auth_enabled:
            host = request.client.host if request.client else "unknown"
            principal = Principal(f"addr:{host}", "admin")
        else:
            key = presented_key(bearer, header_key)
            if key is None:
                raise ApiError(
                    401,
                    "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            found = state.verifier.principal(key)
            if found is None:
                raise ApiError(
                    401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
                )
            principal = found
            if not principal.allows(scope):
                raise ApiError(
                    403,
                    f"this route needs a key with scope '{scope}'; yours has '{principal.scope}'",
                )
        decision = state.limiter.hit(principal.id)
        if not decision.allowed:
            raise ApiError(
                429,
                f"rate limit of {state.limiter.limit} requests per minute exceeded; "
                f"retry in {decision.retry_after} s",
                headers={"Retry-After": str(decision.retry_after)},
            )
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


ReadScope = Depends(require("read"))
WriteScope = Depends(require("write"))
AdminScope = Depends(require("admin"))
