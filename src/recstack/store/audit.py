"""The admin audit log and event retention: the store's record of who changed what, and the
deletion of events older than the retention window.

The audit log names the caller by the public prefix of their key (never the key), the action
(``METHOD /route/template``), its target (the path it acted on) and the status it got, so an
operator can answer "who promoted version 7, and when".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recstack.store.engine import write_transaction
from recstack.store.tables import audit_log, interactions

MAX_TARGET = 512


def record_audit(
    engine: Engine,
    *,
    key_prefix: str,
    action: str,
    target: str | None,
    status: int,
    request_id: str | None = None,
    at: datetime | None = None,
) -> None:
    """Append one admin action to the audit log."""
    row = {
        "at": at or datetime.now(UTC),
        "key_prefix": key_prefix[:64],
        "action": action[:128],
        "target": None if target is None else target[:MAX_TARGET],
        "status": int(status),
        "request_id": request_id,
    }
    with write_transaction(engine) as conn:
        conn.execute(sa.insert(audit_log).values(**row))


def list_audit(
    engine: Engine,
    *,
    limit: int = 100,
    key_prefix: str | None = None,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    """Audit entries newest first (``before_id`` pages further back)."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if key_prefix is not None:
        query = query.where(audit_log.c.key_prefix == key_prefix)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    for row in rows:
        if row["at"].tzinfo is None:
            row["at"] = row["at"].replace(tzinfo=UTC)
    return rows


def delete_events_before(
    engine: Engine,
    cutoff: int,
    *,
    batch_size: int = 10_000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete interactions with ``timestamp < cutoff`` (epoch seconds), ``batch_size`` rows per
    transaction, so writers and readers are never held up by one huge delete. Returns how many.

    Each batch commits on its own: an interrupted run leaves fewer old events, never a
    half-applied batch. ``on_batch(n)`` is called after each batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    total = 0
    while True:
        with write_transaction(engine) as conn:
            ids = (
                conn.execute(
                    sa.select(interactions.c.id)
                    .where(interactions.c.timestamp < cutoff)
                    .order_by(interactions.c.id)
                    .limit(batch_size)
                )
                .scalars()
                .all()
            )
            if ids:
                conn.execute(sa.delete(interactions).where(interactions.c.id.in_(ids)))
        total += len(ids)
        if ids and on_batch is not None:
            on_batch(len(ids))
        if len(ids) < batch_size:
            return total
