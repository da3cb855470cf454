"""Tracing spans (OpenTelemetry SDK, in-memory exporter), JSON access logs, and the series
/metrics reads from the store (jobs, retrain outcomes, drift, stored events)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from recstack import tracing
from recstack.serving.runtime.logs import JsonFormatter


@pytest.fixture
def spans():
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    assert tracing.configure(exporter=exporter)
    yield exporter
    tracing.shutdown()


def test_tracing_is_off_and_free_without_otel_environment(monkeypatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert tracing.configure() is False and not tracing.enabled()
    first, second = tracing.span("a"), tracing.span("b", k=1)
    assert first is second  # one shared no-op: nothing is allocated per call
    with first:
        pass


def test_request_spans_nest_retrieval_and_store_under_the_caller_trace(serve, als_model, spans):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    with serve(als_model, cache_ttl_seconds=0) as s:
        s.client.get("/v1/users/u3/recommendations?k=3", headers={**s.headers(), **parent})
        event = {"user_id": "u3", "item_id": "i7"}
        assert (
            s.client.post("/v1/events", json=event, headers=s.headers("write")).status_code == 200
        )
    finished = {span.name: span for span in spans.get_finished_spans()}
    server = finished["GET /v1/users/{user_id}/recommendations"]
    retrieval = finished["recstack.retrieval"]
    assert format(server.context.trace_id, "032x") == trace_id  # continues the caller's trace
    assert retrieval.parent.span_id == server.context.span_id
    assert server.attributes["http.route"] == "/v1/users/{user_id}/recommendations"
    store_span = finished["recstack.store.add_events"]
    assert store_span.parent.span_id == finished["POST /v1/events"].context.span_id
    assert store_span.end_time >= store_span.start_time


def test_json_access_log_names_request_route_latency_and_model(serve, als_model, caplog):
    with serve(als_model, log_format="json") as s:
        caplog.set_level(logging.INFO, logger="recstack.access")
        response = s.client.get(
            "/v1/users/u3/recommendations?k=2", headers={**s.headers(), "X-Request-ID": "req-42"}
        )
        assert response.status_code == 200
    (record,) = [r for r in caplog.records if getattr(r, "request_id", None) == "req-42"]
    line = json.loads(JsonFormatter().format(record))
    assert line["route"] == "/v1/users/{user_id}/recommendations" and line["status"] == 200
    assert line["model_version"] == 1 and line["method"] == "GET" and "arm" in line
    assert line["latency_ms"] > 0 and line["logger"] == "recstack.access"
    assert line["message"] == "request" and line["time"].endswith("Z")


def test_no_access_log_in_text_mode(serve, als_model, caplog):
    with serve(als_model) as s:
        caplog.set_level(logging.INFO, logger="recstack.access")
        s.recommend("u3", k=2)
    assert not [r for r in caplog.records if r.name == "recstack.access"]


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def test_metrics_read_jobs_outcomes_and_drift_from_the_store(serve, als_model):
    from recstack.store.monitoring import save_decision, save_drift_report

    with serve(als_model) as s:
        before = samples(s.client.get("/metrics").text)
        assert before[("recstack_retrain_outcomes_total", frozenset({("outcome", "failed")}))] == 0
        assert (
            before[("recstack_store_events_total", frozenset())]
            == s.store.change_mark()["max_event_id"]
        )
        ops = s.store.operations
        now = datetime.now(UTC)
        ops.insert_job({"id": "f" * 32, "kind": "retrain", "status": "failed", "created_at": now})
        for n, promoted in enumerate((True, False, False)):
            save_decision(
                s.store.engine,
                {
                    "id": f"d{n}",
                    "created_at": now.isoformat(),
                    "model_name": "recstack",
                    "action": "retrain",
                    "promoted": promoted,
                    "reason": "test",
                },
            )
        save_drift_report(
            s.store.engine,
            {"id": "r1", "created_at": now.isoformat(), "drifted": True, "share": 0.6},
            "<html></html>",
        )
        s.state.metrics._collectors[0].ttl = 0  # read the store again now
        found = samples(s.client.get("/metrics").text)
    outcome = "recstack_retrain_outcomes_total"
    assert found[(outcome, frozenset({("outcome", "failed")}))] == 1
    assert found[(outcome, frozenset({("outcome", "promoted")}))] == 1
    assert found[(outcome, frozenset({("outcome", "refused")}))] == 2
    assert found[("recstack_jobs", frozenset({("kind", "retrain"), ("status", "failed")}))] == 1
    assert found[("recstack_drift_share", frozenset())] == 0.6
    assert found[("recstack_drift_detected", frozenset())] == 1
    assert (
        abs(found[("recstack_drift_report_timestamp_seconds", frozenset())] - now.timestamp()) < 1
    )


def test_two_stage_scoring_traces_candidates_and_reranking(planted_ds, spans):
    pytest.importorskip("lightgbm", reason="the ranking extra is not installed")
    from recstack.models.catalog import create_model

    model = create_model(
        "two_stage", retrievers="popularity,itemknn", rounds=5, folds=1, min_data_in_leaf=5
    ).fit(planted_ds)
    spans.clear()
    with tracing.span("recstack.retrieval"):
        model.score(planted_ds.matrix[:3])
    finished = {span.name: span for span in spans.get_finished_spans()}
    outer = finished["recstack.retrieval"].context.span_id
    assert finished["recstack.retrieval.candidates"].parent.span_id == outer
    assert finished["recstack.reranking"].parent.span_id == outer
