"""The overview's live figures: rates and percentiles from two readings of /metrics text."""

from __future__ import annotations

import pytest

from recstack.ui.live import LiveFigures, read_metrics

BUCKETS = (0.001, 0.005, 0.01, "+Inf")


def exposition(ok: int, errors: int, fast: int, slow: int, events: int, hits: int) -> str:
    """Prometheus text with ``ok`` 200s and ``errors`` 500s on the recommendations route,
    ``fast`` of them under 1 ms and ``slow`` in (5, 10] ms, plus dashboard requests that must
    not count."""
    route = "/v1/users/{user_id}/recommendations"
    lines = [
        "# TYPE recstack_http_responses_total counter",
        f'recstack_http_responses_total{{method="GET",route="{route}",status="200"}} {ok}',
        f'recstack_http_responses_total{{method="GET",route="{route}",status="500"}} {errors}',
        'recstack_http_responses_total{method="GET",route="/ui/overview/live",status="200"} 999',
        "# TYPE recstack_http_request_duration_seconds histogram",
    ]
    cumulative = {0.001: fast, 0.005: fast, 0.01: fast + slow, "+Inf": fast + slow}
    for le in BUCKETS:
        lines.append(
            f'recstack_http_request_duration_seconds_bucket{{method="GET",route="{route}",le="{le}"}} '
            f"{cumulative[le]}"
        )
        lines.append(
            'recstack_http_request_duration_seconds_bucket{method="GET",route="/ui/",'
            f'le="{le}"}} 500'
        )
    lines += [
        f'recstack_http_request_duration_seconds_count{{method="GET",route="{route}"}} {fast + slow}',
        f'recstack_http_request_duration_seconds_sum{{method="GET",route="{route}"}} 1.0',
        "# TYPE recstack_events_ingested_total counter",
        f'recstack_events_ingested_total{{outcome="inserted"}} {events}',
        'recstack_events_ingested_total{outcome="duplicate"} 0',
        "# TYPE recstack_cache_hits_total counter",
        f"recstack_cache_hits_total {hits}",
        "# TYPE recstack_cache_misses_total counter",
        f"recstack_cache_misses_total {ok + errors - hits}",
    ]
    return "\n".join(lines) + "\n"


def test_rates_over_the_window_leave_the_dashboard_out():
    live = LiveFigures(window=30)
    first = live.update(exposition(100, 0, 100, 0, 50, 20), now=1000.0)
    assert first["seconds"] is None and first["requests_per_second"] is None
    assert first["requests"] == 100  # the /ui requests are not counted
    later = live.update(exposition(390, 10, 200, 200, 650, 120), now=1010.0)
    assert later["seconds"] == 10.0
    assert later["requests_per_second"] == pytest.approx(30.0)
    assert later["error_rate"] == pytest.approx(10 / 300)
    assert later["events_per_minute"] == pytest.approx(3600.0)
    assert later["cache_hit_rate"] == pytest.approx(100 / 300)
    # 100 fast (<= 1 ms) then 200 in (5, 10] ms: the median is in the slow bucket
    assert 5.0 < later["p50_ms"] <= 10.0 and later["p99_ms"] <= 10.0


def test_a_restarted_server_starts_the_counts_again():
    live = LiveFigures()
    live.update(exposition(1000, 0, 1000, 0, 0, 0), now=0.0)
    after = live.update(exposition(10, 0, 10, 0, 0, 0), now=5.0)
    assert after["requests"] == 10 and after["seconds"] is None


def test_reading_counts_only_api_routes():
    reading = read_metrics(exposition(5, 1, 6, 0, 3, 2))
    assert (reading.requests, reading.server_errors, reading.events) == (6, 1, 3)
    assert reading.buckets[-1] == 6
