"""Summary figures of what the store holds (``recstack stats``, the admin endpoint).

Event counts, time range and distinct (user, item) pairs come from one streamed pass over the
interactions with the snapshot's block reader and numpy, which is several times faster than
``GROUP BY`` / ``COUNT(DISTINCT ...)`` on SQLite and needs no sort memory on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recstack.store.engine import read_transaction
from recstack.store.snapshot import event_blocks
from recstack.store.timeformat import iso_timestamp


def store_stats(engine: Engine) -> dict[str, Any]:
    """Counts, density and time range of the store.

    ``density`` is ``distinct (user, item) pairs / (users * items)`` and ``sparsity`` is
    ``1 - density``; ``interactions`` counts every event, repeats included. Timestamps are
    ISO 8601 UTC strings (None for an empty store).
    """
    type_counts: Counter[str] = Counter()
    first = last = None
    pair_keys: list[np.ndarray] = []
    with read_transaction(engine) as conn:
        n_users = conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
        n_items, n_active = conn.execute(
            sa.text("SELECT count(*), count(CASE WHEN active THEN 1 END) FROM items")
        ).one()
        max_item = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM items")).scalar_one()
        for block in event_blocks(conn):
            counts = block.event_type.value_counts()
            type_counts.update({str(k): int(v) for k, v in counts.items() if v})
            low, high = int(block.timestamp.min()), int(block.timestamp.max())
            first = low if first is None else min(first, low)
            last = high if last is None else max(last, high)
            pair_keys.append(np.unique(block.user_id * (int(max_item) + 1) + block.item_id))
    pairs = len(np.unique(np.concatenate(pair_keys))) if pair_keys else 0
    cells = int(n_users) * int(n_items)
    density = pairs / cells if cells else 0.0
    return {
        "database": engine.dialect.name,
        "url": engine.url.render_as_string(hide_password=True),
        "users": int(n_users),
        "items": int(n_items),
        "active_items": int(n_active),
        "interactions": sum(type_counts.values()),
        "distinct_pairs": pairs,
        "density": density,
        "sparsity": 1.0 - density if cells else 1.0,
        "event_types": dict(sorted(type_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "first_timestamp": iso_timestamp(first),
        "last_timestamp": iso_timestamp(last),
    }
