"""Each key is held to the rate limit of its scope, in process and (marked redis) in Redis."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from recstack.serving.runtime import ratelimit
from recstack.serving.runtime.ratelimit import InProcessRateLimiter, scope_limits
from recstack.settings import Settings

LIMITS = {
    "rate_limit_per_minute": 3,
    "rate_limit_write_per_minute": 5,
    "rate_limit_admin_per_minute": 7,
}


@pytest.fixture
def frozen_minute(monkeypatch):
    """Every request in the test falls in one window (no minute boundary mid-burst)."""
    clock = SimpleNamespace(time=lambda: 1_700_000_050.0, monotonic=time.monotonic)
    monkeypatch.setattr(ratelimit, "time", clock)


def burst(served, scope: str, n: int) -> list[int]:
    return [
        served.client.get("/v1/popular", headers=served.headers(scope)).status_code
        for _ in range(n)
    ]


def assert_limited_at(served, scope: str, limit: int) -> None:
    assert burst(served, scope, limit) == [200] * limit
    limited = served.client.get("/v1/popular", headers=served.headers(scope))
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert error["code"] == "rate_limited"
    assert f"rate limit of {limit} requests per minute for {scope} keys" in error["message"]
    assert int(limited.headers["retry-after"]) == 50


def test_settings_default_to_a_read_limit_and_higher_write_and_admin_limits():
    settings = Settings()
    assert scope_limits(settings) == {"read": 6000, "write": 60_000, "admin": 60_000}


def test_in_process_limits_follow_the_key_scope(serve, als_model, frozen_minute):
    with serve(als_model, **LIMITS) as s:
        assert_limited_at(s, "read", 3)
        assert_limited_at(s, "write", 5)  # the same route, a write key: the write limit
        assert_limited_at(s, "admin", 7)


def test_auth_off_callers_get_the_admin_limit_per_address(serve, als_model, frozen_minute):
    with serve(als_model, auth_enabled=False, **LIMITS) as s:
        statuses = [s.client.get("/v1/popular").status_code for _ in range(8)]
        assert statuses == [200] * 7 + [429]


def test_the_limiter_counts_each_key_against_the_limit_it_is_given(frozen_minute):
    limiter = InProcessRateLimiter(2)
    assert [limiter.hit("a").allowed for _ in range(3)] == [True, True, False]
    assert [limiter.hit("b", 4).allowed for _ in range(5)] == [True] * 4 + [False]
    decision = limiter.hit("b", 4)
    assert (decision.limit, decision.remaining, decision.retry_after) == (4, 0, 50)


@pytest.mark.redis
def test_redis_limits_follow_the_key_scope(
    serve, als_model, redis_url, redis_prefix, frozen_minute
):
    import redis

    with serve(als_model, redis_url=redis_url, key_prefix=redis_prefix, **LIMITS) as s:
        assert_limited_at(s, "read", 3)
        assert_limited_at(s, "write", 5)
        client = redis.Redis.from_url(redis_url)
        try:
            window = 1_700_000_050 // ratelimit.WINDOW_SECONDS
            counts = {
                key.decode(): int(client.get(key))
                for key in client.scan_iter(f"{redis_prefix}rl:*:{window}")
            }
        finally:
            client.close()
        assert sorted(counts.values()) == [4, 6]  # one counter per key, its limit + the 429
