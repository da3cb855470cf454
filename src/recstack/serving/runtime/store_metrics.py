"""Series /metrics reads at scrape time from the store and the registry, not from counters.

Retrains, drift checks and retention run in other processes (the scheduler, a CLI command,
another worker), so their outcomes are read where they are recorded: the store's ``jobs``,
``decisions`` and ``drift_reports`` tables, and the registry's aliases. One worker answers a
scrape, so these series are never summed over workers. Reads are cached for ``ttl`` seconds
(the registry's for ``registry_ttl``) so a burst of scrapes costs one round of queries.

- ``recstack_jobs{kind,status}``: job records by kind and status;
- ``recstack_retrain_outcomes_total{outcome}``: ``promoted``, ``refused``, ``rollback``,
  ``failed``;
- ``recstack_drift_share``, ``recstack_drift_detected``, ``recstack_drift_report_timestamp_seconds``
  of the latest drift report;
- ``recstack_store_events_total``: events stored (by any path: API, bulk ingest, stream);
- ``recstack_exposures_total``: served lists recorded as exposures;
- ``recstack_model_alias_info{registered_name,alias,version,model}`` (1), and per alias
  ``recstack_model_created_timestamp_seconds`` and ``recstack_model_quality{metric}``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from recstack.errors import NotFoundError
from recstack.settings import Settings

log = logging.getLogger("recstack.serving")
ALIASES = ("champion", "challenger", "previous")


class StoreCollector:
    """A prometheus_client collector over ``store_of()`` and the settings' registry."""

    def __init__(
        self,
        store_of: Callable[[], Any],
        settings: Settings,
        ttl: float = 5.0,
        registry_ttl: float = 60.0,
    ) -> None:
        self.store_of = store_of
        self.settings = settings
        self.ttl = ttl
        self.registry_ttl = registry_ttl
        self._lock = threading.Lock()
        self._stats: tuple[float, dict[str, Any] | None] = (0.0, None)
        self._models: tuple[float, list[Any]] = (0.0, [])

    def describe(self) -> list[Metric]:
        return []  # collected at scrape time only; no describe-time store queries

    def _read_stats(self) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            at, stats = self._stats
            if stats is not None and now - at < self.ttl:
                return stats
            store = self.store_of()
            if store is None:
                return None
            try:
                stats = store.operations.stats()
            except Exception:  # noqa: BLE001 - /metrics keeps answering with what it has
                log.warning("could not read operations metrics from the store", exc_info=True)
                return None
            self._stats = (now, stats)
            return stats

    def _read_models(self) -> list[Any]:
        now = time.monotonic()
        with self._lock:
            at, models = self._models
            if at and now - at < self.registry_ttl:
                return models
            models = []
            try:
                from recstack.serving.runtime.loader import registry_configured

                if registry_configured(self.settings):
                    from recstack.registry import ModelRegistry

                    registry = ModelRegistry(self.settings)
                    aliases = dict.fromkeys((*ALIASES, self.settings.serving_alias))
                    for alias in aliases:
                        try:
                            models.append((alias, registry.resolve(alias=alias)))
                        except NotFoundError:
                            continue
            except Exception:  # noqa: BLE001 - an unreachable registry hides these series
                log.warning("could not read model aliases from the registry", exc_info=True)
            self._models = (now, models)
            return models

    def collect(self) -> Iterator[Metric]:
        stats = self._read_stats()
        if stats is not None:
            yield from self._store_series(stats)
        yield from self._model_series(self._read_models())

    @staticmethod
    def _store_series(stats: dict[str, Any]) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "recstack_jobs", "Job records by kind and status.", labels=["kind", "status"]
        )
        for (kind, status), n in sorted(stats["jobs"].items()):
            jobs.add_metric([kind, status], n)
        yield jobs
        outcomes = CounterMetricFamily(
            "recstack_retrain_outcomes",
            "Retrain outcomes: promoted, refused (gate), rollback, failed (job error).",
            labels=["outcome"],
        )
        for outcome in sorted({"promoted", "refused", "rollback", "failed", *stats["outcomes"]}):
            outcomes.add_metric([outcome], stats["outcomes"].get(outcome, 0))
        yield outcomes
        drift = stats["drift"]
        share = GaugeMetricFamily(
            "recstack_drift_share", "Share of drift signals that drifted in the latest report."
        )
        detected = GaugeMetricFamily(
            "recstack_drift_detected", "1 when the latest drift report found dataset drift."
        )
        stamp = GaugeMetricFamily(
            "recstack_drift_report_timestamp_seconds", "When the latest drift report was made."
        )
        if drift is not None:  # no report yet: the families stay empty
            share.add_metric([], drift["share"])
            detected.add_metric([], 1.0 if drift["drifted"] else 0.0)
            stamp.add_metric([], drift["timestamp"])
        yield share
        yield detected
        yield stamp
        yield CounterMetricFamily(
            "recstack_store_events", "Events stored (every ingest path).", value=stats["events"]
        )
        yield CounterMetricFamily(
            "recstack_exposures", "Served lists recorded as exposures.", value=stats["exposures"]
        )

    @staticmethod
    def _model_series(models: list[Any]) -> Iterator[Metric]:
        labels = ["registered_name", "alias", "version"]
        info = GaugeMetricFamily(
            "recstack_model_alias_info",
            "Registered versions by alias (value 1).",
            labels=[*labels, "model"],
        )
        created = GaugeMetricFamily(
            "recstack_model_created_timestamp_seconds",
            "When the version an alias points at was registered.",
            labels=labels,
        )
        quality = GaugeMetricFamily(
            "recstack_model_quality",
            "Offline metrics recorded with the version an alias points at.",
            labels=[*labels, "metric"],
        )
        from datetime import datetime

        for alias, version in models:
            keys = [version.name, alias, str(version.version)]
            info.add_metric([*keys, version.model], 1.0)
            created.add_metric(keys, datetime.fromisoformat(version.created_at).timestamp())
            for metric, value in sorted(version.metrics.items()):
                quality.add_metric([*keys, metric], float(value))
        yield info
        yield created
        yield quality
