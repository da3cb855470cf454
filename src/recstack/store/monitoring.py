"""Store queries of the monitoring loop: event windows, served lists, drift reports, decisions.

Windows are read with surrogate ids (drift compares identities, never needs the external
strings) so a large window costs one scan and no per-row Python beyond building the frame.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recstack.store.engine import write_transaction
from recstack.store.tables import decisions, drift_reports, interactions, items, metadata


def events_between(engine: Engine, start: int, end: int) -> pd.DataFrame:
    """Events with ``start <= timestamp <= end``: ``user_id, item_id`` (surrogate ids),
    ``event_type, timestamp``."""
    query = sa.select(
        interactions.c.user_id,
        interactions.c.item_id,
        interactions.c.event_type,
        interactions.c.timestamp,
    ).where(interactions.c.timestamp >= int(start), interactions.c.timestamp <= int(end))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame(
        {
            "user_id": np.asarray([r[0] for r in rows], dtype=np.int64),
            "item_id": np.asarray([r[1] for r in rows], dtype=np.int64),
            "event_type": pd.Series([r[2] for r in rows], dtype=object),
            "timestamp": np.asarray([r[3] for r in rows], dtype=np.int64),
        }
    )


def time_range(engine: Engine) -> tuple[int, int] | None:
    """``(first, last)`` event time in the store, or None when it holds no event."""
    with engine.connect() as conn:
        low, high = conn.execute(
            sa.select(sa.func.min(interactions.c.timestamp), sa.func.max(interactions.c.timestamp))
        ).one()
    return None if low is None else (int(low), int(high))


def active_items(engine: Engine) -> int:
    """How many catalogue items are active (the denominator of coverage)."""
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).where(items.c.active.is_(True))).scalar() or 0
        )


def served_between(engine: Engine, start: float, end: float) -> pd.DataFrame | None:
    """One row per item shown in lists served in ``[start, end]``: ``item_id, score`` (NaN when
    the exposure has no score). None when this store records no exposures."""
    table = metadata.tables.get("exposures")
    if table is None or "served_at" not in table.c or "items" not in table.c:
        return None
    query = sa.select(table.c["items"]).where(
        table.c["served_at"] >= float(start), table.c["served_at"] <= float(end)
    )
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("exposures"):
            return None
        lists = conn.execute(query).scalars().all()
    ids: list[str] = []
    scores: list[float] = []
    for shown in lists:
        if isinstance(shown, str):
            shown = json.loads(shown)
        for entry in shown or []:
            if isinstance(entry, dict):
                ids.append(str(entry.get("item_id", entry.get("id", ""))))
                score = entry.get("score")
                scores.append(float(score) if isinstance(score, int | float) else np.nan)
            else:
                ids.append(str(entry))
                scores.append(np.nan)
    return pd.DataFrame({"item_id": pd.Series(ids, dtype=object), "score": np.asarray(scores)})


# ---- drift reports ------------------------------------------------------------------------------
def save_drift_report(engine: Engine, report: dict[str, Any], html: str) -> None:
    """Store one report (its ``to_dict()``) and its HTML page in one statement."""
    reference = report.get("reference") or {}
    current = report.get("current") or {}
    model = report.get("model") or {}
    with write_transaction(engine) as conn:
        conn.execute(
            sa.insert(drift_reports).values(
                id=report["id"],
                created_at=datetime.fromisoformat(report["created_at"]),
                model_name=model.get("name"),
                model_version=model.get("version"),
                drifted=bool(report["drifted"]),
                share=float(report["share"]),
                reference_start=reference.get("start"),
                reference_end=reference.get("end"),
                current_start=current.get("start"),
                current_end=current.get("end"),
                report=report,
                html=html,
            )
        )


def get_drift_report(engine: Engine, report_id: str) -> tuple[dict[str, Any], str] | None:
    """``(report dict, html)`` of one report, or None."""
    query = sa.select(drift_reports.c.report, drift_reports.c.html).where(
        drift_reports.c.id == report_id
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else (_json(row[0]), str(row[1]))


def list_drift_reports(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The newest reports first (their dicts)."""
    query = (
        sa.select(drift_reports.c.report)
        .order_by(drift_reports.c.created_at.desc(), drift_reports.c.id.desc())
        .limit(int(limit))
    )
    with engine.connect() as conn:
        return [_json(r[0]) for r in conn.execute(query).all()]


# ---- decisions ----------------------------------------------------------------------------------
def save_decision(engine: Engine, record: dict[str, Any]) -> None:
    """Store one promotion / refusal / rollback record."""
    with write_transaction(engine) as conn:
        conn.execute(
            sa.insert(decisions).values(
                id=record["id"],
                created_at=datetime.fromisoformat(record["created_at"]),
                model_name=record["model_name"],
                action=record["action"],
                promoted=bool(record["promoted"]),
                reason=record["reason"],
                champion_version=_version(record.get("champion")),
                challenger_version=_version(record.get("challenger")),
                drift_report_id=record.get("drift_report_id"),
                record=record,
            )
        )


def list_decisions(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The newest decisions first (their records)."""
    query = (
        sa.select(decisions.c.record)
        .order_by(decisions.c.created_at.desc(), decisions.c.id.desc())
        .limit(int(limit))
    )
    with engine.connect() as conn:
        return [_json(r[0]) for r in conn.execute(query).all()]


def _version(model: Any) -> int | None:
    if isinstance(model, dict) and model.get("version") is not None:
        return int(model["version"])
    return None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def utc_now() -> str:
    """Now, as the ISO text the records carry."""
    return datetime.now(UTC).isoformat(timespec="microseconds")
