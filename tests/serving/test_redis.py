"""Redis-backed cache, rate limits and cross-worker coherence, against the real Redis."""

from __future__ import annotations

import time

import pytest
import redis

from recstack.serving.runtime.cache import user_hash

pytestmark = pytest.mark.redis


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def keys(r, pattern: str) -> list[str]:
    return sorted(k.decode() for k in r.scan_iter(pattern, count=1000))


def ids(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def counter(served, name: str) -> float:
    return served.state.metrics.registry.get_sample_value(name) or 0.0


def test_shared_cache_hits_and_is_invalidated_by_events(
    serve, als_model, redis_url, redis_prefix, r
):
    with serve(als_model, redis_url=redis_url, key_prefix=redis_prefix) as s:
        first = s.recommend("u30", k=5)
        second = s.recommend("u30", k=5)
        assert first["items"] == second["items"] and first["request_id"] != second["request_id"]
        assert counter(s, "recstack_cache_hits_total") == 1
        assert counter(s, "recstack_cache_misses_total") == 1
        uh = user_hash("u30")
        assert len(keys(r, f"{redis_prefix}rec:{uh}:*")) == 1
        assert 0 < r.ttl(keys(r, f"{redis_prefix}rec:{uh}:*")[0]) <= s.settings.cache_ttl_seconds
        top = ids(first)[0]
        events = {"user_id": "u30", "item_id": top, "event_type": "view"}
        s.client.post("/v1/events", json=events, headers=s.headers("write"))
        assert int(r.get(f"{redis_prefix}gen:{uh}")) == int(r.get(f"{redis_prefix}clock"))
        third = s.recommend("u30", k=5)
        assert top not in ids(third)
        assert counter(s, "recstack_cache_misses_total") == 2
        # a batch moves every user in it to a fresh generation in one round trip
        batch = {"events": [{"user_id": f"u{n}", "item_id": "i1"} for n in (34, 35, 36)]}
        s.client.post("/v1/events", json=batch, headers=s.headers("write"))
        fresh = [int(r.get(f"{redis_prefix}gen:{user_hash(f'u{n}')}")) for n in (34, 35, 36)]
        assert sorted(fresh) == fresh and len(set(fresh)) == 3
        assert fresh[-1] == int(r.get(f"{redis_prefix}clock"))


def test_purge_deletes_every_redis_key_of_the_user(serve, als_model, redis_url, redis_prefix, r):
    with serve(als_model, redis_url=redis_url, key_prefix=redis_prefix) as s:
        s.recommend("u31", k=5)
        s.client.post(
            "/v1/events", json={"user_id": "u31", "item_id": "i1"}, headers=s.headers("write")
        )
        s.recommend("u31", k=5)
        s.recommend("u31", k=3)
        uh = user_hash("u31")
        assert len(keys(r, f"{redis_prefix}*{uh}*")) >= 3  # generation + cached responses
        assert s.client.delete("/v1/users/u31", headers=s.headers("write")).status_code == 200
        assert keys(r, f"{redis_prefix}*{uh}*") == []
        assert not any(b"u31" in k for k in r.scan_iter(f"{redis_prefix}*"))
        assert s.store.get_user("u31") is None and s.engine.history("u31") == []


def test_rate_limit_counted_in_redis(serve, als_model, redis_url, redis_prefix, r):
    with serve(
        als_model, redis_url=redis_url, key_prefix=redis_prefix, rate_limit_per_minute=4
    ) as s:
        statuses = [s.client.get("/v1/popular", headers=s.headers()).status_code for _ in range(7)]
        if statuses.count(429) < 2:  # the burst straddled a minute boundary
            statuses = [
                s.client.get("/v1/popular", headers=s.headers()).status_code for _ in range(7)
            ]
        assert statuses[:4] == [200] * 4 or statuses.count(429) >= 2
        limited = s.client.get("/v1/popular", headers=s.headers())
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"]["code"] == "rate_limited"
        counters = keys(r, f"{redis_prefix}rl:*")
        assert counters and int(r.get(counters[-1])) >= 5
        assert 0 < r.ttl(counters[-1]) <= 61


def test_two_workers_stay_coherent_through_redis(
    serve, second_worker, als_model, redis_url, redis_prefix
):
    with serve(als_model, redis_url=redis_url, key_prefix=redis_prefix) as a:
        with second_worker(a, als_model, redis_prefix) as (b, engine_b):
            headers = a.headers()
            before = ids(b.get("/v1/users/u32/recommendations?k=10", headers=headers).json())
            a.client.post(
                "/v1/events",
                json={"user_id": "u32", "item_id": before[0]},
                headers=a.headers("write"),
            )
            after = ids(b.get("/v1/users/u32/recommendations?k=10", headers=headers).json())
            assert before[0] not in after  # worker B re-read the user changed by worker A

            put = {"title": "Shared", "attributes": {"genres": ["topic1"]}}
            a.client.put("/v1/items/shared-1", json=put, headers=a.headers("write"))
            a.client.delete("/v1/users/u33", headers=a.headers("write"))
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not (
                engine_b.has_item("shared-1") and engine_b.history("u33") == []
            ):
                time.sleep(0.05)
            assert engine_b.has_item("shared-1")  # broadcast: B applied A's upsert
            assert engine_b.history("u33") == [] and not engine_b.known_to_model("u33")
            similar = b.get("/v1/items/shared-1/similar?k=2", headers=headers)
            assert similar.status_code == 200
