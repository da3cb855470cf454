"""Summary figures of what the store holds (``recstack stats``, the admin endpoint).

Entity counts are SQL aggregates. Event-type counts, the time range and the distinct
(user, item) pairs come from one pass over the interactions in blocks of a surrogate id
range, each block's columns aggregated into one value inside the database (as the snapshot
reads them): numpy counts the distinct pairs with a sort, and on SQLite pyarrow counts the
event types (PostgreSQL counts them with a hash ``GROUP BY``). ``COUNT(DISTINCT ...)`` would
sort or hash every pair inside the database instead: several times slower on SQLite, and on
PostgreSQL at the mercy of the planner's row estimates right after a bulk load.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recstack.store.backend import backend_of
from recstack.store.blocks import EventFigures, count_distinct, id_ranges
from recstack.store.engine import read_transaction
from recstack.store.timeformat import iso_timestamp

_BLOCK_IDS = 1_000_000  # interactions per block (by surrogate id range)

__all__ = ["EventFigures", "count_distinct", "store_stats"]


def store_stats(engine: Engine) -> dict[str, Any]:
    """Counts, density and time range of the store.

    ``density`` is ``distinct (user, item) pairs / (users * items)`` and ``sparsity`` is
    ``1 - density``; ``interactions`` counts every event, repeats included. Timestamps are
    ISO 8601 UTC strings (None for an empty store).
    """
    with read_transaction(engine) as conn:
        n_users = conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
        n_items, n_active, max_item = conn.execute(
            sa.text(
                "SELECT count(*), count(CASE WHEN active THEN 1 END), coalesce(max(id), 0) "
                "FROM items"
            )
        ).one()
        ranges = id_ranges(conn, _BLOCK_IDS)
        events = backend_of(conn).event_figures(conn, ranges, int(max_item))
    cells = int(n_users) * int(n_items)
    density = events.distinct_pairs / cells if cells else 0.0
    type_counts = events.type_counts
    return {
        "database": engine.dialect.name,
        "url": engine.url.render_as_string(hide_password=True),
        "users": int(n_users),
        "items": int(n_items),
        "active_items": int(n_active),
        "interactions": sum(type_counts.values()),
        "distinct_pairs": events.distinct_pairs,
        "density": density,
        "sparsity": 1.0 - density if cells else 1.0,
        "event_types": dict(sorted(type_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "first_timestamp": iso_timestamp(events.first),
        "last_timestamp": iso_timestamp(events.last),
    }
