"""Verified API keys, remembered briefly so the hot path does not query the store per request.

Verified keys are kept for ``KEY_CACHE_SECONDS`` (keyed by the key's hash): a revoked key stops
working within that time. Rejected keys are kept for a shorter time so a client retrying a bad
key cannot hammer the database either.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SCOPE_RANK: dict[str, int] = {"read": 0, "write": 1, "admin": 2}
KEY_CACHE_SECONDS = 5.0
REJECTED_CACHE_SECONDS = 1.0


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
