"""Online operations on single users, items and small event batches (used by the HTTP server).

Each function is one short transaction that is committed before it returns, so an event the
server acknowledged is durable. Times come back as ISO 8601 UTC strings and JSON columns as
dicts, identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from recstack.data.schema import ITEM_COLUMNS
from recstack.data.validation import check_id
from recstack.errors import DataError, NotFoundError
from recstack.store.backend import backend_of
from recstack.store.engine import read_transaction, write_transaction
from recstack.store.event_rows import SMALL_BATCH_ROWS, add_event_rows, frame_rows
from recstack.store.frames import prepare_interactions
from recstack.store.ingest import map_interactions
from recstack.store.tables import (
    interactions,
    items,
    precomputed_generations,
    precomputed_lists,
    users,
)
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
        inserted = backend_of(conn).write_interactions(conn, mapped)
    backend_of(engine).index_users(engine)
    return inserted


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
    item_id = check_id(item_id, "item_id", what="items")
    given, row = _item_row(item_id, title, text, attributes, active)
    with write_transaction(engine) as conn:
        conn.execute(_upsert_statement(conn, given), row)
        stored = conn.execute(sa.select(items).where(items.c.external_id == item_id)).one()
    return _item_record(stored)


def upsert_items(engine: Engine, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Create or update many items in one transaction: all are stored or none is.

    Each record is ``{"item_id", "title", "text", "attributes", "active"}`` meaning what
    ``upsert_item``'s arguments mean (absent or None fields keep their stored value, ``active``
    defaults to true), applied in order. A bad record raises ``DataError`` naming its index
    (``row 3 of the items: ...``); text PostgreSQL cannot hold (NUL) is refused on both
    backends. Consecutive records giving the same fields go to the database as one
    ``executemany``. Returns the stored items in the records' order.
    """
    rows = []
    for index, record in enumerate(records):
        item_id = check_id(record.get("item_id"), "item_id", row=index, what="items")
        for name in ("title", "text", "attributes"):
            if _holds_nul(record.get(name)):
                raise DataError(f"row {index} of the items: {name} contains a NUL character")
        fields = (record.get(name) for name in ("title", "text", "attributes"))
        rows.append(_item_row(item_id, *fields, record.get("active", True)))
    first = 0
    found: dict[str, dict[str, Any]] = {}
    with write_transaction(engine) as conn:
        for given, run in groupby(rows, key=lambda row: row[0]):
            params = [row for _, row in run]
            try:
                conn.execute(_upsert_statement(conn, given), params)
            except sa.exc.DataError as exc:
                reason = str(exc.orig).strip().splitlines()[0]
                where = f"rows {first} to {first + len(params) - 1}"
                raise DataError(f"{where} of the items: {reason}") from None
            first += len(params)
        item_ids = list(dict.fromkeys(row["external_id"] for _, row in rows))
        for start in range(0, len(item_ids), 500):
            chosen = items.c.external_id.in_(item_ids[start : start + 500])
            for stored in conn.execute(sa.select(items).where(chosen)):
                found[stored.external_id] = _item_record(stored)
    return [found[row["external_id"]] for _, row in rows]


def _item_row(
    item_id: str, title: str | None, text: str | None, attributes: dict | None, active: bool
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The fields an upsert sets besides ``active`` (those given), and its parameters."""
    given = {
        name: value
        for name, value in (("title", title), ("text", text), ("attributes", attributes))
        if value is not None
    }
    return tuple(given), {"external_id": item_id, "active": bool(active), **given}


def _upsert_statement(conn: Connection, given: tuple[str, ...]) -> Any:
    """Insert an item, or set ``active`` and the ``given`` fields of the stored one (the
    others keep their values); parameters per row (``_item_row``)."""
    stmt = backend_of(conn).insert(items)
    changes = {name: stmt.excluded[name] for name in ("active", *given)}
    return stmt.on_conflict_do_update(
        index_elements=["external_id"], set_={**changes, "updated_at": sa.func.now()}
    )


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(v) for v in value)
    return False


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
        mine = backend_of(conn).user_events(engine, conn, row.id)
        n_events = conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one()
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
    with read_transaction(engine) as conn:
        sid = _user_sid(conn, user_id)
        rows = [] if sid is None else conn.execute(_history_query(engine, conn, sid, limit)).all()
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


def _history_query(engine: Engine, conn: Connection, sid: int, limit: int | None) -> sa.Select:
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
        .where(backend_of(conn).user_events(engine, conn, sid))
        .order_by(interactions.c.timestamp.desc(), interactions.c.id.desc())
    )
    return query if limit is None else query.limit(max(0, int(limit)))


def delete_user(engine: Engine, user_id: str) -> int:
    """Erase a user, every event of theirs and their precomputed lists in one transaction;
    returns events deleted.

    Raises ``NotFoundError`` when the user is not stored.
    """
    # foreign keys off: the user's events go first, and on SQLite the cascade's lookup of
    # them would scan every event (the user index is a side file, ``store.user_index``)
    with write_transaction(engine, check_foreign_keys=False) as conn:
        sid = _user_sid(conn, user_id)
        if sid is None:
            raise NotFoundError(f"unknown user: {user_id!r}")
        mine = backend_of(conn).user_events(engine, conn, sid)
        deleted = conn.execute(sa.delete(interactions).where(mine))
        conn.execute(sa.delete(users).where(users.c.id == sid))
        generations = sa.select(precomputed_generations.c.id)  # one PK probe per generation
        conn.execute(
            sa.delete(precomputed_lists).where(
                precomputed_lists.c.generation.in_(generations),
                precomputed_lists.c.user_id == user_id,
            )
        )
    backend_of(engine).forget_user(engine, sid)
    return int(deleted.rowcount)
