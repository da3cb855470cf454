"""/metrics exposes the named Prometheus series with the right labels and counts."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from recstack.settings import Settings


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
        response = s.client.get("/metrics")  # public by default: a scraper needs no key
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


def test_metrics_follow_the_metrics_public_setting(serve, als_model):
    with serve(als_model) as s:
        assert s.client.get("/metrics").status_code == 200
        assert "security" not in s.client.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    with serve(als_model, metrics_public=False) as s:
        assert s.client.get("/metrics").status_code == 401
        assert s.client.get("/metrics", headers={"X-API-Key": "rs_bad_key"}).status_code == 401
        response = s.client.get("/metrics", headers=s.headers())
        assert response.status_code == 200 and "recstack_http_responses_total" in response.text
        operation = s.client.get("/openapi.json").json()["paths"]["/metrics"]["get"]
        assert operation["security"] and {"401", "403", "429"} <= set(operation["responses"])


def test_prometheus_scrape_config_matches_the_default():
    """deploy/prometheus scrapes /metrics without credentials, as ``metrics_public`` allows."""
    import yaml

    config = yaml.safe_load(
        (Path(__file__).parents[2] / "deploy" / "prometheus" / "prometheus.yml").read_text()
    )
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "recstack"]
    assert job["metrics_path"] == "/metrics"
    assert "authorization" not in job and Settings().metrics_public is True
