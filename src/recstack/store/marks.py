"""Where the store stands, and what changed since a point: what a cached snapshot is checked by.

A *mark* is the highest interaction and user surrogate ids and the user count. Ids only grow,
so the events stored after a mark are those with a higher id, and users deleted since (a
purge) show as fewer users at or below the mark's highest user id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recstack.data.idmap import IdMap
from recstack.store.engine import driver_connection
from recstack.store.snapshot import read_items
from recstack.store.tables import interactions, items, users


def change_mark(engine: Engine) -> dict[str, int]:
    """``{"max_event_id", "max_user_id", "users"}`` now (0 for an empty store)."""
    with engine.connect() as conn:
        max_event = conn.execute(sa.select(sa.func.max(interactions.c.id))).scalar()
        max_user, n_users = conn.execute(sa.select(sa.func.max(users.c.id), sa.func.count())).one()
    return {
        "max_event_id": int(max_event or 0),
        "max_user_id": int(max_user or 0),
        "users": int(n_users or 0),
    }


def count_users(engine: Engine, upto_user_id: int) -> int:
    """How many users have a surrogate id at or below ``upto_user_id``."""
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(users.c.id <= upto_user_id)
        return int(conn.execute(query).scalar() or 0)


def events_after(
    engine: Engine, after_event_id: int, since: int | None = None, upto: int | None = None
) -> pd.DataFrame:
    """Interactions stored after ``after_event_id`` (up to ``upto`` and ``timestamp >= since``
    if given), oldest first, with external ids: ``user_id, item_id, event_type, value,
    timestamp``."""
    query = (
        sa.select(
            users.c.external_id.label("user_id"),
            items.c.external_id.label("item_id"),
            interactions.c.event_type,
            interactions.c.value,
            interactions.c.timestamp,
        )
        .join(users, users.c.id == interactions.c.user_id)
        .join(items, items.c.id == interactions.c.item_id)
        .where(interactions.c.id > after_event_id)
        .order_by(interactions.c.id)
    )
    if since is not None:
        query = query.where(interactions.c.timestamp >= since)
    if upto is not None:
        query = query.where(interactions.c.id <= upto)
    with engine.connect() as conn:
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        rows = driver_connection(conn).execute(str(compiled)).fetchall()  # no per-row ORM work
    return pd.DataFrame(
        {
            "user_id": pd.Series([r[0] for r in rows], dtype=object),
            "item_id": pd.Series([r[1] for r in rows], dtype=object),
            "event_type": pd.Series([r[2] for r in rows], dtype=object),
            "value": pd.Series([np.nan if r[3] is None else r[3] for r in rows], dtype=float),
            "timestamp": pd.Series([r[4] for r in rows], dtype=np.int64),
        }
    )


def catalogue(engine: Engine) -> tuple[IdMap, pd.DataFrame]:
    """Every item (surrogate id order) and its ``title, text, attributes, active`` rows."""
    with engine.connect() as conn:
        _, ids, meta = read_items(conn)
    return ids, meta
