"""Recommendation response cache and per-user generations, in process or in Redis.

Every change to a user (posted events, purge) moves their *generation* to a fresh value taken
from one global counter. Cached responses are keyed by (user, generation, request variant), so
a change makes every older entry unreachable at once — in every worker, since with Redis the
counter is shared — and stale entries simply expire (``cache_ttl_seconds``). A response
computed before a change is stored under the old generation and never served afterwards.

Generations also tell a worker that *another* worker changed a user: an engine remembers the
counter value it was built at and the generation it last synced per user, and re-reads the
user's history from the store when they differ (see ``AppState``).

Keys (``key_prefix`` first, user ids hashed so no id appears in Redis)::

    {prefix}clock                      global change counter
    {prefix}gen:{user_hash}            the user's generation
    {prefix}rec:{user_hash}:{gen}:{v}  a cached response body (JSON), with a TTL
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from recstack.serving.runtime.generations import (
    GENERATIONS_FILE,
    LocalGenerations,
    SharedGenerations,
)

GENERATION_SCRIPT = """
local clock = redis.call('INCR', KEYS[1])
local previous = redis.call('GET', KEYS[2]) or '0'
redis.call('SET', KEYS[2], clock)
return {tonumber(previous), clock}
"""

LOOKUP_SCRIPT = """
local gen = redis.call('GET', KEYS[1]) or '0'
local body = false
if ARGV[2] ~= '' then
  body = redis.call('GET', ARGV[1] .. gen .. ':' .. ARGV[2])
end
return {tonumber(gen), body}
"""


def user_hash(user_id: str) -> str:
    """The short hash that stands for a user id in cache keys."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:24]


