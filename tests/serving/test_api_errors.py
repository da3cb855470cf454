"""Every bad request gets a clear 4xx with the one error body; keys and limits are enforced."""

from __future__ import annotations

import json
import time

import pytest


def assert_error(response, status: int, code: str, *fragments: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "request_id"}
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]
    for fragment in fragments:
        assert fragment in error["message"], error["message"]
    return error


@pytest.fixture
def served(serve, als_model):
    with serve(als_model, rate_limit_per_minute=10_000) as s:
        yield s


def test_validation_errors_have_the_error_body(served):
    c, h = served.client, served.headers()
    assert_error(c.get("/v1/users/u1/recommendations?k=0", headers=h), 422, "validation_error", "k")
    assert_error(
        c.get("/v1/users/u1/recommendations?k=5000", headers=h), 422, "validation_error", "k"
    )
    assert_error(c.get("/v1/users/u1/recommendations?k=ten", headers=h), 422, "validation_error")
    assert_error(
        c.post("/v1/users/u1/recommendations", json={"k": "many"}, headers=h),
        422,
        "validation_error",
    )
    assert_error(
        c.post("/v1/users/u1/recommendations", json={"k": 5, "bogus": 1}, headers=h),
        422,
        "validation_error",
        "bogus",
    )
    assert_error(
        c.post(
            "/v1/users/u1/recommendations",
            content=b'{"k": 5,',
            headers={**h, "content-type": "application/json"},
        ),
        422,
        "validation_error",
        "malformed JSON",
    )


def test_unknown_filter_attribute_is_named(served):
    c, h = served.client, served.headers()
    bad = json.dumps({"genre": {"in": ["topic1"]}})
    error = assert_error(
        c.get("/v1/users/u1/recommendations", params={"filter": bad}, headers=h),
        422,
        "validation_error",
        "'genre'",
    )
    assert "genres" in error["message"]  # the known attributes are listed
    assert_error(
        c.post("/v1/users/u1/recommendations", json={"filter": {"colour": "red"}}, headers=h),
        422,
        "validation_error",
        "'colour'",
    )
    assert_error(
        c.get("/v1/users/u1/recommendations", params={"filter": "{not json"}, headers=h),
        422,
        "validation_error",
        "not valid JSON",
    )
    assert_error(
        c.get("/v1/popular", params={"filter": '{"difficulty": {"between": [1, 2]}}'}, headers=h),
        422,
        "validation_error",
        "between",
    )


def test_not_found_and_method_not_allowed(served):
    c, h = served.client, served.headers()
    assert_error(
        c.get("/v1/items/no-such-item/similar", headers=h), 404, "not_found", "no-such-item"
    )
    assert_error(c.get("/v1/items/no-such-item", headers=h), 404, "not_found")
    assert_error(c.get("/v1/nowhere", headers=h), 404, "not_found", "/v1/nowhere")
    assert_error(c.patch("/v1/events", headers=h), 405, "method_not_allowed")


def test_unknown_user_is_a_cold_start_not_an_error(served):
    body = served.recommend("never-seen-user", k=7)
    assert body["cold_start"] is True
    assert len(body["items"]) == 7
    popular = served.client.get("/v1/popular?k=7", headers=served.headers()).json()["items"]
    assert [i["item_id"] for i in body["items"]] == [i["item_id"] for i in popular]


def test_events_validation(served):
    c, h = served.client, served.headers("write")
    error = assert_error(
        c.post("/v1/events", json={"user_id": "u1", "item_id": "ghost-item"}, headers=h),
        422,
        "validation_error",
        "ghost-item",
    )
    assert "PUT /v1/items" in error["message"]
    assert_error(
        c.post("/v1/events", json={"user_id": "u1", "item_id": "i1", "value": "high"}, headers=h),
        422,
        "validation_error",
        "value",
    )
    assert_error(
        c.post("/v1/events", json={"item_id": "i1"}, headers=h), 422, "validation_error", "user_id"
    )
    assert_error(
        c.post(
            "/v1/events",
            json={"user_id": "u1", "item_id": "i1", "timestamp": "yesterday"},
            headers=h,
        ),
        422,
        "validation_error",
        "timestamp",
    )
    too_many = {"events": [{"user_id": "u1", "item_id": "i1"}] * 10_001}
    assert_error(c.post("/v1/events", json=too_many, headers=h), 413, "payload_too_large", "10000")
    assert served.store.get_user("u1")["n_events"] == 15  # nothing was stored


