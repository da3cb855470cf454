"""Per-key request limits: a fixed one-minute window, counted in process or in Redis.

Each API key (or client address when auth is off) may make a number of requests per calendar
minute set by the key's scope (``scope_limits``): a write key loading a catalogue or posting
event batches needs far more than a reader. Each key counts on its own and one key has one
scope, so the caller passes that scope's limit with each hit. Over the limit the server answers
429 with ``Retry-After`` = seconds to the next window. With Redis the counters are shared by every worker and replica (``INCR`` + ``EXPIRE``
in one pipeline); in process each worker counts on its own. If Redis cannot be reached the
limiter lets requests through and logs a warning rather than failing every request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from recstack.settings import Settings

WINDOW_SECONDS = 60

log = logging.getLogger("recstack.serving")


@dataclass(frozen=True)
class Decision:
    """Whether a request may proceed, when to retry if not, and the limit it was held to."""

    allowed: bool
    remaining: int
    retry_after: int
    limit: int


class RateLimiter(Protocol):
    limit: int

    def hit(self, key: str, limit: int | None = None) -> Decision: ...


def scope_limits(settings: Settings) -> dict[str, int]:
    """Requests per minute allowed to one key of each scope."""
    return {
        "read": settings.rate_limit_per_minute,
        "write": settings.rate_limit_write_per_minute,
        "admin": settings.rate_limit_admin_per_minute,
    }


def _window(now: float) -> tuple[int, int]:
    """The current window number and the whole seconds until the next one (at least 1)."""
    window = int(now // WINDOW_SECONDS)
    retry = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
    return window, retry


class InProcessRateLimiter:
    """Fixed-window counters in a dict (one process); ``limit`` applies when a hit names none."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._window = -1
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int | None = None) -> Decision:
        """Count a request of ``key`` against ``limit`` (default: ``self.limit``)."""
        limit = self.limit if limit is None else limit
        window, retry = _window(time.time())
        with self._lock:
            if window != self._window:
                self._counts.clear()
                self._window = window
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
        return Decision(count <= limit, max(0, limit - count), retry, limit)


class RedisRateLimiter:
    """Fixed-window counters in Redis, shared by all workers (keys expire with the window)."""

    def __init__(self, url: str, limit: int, key_prefix: str = "recstack:") -> None:
        import redis

        self.limit = limit
        self.prefix = key_prefix
        self.client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._last_warning = 0.0

    def hit(self, key: str, limit: int | None = None) -> Decision:
        """Count a request of ``key`` against ``limit`` (default: ``self.limit``); if Redis is
        unreachable the request is let through (fail open)."""
        limit = self.limit if limit is None else limit
        window, retry = _window(time.time())
        name = f"{self.prefix}rl:{key}:{window}"
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, WINDOW_SECONDS + 1)
        try:
            count = int(pipe.execute()[0])
        except Exception:  # noqa: BLE001 - a Redis outage must not take the API down with it
            now = time.monotonic()
            if now - self._last_warning > 10:
                log.warning("rate limiting skipped: Redis is unreachable", exc_info=True)
                self._last_warning = now
            return Decision(True, limit, retry, limit)
        return Decision(count <= limit, max(0, limit - count), retry, limit)

    def close(self) -> None:
        self.client.close()


def make_rate_limiter(
    redis_url: str | None, limit: int, key_prefix: str = "recstack:"
) -> RateLimiter:
    """Redis-backed when ``redis_url`` is set, else in-process."""
    if redis_url:
        return RedisRateLimiter(redis_url, limit, key_prefix)
    return InProcessRateLimiter(limit)
