"""Prometheus metrics of the server, exposed at ``/metrics`` (text format).

Series:

- ``recstack_http_request_duration_seconds{method,route}`` histogram, ``route`` being the route
  template (``/v1/users/{user_id}/recommendations``), never the raw path;
- ``recstack_http_responses_total{method,route,status}``;
- ``recstack_model_info{name,version,registered_name}`` 1 for the model being served;
- ``recstack_events_ingested_total{outcome}`` (``inserted`` / ``duplicate``);
- ``recstack_cache_hits_total`` / ``recstack_cache_misses_total``;
- ``recstack_batches_total`` / ``recstack_batched_lists_total``: model calls that scored
  several requests' lists together, and those lists (``runtime.batching``);
- ``recstack_engine_reloads_total{outcome}``;
- ``recstack_exposures_served_total{surface,experiment,arm}``: lists served (and logged);
- what the store and registry record (jobs, retrain outcomes, drift, stored events, exposures,
  models by alias): see ``store_metrics``, read at scrape time by one worker.

Several workers (``recstack serve --workers N``): prometheus_client's multiprocess mode is used
when ``PROMETHEUS_MULTIPROC_DIR`` is set before the workers start (the ``serve`` command sets
it to a fresh temporary directory when N > 1). Each worker then writes its samples there and
``/metrics`` on any worker returns the sum over all of them; the model gauge keeps one series
per worker (``pid`` label). Without the variable each app has its own registry.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# 0.3: the latency SLO threshold (deploy/prometheus/recstack-rules.yml) must be a bucket bound
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.3,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def multiprocess_dir() -> str | None:
    """The prometheus_client multiprocess directory, if configured."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


class Metrics:
    """The server's metric objects, registered in a registry private to one app."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if self.multiprocess else self.registry
        self.latency = Histogram(
            "recstack_http_request_duration_seconds",
            "Request latency by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.responses = Counter(
            "recstack_http_responses_total",
            "Responses by route template and status code.",
            ["method", "route", "status"],
            registry=reg,
        )
        self.model_info = Gauge(
            "recstack_model_info",
            "The model being served (value 1).",
            ["name", "version", "registered_name"],
            registry=reg,
            multiprocess_mode="liveall",
        )
        self.events = Counter(
            "recstack_events_ingested",
            "Events received by POST /v1/events, by outcome.",
            ["outcome"],
            registry=reg,
        )
        self.cache_hits = Counter(
            "recstack_cache_hits", "Recommendation responses served from the cache.", registry=reg
        )
        self.cache_misses = Counter(
            "recstack_cache_misses", "Recommendation responses computed (cache miss).", registry=reg
        )
        self.batches = Counter(
            "recstack_batches", "Model calls scoring several requests' lists.", registry=reg
        )
        self.batched_lists = Counter(
            "recstack_batched_lists", "Lists scored in batches of requests.", registry=reg
        )
        self.reloads = Counter(
            "recstack_engine_reloads", "Engine reloads by outcome.", ["outcome"], registry=reg
        )
        self.exposures_served = Counter(
            "recstack_exposures_served",
            "Served lists by surface, experiment and arm ('' outside experiments).",
            ["surface", "experiment", "arm"],
            registry=reg,
        )
        for outcome in ("inserted", "duplicate"):
            self.events.labels(outcome)
        for outcome in ("succeeded", "failed"):
            self.reloads.labels(outcome)
        self._collectors: list[Any] = []
        self._served: tuple[str, str, str] | None = None
        # (method, route, status) -> its latency histogram and response counter children:
        # resolving labels costs more per request than the observation itself
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._exposure_children: dict[tuple[str, str, str], Any] = {}

    def add_collector(self, collector: Any) -> None:
        """Also expose ``collector``'s series (read at scrape time, never summed over workers)."""
        self._collectors.append(collector)
        if not self.multiprocess:
            self.registry.register(collector)

    def exposure(self, surface: str, experiment: str | None, arm: str | None) -> None:
        """Count one served list (per experiment arm; label children resolved once)."""
        key = (surface, experiment or "", arm or "")
        child = self._exposure_children.get(key)
        if child is None:
            child = self._exposure_children[key] = self.exposures_served.labels(*key)
        child.inc()

    def set_model(self, name: str, version: int | None, registered_name: str | None) -> None:
        """Mark the served model (and unmark the previous one)."""
        labels = (name, "" if version is None else str(version), registered_name or "")
        if self._served is not None and self._served != labels:
            self.model_info.labels(*self._served).set(0)
        self.model_info.labels(*labels).set(1)
        self._served = labels

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one response (label children are resolved once per method/route/status)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.latency.labels(method, route),
                self.responses.labels(method, route, str(status)),
            )
            self._children[key] = children
        children[0].observe(seconds)
        children[1].inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every series (all workers in multiprocess mode)."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            for collector in self._collectors:
                registry.register(collector)
            return generate_latest(registry)
        return generate_latest(self.registry)

    @staticmethod
    def worker_exited(pid: int) -> None:
        """Drop a finished worker's live gauges (multiprocess mode)."""
        if multiprocess_dir() is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)
