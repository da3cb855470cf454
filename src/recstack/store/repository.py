"""Online operations on single users, items and small event batches (used by the HTTP server).

Each function is one short transaction that is committed before it returns, so an event the
server acknowledged is durable. Times come back as ISO 8601 UTC strings and JSON columns as
dicts, identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from recstack.data.schema import ITEM_COLUMNS
from recstack.errors import DataError, NotFoundError
from recstack.store.engine import read_transaction, write_transaction
from recstack.store.event_rows import SMALL_BATCH_ROWS, add_event_rows, frame_rows
from recstack.store.frames import MAX_ID_LENGTH, prepare_interactions
from recstack.store.ingest import backend_for, map_interactions
from recstack.store.tables import interactions, items, users
from recstack.store.timeformat import iso_datetime

HISTORY_COLUMNS = ["event_id", "item_id", "event_type", "value", "timestamp", "context"]


def _as_dict(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if isinstance(value, dict) else {}


def add_events(engine: Engine, events: pd.DataFrame, *, create_items: bool = False) -> int:
    """Store a canonical interaction frame; returns how many events were new.

    Events whose event_id is already stored are ignored; unknown users are created; unknown
    items raise ``NotFoundError`` unless ``create_items`` is true. Frames up to
    ``SMALL_BATCH_ROWS`` rows go through ``event_rows`` (plain tuples, a few statements),
    larger ones through the vectorised bulk path; both check and store alike.
    """
    if len(events) <= SMALL_BATCH_ROWS:
        rows = frame_rows(events, "events")
        return add_event_rows(engine, rows, create_items=create_items, source="events")
    frame = prepare_interactions(events, "events")
    if frame.empty:
        return 0
    with write_transaction(engine) as conn:
        mapped, _, _ = map_interactions(conn, frame, create_items=create_items)
        return backend_for(conn).write_interactions(conn, mapped)


def _item_record(row: Any) -> dict[str, Any]:
    return {
        "item_id": row.external_id,
        "title": row.title,
        "text": row.text,
        "attributes": _as_dict(row.attributes),
        "active": bool(row.active),
        "created_at": iso_datetime(row.created_at),
        "updated_at": iso_datetime(row.updated_at),
    }


def _check_id(kind: str, external_id: str) -> str:
    external_id = str(external_id)
    if not external_id or len(external_id) > MAX_ID_LENGTH:
        raise DataError(f"{kind} must be 1 to {MAX_ID_LENGTH} characters, got {external_id!r}")
    return external_id


def upsert_item(
    engine: Engine,
    item_id: str,
    *,
    title: str | None = None,
    text: str | None = None,
    attributes: dict | None = None,
    active: bool = True,
) -> dict[str, Any]:
    """Create an item or update it; ``None`` fields keep their stored value. Returns the item."""
    item_id = _check_id("item_id", item_id)
    values: dict[str, Any] = {"external_id": item_id, "active": bool(active)}
    changes: dict[str, Any] = {"active": bool(active), "updated_at": sa.func.now()}
    for name, given in (("title", title), ("text", text), ("attributes", attributes)):
        if given is not None:
            values[name] = given
            changes[name] = given
    with write_transaction(engine) as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(items).values(**values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["external_id"], set_=changes))
        row = conn.execute(sa.select(items).where(items.c.external_id == item_id)).one()
    return _item_record(row)


def get_item(engine: Engine, item_id: str) -> dict[str, Any] | None:
    """The stored item, or None when there is no such item."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(items).where(items.c.external_id == str(item_id))).first()
    return None if row is None else _item_record(row)


def items_frame(engine: Engine) -> pd.DataFrame:
    """The catalogue in canonical ``ITEM_COLUMNS``, ordered by surrogate id."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                items.c.external_id, items.c.title, items.c.text, items.c.attributes, items.c.active
            ).order_by(items.c.id)
        ).all()
    return pd.DataFrame(
        {
            "item_id": pd.Series([r[0] for r in rows], dtype=object),
            "title": pd.Series([r[1] for r in rows], dtype=object),
            "text": pd.Series([r[2] for r in rows], dtype=object),
            "attributes": pd.Series([_as_dict(r[3]) for r in rows], dtype=object),
            "active": np.asarray([bool(r[4]) for r in rows], dtype=bool),
        },
        columns=list(ITEM_COLUMNS),
    )


def _user_sid(conn: Connection, user_id: str) -> int | None:
    return conn.execute(
        sa.select(users.c.id).where(users.c.external_id == str(user_id))
    ).scalar_one_or_none()


def get_user(engine: Engine, user_id: str) -> dict[str, Any] | None:
    """``{"user_id", "attributes", "created_at", "n_events"}``, or None for an unknown user."""
    with read_transaction(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.external_id == str(user_id))).first()
        if row is None:
            return None
        n_events = conn.execute(
            sa.select(sa.func.count()).where(interactions.c.user_id == row.id)
        ).scalar_one()
    return {
        "user_id": row.external_id,
        "attributes": _as_dict(row.attributes),
        "created_at": iso_datetime(row.created_at),
        "n_events": int(n_events),
    }


def user_history(engine: Engine, user_id: str, limit: int | None = None) -> pd.DataFrame:
    """The user's events, newest first (``HISTORY_COLUMNS``; empty for an unknown user).

    ``context`` is JSON text (or None) as in the canonical interaction frame.
    """
    query = (
        sa.select(
            interactions.c.event_id,
            items.c.external_id.label("item_id"),
            interactions.c.event_type,
            interactions.c.value,
            interactions.c.timestamp,
            sa.cast(interactions.c.context, sa.Text).label("context"),
        )
        .join(items, items.c.id == interactions.c.item_id)
        .join(users, users.c.id == interactions.c.user_id)
        .where(users.c.external_id == str(user_id))
        .order_by(interactions.c.timestamp.desc(), interactions.c.id.desc())
    )
    if limit is not None:
        query = query.limit(max(0, int(limit)))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(
        {
            "event_id": pd.Series([r[0] for r in rows], dtype=object),
            "item_id": pd.Series([r[1] for r in rows], dtype=object),
            "event_type": pd.Series([r[2] for r in rows], dtype=object),
            "value": np.asarray([np.nan if r[3] is None else r[3] for r in rows], dtype=float),
            "timestamp": np.asarray([r[4] for r in rows], dtype=np.int64),
            "context": pd.Series([r[5] for r in rows], dtype=object),
        },
        columns=HISTORY_COLUMNS,
    )
    return frame


def delete_user(engine: Engine, user_id: str) -> int:
    """Erase a user and every event of theirs in one transaction; returns events deleted.

    Raises ``NotFoundError`` when the user is not stored.
    """
    with write_transaction(engine) as conn:
        sid = _user_sid(conn, user_id)
        if sid is None:
            raise NotFoundError(f"unknown user: {user_id!r}")
        deleted = conn.execute(sa.delete(interactions).where(interactions.c.user_id == sid))
        conn.execute(sa.delete(users).where(users.c.id == sid))
    return int(deleted.rowcount)