def variant_key(*parts: Any) -> str:
    """A short hash of request parameters (the cache variant)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class ResponseCache(Protocol):
    """What the server needs from a cache; ``InProcessCache`` and ``RedisCache`` provide it."""

    ttl: int

    def clock(self) -> int: ...
    def lookup(self, user_id: str, variant: str | None) -> tuple[int, dict[str, Any] | None]: ...
    def store(self, user_id: str, generation: int, variant: str, body: dict[str, Any]) -> None: ...
    def invalidate(self, user_id: str) -> tuple[int, int]: ...
    def invalidate_many(self, user_ids: list[str]) -> list[tuple[int, int]]: ...
    def purge(self, user_id: str) -> None: ...


class InProcessCache:
    """The cache for one process: dicts under a lock, entries expire after ``ttl`` seconds.

    Generations are this process's (``LocalGenerations``) or, for the workers of one host
    without Redis, a ``SharedGenerations`` file, so that changes reach every worker.
    """

    def __init__(
        self,
        ttl: int = 60,
        max_entries: int = 100_000,
        generations: LocalGenerations | SharedGenerations | None = None,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._generations = generations if generations is not None else LocalGenerations()
        self._entries: dict[tuple[str, int, str], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def clock(self) -> int:
        return self._generations.clock()

    def lookup(self, user_id: str, variant: str | None) -> tuple[int, dict[str, Any] | None]:
        """``(generation, cached body or None)``; ``variant=None`` only reads the generation."""
        uh = user_hash(user_id)
        generation = self._generations.get(uh)
        if variant is None or self.ttl <= 0:
            return generation, None
        hit = self._entries.get((uh, generation, variant))
        if hit is None or hit[0] < time.monotonic():
            return generation, None
        return generation, hit[1]

    def store(self, user_id: str, generation: int, variant: str, body: dict[str, Any]) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._evict()
            self._entries[(user_hash(user_id), generation, variant)] = (
                time.monotonic() + self.ttl,
                body,
            )

    def invalidate(self, user_id: str) -> tuple[int, int]:
        """Move the user to a new generation; returns ``(previous, new)``."""
        return self.invalidate_many([user_id])[0]

    def invalidate_many(self, user_ids: list[str]) -> list[tuple[int, int]]:
        """``invalidate`` for many users under one lock acquisition."""
        hashes = [user_hash(user_id) for user_id in user_ids]
        with self._lock:
            return self._generations.bump(hashes)

    def purge(self, user_id: str) -> None:
        """Forget the user entirely: generation and every cached response."""
        uh = user_hash(user_id)
        with self._lock:
            self._generations.drop(uh)
            self._entries = {k: v for k, v in self._entries.items() if k[0] != uh}

    def keys_for(self, user_id: str) -> list[tuple[str, int, str]]:
        uh = user_hash(user_id)
        return [k for k in self._entries if k[0] == uh] + (
            [(uh, self._generations.get(uh), "")] if self._generations.holds(uh) else []
        )

    def _evict(self) -> None:
        now = time.monotonic()
        self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
        if len(self._entries) >= self.max_entries:
            oldest = sorted(self._entries.items(), key=lambda kv: kv[1][0])
            self._entries = dict(oldest[len(oldest) // 2 :])


class RedisCache:
    """The shared cache in Redis: one round trip per lookup, a Lua script per change."""

    def __init__(self, url: str, ttl: int = 60, key_prefix: str = "recstack:") -> None:
        import redis

        self.ttl = ttl
        self.prefix = key_prefix
        self.client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._generation = self.client.register_script(GENERATION_SCRIPT)
        self._lookup = self.client.register_script(LOOKUP_SCRIPT)

    def _gen_key(self, uh: str) -> str:
        return f"{self.prefix}gen:{uh}"

    def _entry_base(self, uh: str) -> str:
        return f"{self.prefix}rec:{uh}:"

    def clock(self) -> int:
        return int(self.client.get(f"{self.prefix}clock") or 0)

    def lookup(self, user_id: str, variant: str | None) -> tuple[int, dict[str, Any] | None]:
        uh = user_hash(user_id)
        wanted = variant if (variant is not None and self.ttl > 0) else ""
        generation, body = self._lookup(
            keys=[self._gen_key(uh)], args=[self._entry_base(uh), wanted]
        )
        return int(generation), (json.loads(body) if body else None)

    def store(self, user_id: str, generation: int, variant: str, body: dict[str, Any]) -> None:
        if self.ttl <= 0:
            return
        key = f"{self._entry_base(user_hash(user_id))}{generation}:{variant}"
        self.client.set(key, json.dumps(body, separators=(",", ":")), ex=self.ttl)

    def invalidate(self, user_id: str) -> tuple[int, int]:
        uh = user_hash(user_id)
        previous, new = self._generation(keys=[f"{self.prefix}clock", self._gen_key(uh)])
        return int(previous), int(new)

    def invalidate_many(self, user_ids: list[str]) -> list[tuple[int, int]]:
        """``invalidate`` for many users in one round trip (a pipeline of the script)."""
        pipe = self.client.pipeline(transaction=False)
        clock = f"{self.prefix}clock"
        for user_id in user_ids:
            self._generation(keys=[clock, self._gen_key(user_hash(user_id))], client=pipe)
        return [(int(previous), int(new)) for previous, new in pipe.execute()]

    def purge(self, user_id: str) -> None:
        uh = user_hash(user_id)
        keys = [self._gen_key(uh), *self.client.scan_iter(f"{self._entry_base(uh)}*", count=500)]
        self.client.delete(*keys)

    def keys_for(self, user_id: str) -> list[str]:
        """Every Redis key that concerns the user (to verify a purge)."""
        uh = user_hash(user_id)
        return [k.decode() for k in self.client.scan_iter(f"{self.prefix}*{uh}*", count=1000)]

    def close(self) -> None:
        self.client.close()


def make_cache(
    redis_url: str | None,
    ttl: int,
    key_prefix: str = "recstack:",
    worker_state_dir: Path | None = None,
) -> ResponseCache:
    """Redis-backed when ``redis_url`` is set, else in-process (with generations shared
    through ``worker_state_dir`` when the host's workers were given one)."""
    if redis_url:
        return RedisCache(redis_url, ttl, key_prefix)
    shared = None
    if worker_state_dir is not None:
        shared = SharedGenerations(Path(worker_state_dir) / GENERATIONS_FILE)
    return InProcessCache(ttl, generations=shared)
