"""The canonical shape of interactions, items and users as they flow between loaders and the store.

Loaders produce pandas frames with exactly these columns; the store ingests them; snapshots read
them back. Keeping one shape means one validation path for every source.
"""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = (
    "view",
    "click",
    "rate",
    "purchase",
    "start",
    "complete",
    "bookmark",
)

# interactions: event_id (str, unique), user_id (str), item_id (str), event_type (str),
# value (float, NaN when absent), timestamp (int64 epoch seconds, UTC), context (JSON str or None)
INTERACTION_COLUMNS: tuple[str, ...] = (
    "event_id",
    "user_id",
    "item_id",
    "event_type",
    "value",
    "timestamp",
    "context",
)

# items: item_id (str), title (str|None), text (str|None), attributes (dict), active (bool)
ITEM_COLUMNS: tuple[str, ...] = ("item_id", "title", "text", "attributes", "active")

# users: user_id (str), attributes (dict)
USER_COLUMNS: tuple[str, ...] = ("user_id", "attributes")
