"""Check and normalise canonical frames before they reach the database (the bulk paths).

Everything a database would reject later (a missing id, an id too long for its column, a
malformed context) is caught here, vectorised with the column rules of
``recstack.data.validation``, and reported as a ``DataError`` naming the offending row, so a
bad frame never starts a write transaction.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from recstack.data.schema import INTERACTION_COLUMNS
from recstack.data.validation import (
    MAX_EVENT_TYPE_LENGTH,
    MAX_ID_LENGTH,
    check_event_type_column,
    context_column,
    dumps_json,
    epoch_seconds,
    is_missing,
    numeric_values,
    string_column,
)
from recstack.errors import DataError


def prepare_interactions(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """The interactions with exactly ``INTERACTION_COLUMNS``, checked and typed for the store.

    ``value`` and ``context`` may be absent (no value, no context); every other column is
    required and may not hold nulls.
    """
    missing = [
        c for c in INTERACTION_COLUMNS if c not in frame.columns and c not in ("value", "context")
    ]
    if missing:
        raise DataError(f"interactions are missing columns: {', '.join(missing)}", file=source)
    frame = frame.reset_index(drop=True)
    out: dict[str, Any] = {}
    out["event_id"] = string_column(frame, "event_id", source, MAX_ID_LENGTH, "interactions")
    out["user_id"] = string_column(frame, "user_id", source, MAX_ID_LENGTH, "interactions")
    out["item_id"] = string_column(frame, "item_id", source, MAX_ID_LENGTH, "interactions")
    out["event_type"] = string_column(
        frame, "event_type", source, MAX_EVENT_TYPE_LENGTH, "interactions", nul_ok=True
    )
    check_event_type_column(out["event_type"], source)
    if "value" in frame.columns:
        out["value"] = numeric_values(frame["value"], source)
    else:
        out["value"] = np.full(len(frame), np.nan)
    out["timestamp"] = epoch_seconds(frame["timestamp"], source)
    # as a Series: pandas would infer a str dtype (NaN for None) from a plain object array
    out["context"] = pd.Series(context_column(frame, source), dtype=object)
    return pd.DataFrame(out, columns=list(INTERACTION_COLUMNS))


def prepare_items(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Catalogue rows for upsert: one per item id (the last wins), JSON-encoded attributes.

    Missing title/text/attributes are None, meaning "keep what the store has"; an empty
    attribute dict also counts as missing. ``active`` defaults to True.
    """
    if "item_id" not in frame.columns:
        raise DataError("items are missing the item_id column", file=source)
    frame = frame.reset_index(drop=True)
    ids = string_column(frame, "item_id", source, MAX_ID_LENGTH, "items")
    n = len(frame)
    out = pd.DataFrame({"item_id": ids.to_numpy(dtype=object)})
    for column in ("title", "text"):
        if column in frame.columns:
            out[column] = pd.Series(
                [None if is_missing(v) else str(v) for v in frame[column].tolist()], dtype=object
            )
        else:
            out[column] = None
    out["attributes"] = pd.Series(_json_objects(frame, "attributes", source, "items"), dtype=object)
    if "active" in frame.columns:
        active = frame["active"]
        out["active"] = active.where(active.notna(), True).astype(bool).to_numpy()
    else:
        out["active"] = np.ones(n, dtype=bool)
    return out.drop_duplicates("item_id", keep="last").reset_index(drop=True)


def prepare_users(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """User rows for upsert: one per user id (the last wins), JSON-encoded attributes or None."""
    if "user_id" not in frame.columns:
        raise DataError("users are missing the user_id column", file=source)
    frame = frame.reset_index(drop=True)
    ids = string_column(frame, "user_id", source, MAX_ID_LENGTH, "users")
    out = pd.DataFrame({"user_id": ids.to_numpy(dtype=object)})
    out["attributes"] = pd.Series(_json_objects(frame, "attributes", source, "users"), dtype=object)
    return out.drop_duplicates("user_id", keep="last").reset_index(drop=True)


def _json_objects(frame: pd.DataFrame, column: str, source: str | None, what: str) -> list:
    """Dict column -> JSON text per row (None where absent or empty)."""
    if column not in frame.columns:
        return [None] * len(frame)
    out: list[str | None] = []
    for row, value in enumerate(frame[column].tolist()):
        if isinstance(value, str):
            try:
                value = json.loads(value) if value else None
            except ValueError as exc:
                raise DataError(
                    f"row {row} of the {what}: {column} is not valid JSON ({exc})", file=source
                ) from exc
        if isinstance(value, dict):
            out.append(dumps_json(value) if value else None)
        elif is_missing(value):
            out.append(None)
        else:
            raise DataError(
                f"row {row} of the {what}: {column} must be a JSON object, got {value!r}",
                file=source,
            )
    return out
