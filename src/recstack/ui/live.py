"""The overview's live figures, from the server's own Prometheus metrics (all workers summed).

The app's ``metrics.render()`` is the same text ``/metrics`` returns: in multiprocess mode the
sum over every worker. A figure over time (requests/s, latency percentiles of the last
seconds) is the difference of two readings, so each worker keeps a short ring of readings;
whichever worker answers a refresh, its counters are the cluster's, so the rates agree.
Requests to the dashboard itself and to ``/metrics`` are left out of the request figures.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

WINDOW_SECONDS = 30.0  # rates and percentiles are over about this many recent seconds
KEEP_SECONDS = 600.0


def histogram_quantile(bounds: list[float], cumulative: list[float], q: float) -> float | None:
    """The ``q`` quantile of a histogram, interpolated linearly inside its bucket (as
    Prometheus' ``histogram_quantile``); None with no observations.

    ``bounds`` are the finite upper bounds in increasing order, ``cumulative`` the counts of
    observations at or below each, with the ``+Inf`` count last (one longer than ``bounds``).
    A quantile in the ``+Inf`` bucket is reported as the highest finite bound.

    >>> round(histogram_quantile([0.1, 0.2, 0.4], [2, 6, 8, 8], 0.5), 6)  # 4th of 8: mid (0.1, 0.2]
    0.15
    >>> histogram_quantile([0.1, 0.2], [0, 0, 0], 0.5) is None
    True
    >>> histogram_quantile([0.1, 0.2], [0, 0, 5], 0.99)
    0.2
    """
    total = cumulative[-1] if cumulative else 0
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=False):
        if count >= rank:
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return bounds[-1] if bounds else None


def ratio(part: float, whole: float) -> float | None:
    """``part / whole``, None when ``whole`` is 0.

    >>> ratio(1, 4), ratio(3, 0)
    (0.25, None)
    """
    return part / whole if whole > 0 else None


@dataclass
class Reading:
    """The cumulative counters at one instant."""

    at: float
    requests: float = 0.0
    server_errors: float = 0.0
    client_errors: float = 0.0
    bounds: list[float] = field(default_factory=list)
    buckets: list[float] = field(default_factory=list)  # cumulative, +Inf last
    events: float = 0.0
    cache_hits: float = 0.0
    cache_misses: float = 0.0

    def minus(self, earlier: Reading) -> Reading | None:
        """The counts between ``earlier`` and this reading; None when the counters went back
        (the server restarted) or the buckets changed."""
        if self.requests < earlier.requests or len(self.buckets) != len(earlier.buckets):
            return None
        return Reading(
            self.at - earlier.at,
            self.requests - earlier.requests,
            self.server_errors - earlier.server_errors,
            self.client_errors - earlier.client_errors,
            self.bounds,
            [a - b for a, b in zip(self.buckets, earlier.buckets, strict=True)],
            self.events - earlier.events,
            self.cache_hits - earlier.cache_hits,
            self.cache_misses - earlier.cache_misses,
        )


def counted_route(route: str) -> bool:
    """Whether a route's requests count in the request figures (not the dashboard's own).

    >>> counted_route("/v1/users/{user_id}/recommendations"), counted_route("/ui/overview/live")
    (True, False)
    """
    return not (route.startswith("/ui") or route == "/metrics")


def read_metrics(text: str, at: float | None = None) -> Reading:
    """A ``Reading`` from Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    reading = Reading(time.time() if at is None else at)
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name == "recstack_http_responses_total":
                if not counted_route(labels.get("route", "")):
                    continue
                reading.requests += value
                status = int(labels.get("status", "0") or 0)
                if status >= 500:
                    reading.server_errors += value
                elif status >= 400:
                    reading.client_errors += value
            elif name == "recstack_http_request_duration_seconds_bucket":
                if counted_route(labels.get("route", "")):
                    le = float(labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + value
            elif name == "recstack_events_ingested_total":
                reading.events += value
            elif name == "recstack_cache_hits_total":
                reading.cache_hits += value
            elif name == "recstack_cache_misses_total":
                reading.cache_misses += value
    ordered = sorted(buckets)
    reading.bounds = [b for b in ordered if not math.isinf(b)]
    reading.buckets = [buckets[b] for b in ordered]
    return reading


def figures(delta: Reading) -> dict[str, Any]:
    """The overview's figures from the counts over ``delta.at`` seconds."""
    seconds = delta.at

    def pct(q: float) -> float | None:
        value = histogram_quantile(delta.bounds, delta.buckets, q) if delta.buckets else None
        return None if value is None else value * 1000.0

    return {
        "seconds": round(seconds, 1),
        "requests": int(delta.requests),
        "requests_per_second": ratio(delta.requests, seconds),
        "p50_ms": pct(0.5),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "error_rate": ratio(delta.server_errors, delta.requests),
        "client_error_rate": ratio(delta.client_errors, delta.requests),
        "events_per_minute": None if seconds <= 0 else 60.0 * delta.events / seconds,
        "cache_hit_rate": ratio(delta.cache_hits, delta.cache_hits + delta.cache_misses),
    }


class LiveFigures:
    """A worker's ring of readings, and the figures over the recent window."""

    def __init__(self, window: float = WINDOW_SECONDS, keep: float = KEEP_SECONDS) -> None:
        self.window = window
        self.keep = keep
        self._readings: deque[Reading] = deque()
        self._history: deque[dict[str, Any]] = deque(maxlen=200)
        self._lock = threading.Lock()

    def update(self, metrics_text: str, now: float | None = None) -> dict[str, Any]:
        """Add a reading and return the figures since the reading closest to ``window`` ago
        (since the server started when there is none yet)."""
        reading = read_metrics(metrics_text, now)
        with self._lock:
            while self._readings and reading.at - self._readings[0].at > self.keep:
                self._readings.popleft()
            base = None
            for old in self._readings:
                if reading.at - old.at >= 1.0:
                    base = old
                if reading.at - old.at < self.window:
                    break
            self._readings.append(reading)
            delta = reading.minus(base) if base is not None else None
            result = (
                figures(delta) if delta is not None and delta.at > 0 else figures_total(reading)
            )
            result["at"] = reading.at
            self._history.append(result)
            return result

    def history(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._history)


def figures_total(reading: Reading) -> dict[str, Any]:
    """Figures over the whole life of the counters: no rates, cumulative percentiles."""
    result = figures(Reading(0.0, *_counts(reading)))
    result["seconds"] = None
    return result


def _counts(reading: Reading) -> tuple[Any, ...]:
    return (
        reading.requests,
        reading.server_errors,
        reading.client_errors,
        reading.bounds,
        reading.buckets,
        reading.events,
        reading.cache_hits,
        reading.cache_misses,
    )
