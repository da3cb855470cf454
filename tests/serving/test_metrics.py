"""/metrics exposes the named Prometheus series with the right labels and counts."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(found: dict, series: str, **labels: str) -> float:
    return found.get((series, frozenset(labels.items())), 0.0)


def test_metrics_series(serve, als_model):
    with serve(als_model) as s:
        h = s.headers()
        for _ in range(3):
            s.recommend("u40", k=5)
        s.client.get("/v1/items/missing/similar", headers=h)
        s.client.get("/v1/not-a-route", headers=h)
        event = {"event_id": "m-1", "user_id": "u40", "item_id": "i2"}
        s.client.post("/v1/events", json={"events": [event, event]}, headers=s.headers("write"))
        assert s.client.get("/metrics").status_code == 401  # needs a read key
        response = s.client.get("/metrics", headers=h)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        found = samples(response.text)
        route = "/v1/users/{user_id}/recommendations"
        assert (
            value(found, "recstack_http_responses_total", method="GET", route=route, status="200")
            == 3
        )
        assert (
            value(found, "recstack_http_request_duration_seconds_count", method="GET", route=route)
            == 3
        )
        assert (
            value(
                found,
                "recstack_http_request_duration_seconds_bucket",
                method="GET",
                route=route,
                le="+Inf",
            )
            == 3
        )
        similar = "/v1/items/{item_id}/similar"
        assert (
            value(found, "recstack_http_responses_total", method="GET", route=similar, status="404")
            == 1
        )
        assert (
            value(
                found,
                "recstack_http_responses_total",
                method="GET",
                route="unmatched",
                status="404",
            )
            == 1
        )
        assert (
            value(found, "recstack_model_info", name="als", version="1", registered_name="recstack")
            == 1
        )
        assert value(found, "recstack_events_ingested_total", outcome="inserted") == 1
        assert value(found, "recstack_events_ingested_total", outcome="duplicate") == 1
        assert value(found, "recstack_cache_hits_total") == 2
        assert value(found, "recstack_cache_misses_total") == 1
        assert ("recstack_engine_reloads_total", frozenset({("outcome", "succeeded")})) in found
