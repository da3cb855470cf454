"""Drift monitoring (``recstack monitor drift``, ``POST /v1/admin/drift``, the scheduler).

The reference window is the champion's training data (the event-time span it recorded when it
was registered); the current window is the events after it. The report is computed by the pure
functions of ``monitoring``, persisted in the store (JSON and HTML) with an id, and returned.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from recstack.errors import DataError, NotFoundError
from recstack.monitoring.config import DriftConfig, parse_config
from recstack.monitoring.drift import drift_share
from recstack.monitoring.report import DriftReport
from recstack.monitoring.signals import drift_signals
from recstack.monitoring.windows import (
    current_bounds,
    reference_bounds,
    window_from_tags,
)
from recstack.progress import ProgressTask
from recstack.registry.cards import run_tags
from recstack.registry.mlflow_registry import ModelRegistry, VersionInfo
from recstack.settings import Settings
from recstack.store import monitoring as queries

if TYPE_CHECKING:
    from collections.abc import Iterator

    from recstack.store import Store


@contextmanager
def open_store(settings: Settings, store: Store | None) -> Iterator[Store]:
    """``store`` as given, or the settings' store opened (and closed) for the call."""
    if store is not None:
        yield store
        return
    from recstack.store import Store

    opened = Store.from_settings(settings)
    try:
        yield opened
    finally:
        opened.close()


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def champion_of(registry: ModelRegistry, name: str) -> VersionInfo:
    """The champion version, or a NotFoundError that says how to get one."""
    if registry.exists():
        try:
            return registry.resolve(name, "champion")
        except NotFoundError:
            pass
    raise NotFoundError(
        f"model {name!r} has no champion to monitor or challenge; train one first "
        "(recstack train MODEL --promote champion)"
    )


def run_drift(
    settings: Settings,
    *,
    store: Store | None = None,
    registry: ModelRegistry | None = None,
    config: DriftConfig | Mapping[str, Any] | None = None,
    progress: bool = False,
) -> DriftReport:
    """Compare the events after the champion's training window with that window; persist and
    return the report.

    Raises ConfigError for bad thresholds (before reading anything), NotFoundError when there
    is no champion or it recorded no data window, DataError when a window has no events.
    """
    cfg = parse_config(DriftConfig, config)
    registry = registry or ModelRegistry(settings)
    name = settings.model_name
    with (
        ProgressTask("drift report", total=4, enabled=progress) as bar,
        open_store(settings, store) as st,
    ):
        champion = champion_of(registry, name)
        window = window_from_tags(run_tags(registry, champion))
        if window is None:
            raise NotFoundError(
                f"the champion ({name!r} version {champion.version}) recorded no data window; "
                "register a new version with recstack train --promote champion"
            )
        ref_start, ref_end = reference_bounds(*window, cfg.reference_days)
        span = queries.time_range(st.engine)
        latest = span[1] if span else ref_end
        cur_start, cur_end = current_bounds(ref_end, latest, cfg.current_days)
        bar.advance(1)
        reference = queries.events_between(st.engine, ref_start, ref_end)
        current = (
            queries.events_between(st.engine, cur_start, cur_end)
            if cur_end >= cur_start
            else reference.iloc[:0]
        )
        bar.advance(1)
        if reference.empty:
            raise DataError(
                f"no events in the champion's training window ({_iso(ref_start)} to "
                f"{_iso(ref_end)}): were they deleted?"
            )
        if len(current) < cfg.min_current_events:
            raise DataError(
                f"{len(current)} event(s) after the champion's training window (it ends "
                f"{_iso(ref_end)}); need at least {cfg.min_current_events} to compare"
            )
        ref_served = queries.served_between(st.engine, ref_start, ref_end + 1)
        cur_served = queries.served_between(st.engine, cur_start, cur_end + 1)
        signals, skipped = drift_signals(
            reference,
            current,
            cfg,
            reference_served=ref_served,
            current_served=cur_served,
            catalogue_size=queries.active_items(st.engine) if ref_served is not None else None,
        )
        bar.advance(1)
        share = drift_share([s.drifted for s in signals])
        report = DriftReport(
            id=uuid.uuid4().hex,
            created_at=queries.utc_now(),
            drifted=share >= cfg.share,
            share=round(share, 6),
            signals=signals,
            reference=_describe(reference, ref_start, ref_end),
            current=_describe(current, cur_start, cur_end),
            config=cfg.model_dump(),
            model={"name": name, "version": champion.version, "model": champion.model},
            skipped=skipped,
        )
        queries.save_drift_report(st.engine, report.to_dict(), report.to_html())
        bar.advance(1)
    return report


def _describe(events: pd.DataFrame, start: int, end: int) -> dict[str, Any]:
    return {
        "start": int(start),
        "end": int(end),
        "start_iso": _iso(start),
        "end_iso": _iso(end),
        "events": len(events),
        "users": int(events["user_id"].nunique()),
        "items": int(events["item_id"].nunique()),
    }


def get_drift_report(
    settings: Settings, report_id: str, *, store: Store | None = None
) -> tuple[DriftReport, str]:
    """A stored report and its HTML page; NotFoundError for an unknown id."""
    with open_store(settings, store) as st:
        found = queries.get_drift_report(st.engine, report_id)
    if found is None:
        raise NotFoundError(f"no drift report with id {report_id!r}")
    return DriftReport.from_dict(found[0]), found[1]


def list_drift_reports(
    settings: Settings, *, store: Store | None = None, limit: int = 20
) -> list[DriftReport]:
    """The newest reports first."""
    with open_store(settings, store) as st:
        return [DriftReport.from_dict(r) for r in queries.list_drift_reports(st.engine, limit)]
