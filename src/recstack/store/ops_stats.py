"""What the store knows that Prometheus should see, read in a few cheap queries at scrape time.

Jobs by kind and status, retrain outcomes (promotion decisions, failed retrain jobs), the
latest drift report, the newest stored event and exposure ids (monotonic: their ``rate`` is
events and exposures per second, whichever process wrote them). Every query is an aggregate
over a small table or a max over a primary key, so a scrape costs milliseconds even on a
store with millions of events.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recstack.store.tables import decisions, drift_reports, exposures, interactions, jobs


def retrain_outcome(action: str, promoted: bool) -> str:
    """The outcome label of a decision record.

    >>> retrain_outcome("retrain", True), retrain_outcome("retrain", False)
    ('promoted', 'refused')
    >>> retrain_outcome("rollback", True)
    'rollback'
    """
    if action == "retrain":
        return "promoted" if promoted else "refused"
    return action


def operations_stats(engine: Engine) -> dict[str, Any]:
    """``{"jobs": {(kind, status): n}, "outcomes": {outcome: n}, "drift": {...} | None,
    "events": max event id, "exposures": max exposure id}``."""
    with engine.connect() as conn:
        job_rows = conn.execute(
            sa.select(jobs.c.kind, jobs.c.status, sa.func.count()).group_by(
                jobs.c.kind, jobs.c.status
            )
        ).all()
        decision_rows = conn.execute(
            sa.select(decisions.c.action, decisions.c.promoted, sa.func.count()).group_by(
                decisions.c.action, decisions.c.promoted
            )
        ).all()
        latest = conn.execute(
            sa.select(drift_reports.c.share, drift_reports.c.drifted, drift_reports.c.created_at)
            .order_by(drift_reports.c.created_at.desc())
            .limit(1)
        ).first()
        events = conn.execute(sa.select(sa.func.max(interactions.c.id))).scalar()
        served = conn.execute(sa.select(sa.func.max(exposures.c.id))).scalar()
    outcomes: dict[str, int] = {}
    for action, promoted, n in decision_rows:
        key = retrain_outcome(str(action), bool(promoted))
        outcomes[key] = outcomes.get(key, 0) + int(n)
    counts = {(str(k), str(s)): int(n) for k, s, n in job_rows}
    outcomes["failed"] = counts.get(("retrain", "failed"), 0)
    drift = None
    if latest is not None:
        created = latest.created_at
        drift = {
            "share": float(latest.share),
            "drifted": bool(latest.drifted),
            "timestamp": created.timestamp() if created.tzinfo else _utc(created),
        }
    return {
        "jobs": counts,
        "outcomes": outcomes,
        "drift": drift,
        "events": int(events or 0),
        "exposures": int(served or 0),
    }


def count_events_after(engine: Engine, timestamp: int) -> int:
    """Events whose own time is after ``timestamp`` (epoch seconds)."""
    query = sa.select(sa.func.count()).where(interactions.c.timestamp > int(timestamp))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def _utc(value: Any) -> float:
    from datetime import UTC

    return value.replace(tzinfo=UTC).timestamp()