def test_auth_missing_wrong_and_underscoped_keys(served):
    c = served.client
    assert_error(c.get("/v1/users/u1/recommendations"), 401, "unauthorized", "missing API key")
    assert_error(
        c.get("/v1/users/u1/recommendations", headers={"Authorization": "Bearer rs_nope_nope"}),
        401,
        "unauthorized",
        "invalid",
    )
    assert_error(c.get("/v1/popular", headers={"X-API-Key": "garbage"}), 401, "unauthorized")
    ok = c.get("/v1/popular", headers={"X-API-Key": served.keys["read"]})
    assert ok.status_code == 200
    assert_error(
        c.post("/v1/admin/reload", headers=served.headers("read")), 403, "forbidden", "admin"
    )
    assert_error(c.get("/v1/admin/models", headers=served.headers("write")), 403, "forbidden")
    assert_error(
        c.post(
            "/v1/events", json={"user_id": "u1", "item_id": "i1"}, headers=served.headers("read")
        ),
        403,
        "forbidden",
        "write",
    )
    assert_error(c.delete("/v1/users/u1", headers=served.headers("read")), 403, "forbidden")
    # admin implies write implies read
    assert c.get("/v1/popular", headers=served.headers("admin")).status_code == 200
    # health, readiness and the schema need no key
    assert c.get("/healthz").status_code == 200
    assert c.get("/readyz").status_code == 200
    assert c.get("/openapi.json").status_code == 200


def test_revoked_key_stops_working_after_the_cache_ttl(served):
    c = served.client
    key, record = served.store.create_api_key("read", "short-lived")
    headers = {"X-API-Key": key}
    assert c.get("/v1/popular", headers=headers).status_code == 200
    served.store.revoke_api_key(record["prefix"])
    served.state.verifier.ttl = 0.0  # what the TTL bounds: the next check goes to the store
    served.state.verifier.clear()
    assert_error(c.get("/v1/popular", headers=headers), 401, "unauthorized")


def test_request_body_limit(serve, als_model):
    with serve(als_model, max_request_bytes=2048) as s:
        big = {"events": [{"user_id": "u1", "item_id": "i1", "event_type": "view"}] * 100}
        assert_error(
            s.client.post("/v1/events", json=big, headers=s.headers("write")),
            413,
            "payload_too_large",
            "2048",
        )

        def chunks():
            yield b'{"events": ['
            for _ in range(200):
                yield b'{"user_id": "u1", "item_id": "i1"},'
            yield b'{"user_id": "u1", "item_id": "i1"}]}'

        streamed = s.client.post(
            "/v1/events",
            content=chunks(),
            headers={**s.headers("write"), "content-type": "application/json"},
        )
        assert_error(streamed, 413, "payload_too_large")
        assert s.store.get_user("u1")["n_events"] == 15


def test_in_process_rate_limit_gives_429_with_retry_after(serve, als_model):
    with serve(als_model, rate_limit_per_minute=5) as s:
        statuses = []
        for _ in range(8):
            response = s.client.get("/v1/popular", headers=s.headers())
            statuses.append(response.status_code)
        if statuses.count(429) < 3:  # a minute boundary fell inside the burst: try again
            time.sleep(0.1)
            statuses = [
                s.client.get("/v1/popular", headers=s.headers()).status_code for _ in range(8)
            ]
        assert statuses.count(429) >= 3
        limited = s.client.get("/v1/popular", headers=s.headers())
        error = assert_error(limited, 429, "rate_limited", "5 requests per minute")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # the limit is per key: another key still gets through
        assert s.client.get("/v1/popular", headers=s.headers("admin")).status_code == 200
        assert error["request_id"]


def test_auth_can_be_switched_off(serve, als_model):
    with serve(als_model, auth_enabled=False) as s:
        assert s.client.get("/v1/users/u1/recommendations").status_code == 200
        assert s.client.get("/v1/admin/models").status_code == 200


def test_cors_origins_are_allowed_when_configured(serve, als_model):
    with serve(als_model, cors_origins=["https://shop.example"]) as s:
        preflight = s.client.options(
            "/v1/popular",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
        response = s.client.get(
            "/v1/popular", headers={**s.headers(), "Origin": "https://shop.example"}
        )
        assert response.headers["access-control-allow-origin"] == "https://shop.example"
        other = s.client.get(
            "/v1/popular", headers={**s.headers(), "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
