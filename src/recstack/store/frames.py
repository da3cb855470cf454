"""Check and normalise canonical frames before they reach the database.

Everything a database would reject later (a missing id, an id too long for its column, a
malformed context) is caught here, vectorised, and reported as a ``DataError`` naming the
offending row, so a bad frame never starts a write transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recstack.data.schema import INTERACTION_COLUMNS
from recstack.errors import DataError
from recstack.store.engine import dumps_json

MAX_ID_LENGTH = 255  # users/items/interactions external id columns are VARCHAR(255)
MAX_EVENT_TYPE_LENGTH = 32


def _string_column(
    frame: pd.DataFrame, column: str, source: str | None, max_length: int, what: str
) -> pd.Series:
    """``column`` as strings; no nulls, no empty strings, none longer than ``max_length``."""
    values = frame[column]
    if values.dtype.kind in "iu":
        values = values.astype(str)
    bad = values.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"row {row} of the {what}: {column} is missing", file=source)
    values = values.astype(str)
    lengths = values.str.len().to_numpy()
    empty = lengths == 0
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise DataError(f"row {row} of the {what}: {column} is empty", file=source)
    long = lengths > max_length
    if long.any():
        row = int(np.flatnonzero(long)[0])
        raise DataError(
            f"row {row} of the {what}: {column} is longer than {max_length} characters",
            file=source,
        )
    return values


def text_values(
    values: Sequence[Any], column: str, source: str | None, max_length: int, what: str
) -> list[str]:
    """``_string_column`` for a plain list (small batches): the same checks in the same order
    (missing, then empty, then too long) and the same messages, without pandas."""
    out: list[Any] = [v if type(v) is str else (None if is_missing(v) else str(v)) for v in values]
    if None in out:
        raise DataError(f"row {out.index(None)} of the {what}: {column} is missing", file=source)
    lengths = [len(v) for v in out]
    if lengths and min(lengths) == 0:
        raise DataError(f"row {lengths.index(0)} of the {what}: {column} is empty", file=source)
    if lengths and max(lengths) > max_length:
        row = next(r for r, n in enumerate(lengths) if n > max_length)
        raise DataError(
            f"row {row} of the {what}: {column} is longer than {max_length} characters",
            file=source,
        )
    return out


def is_missing(value: Any) -> bool:
    """Whether one cell counts as missing the way ``pd.isna`` sees it (None, NaN, NA, NaT)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and value != value


def _context_column(frame: pd.DataFrame, source: str | None) -> np.ndarray:
    """Context as JSON text or None; dicts are encoded, strings must be valid JSON."""
    if "context" not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    raw = frame["context"].to_numpy(dtype=object)
    out = np.full(len(raw), None, dtype=object)
    present = ~pd.isna(frame["context"]).to_numpy()
    for row in np.flatnonzero(present):
        out[row] = context_text(raw[row], int(row), source)
    return out


def context_text(value: Any, row: int, source: str | None) -> str:
    """One present context as the JSON text the store keeps: strings must be valid JSON,
    anything else is encoded."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError as exc:
            raise DataError(
                f"row {row} of the interactions: context is not valid JSON ({exc})",
                file=source,
            ) from exc
        return value
    try:
        return dumps_json(value)
    except TypeError as exc:
        raise DataError(
            f"row {row} of the interactions: context cannot be stored as JSON ({exc})",
            file=source,
        ) from exc


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
    out["event_id"] = _string_column(frame, "event_id", source, MAX_ID_LENGTH, "interactions")
    out["user_id"] = _string_column(frame, "user_id", source, MAX_ID_LENGTH, "interactions")
    out["item_id"] = _string_column(frame, "item_id", source, MAX_ID_LENGTH, "interactions")
    out["event_type"] = _string_column(
        frame, "event_type", source, MAX_EVENT_TYPE_LENGTH, "interactions"
    )
    _check_event_types(out["event_type"], source)
    if "value" in frame.columns:
        out["value"] = numeric_values(frame["value"], source)
    else:
        out["value"] = np.full(len(frame), np.nan)
    out["timestamp"] = epoch_seconds(frame["timestamp"], source)
    # as a Series: pandas would infer a str dtype (NaN for None) from a plain object array
    out["context"] = pd.Series(_context_column(frame, source), dtype=object)
    return pd.DataFrame(out, columns=list(INTERACTION_COLUMNS))


def _check_event_types(event_type: pd.Series, source: str | None) -> None:
    """Event types are short names: no control characters (checked once per distinct type)."""
    for name in event_type.unique().tolist():
        if any(ord(ch) < 32 for ch in name):
            row = int(np.flatnonzero((event_type == name).to_numpy())[0])
            raise DataError(
                f"row {row} of the interactions: event_type {name!r} has control characters",
                file=source,
            )


def check_event_types(event_types: list[str], source: str | None) -> None:
    """``_check_event_types`` for a plain list: the same rule and message."""
    for name in dict.fromkeys(event_types):
        if any(ord(ch) < 32 for ch in name):
            raise DataError(
                f"row {event_types.index(name)} of the interactions: event_type {name!r} has "
                "control characters",
                file=source,
            )


def numeric_values(raw_value: pd.Series, source: str | None) -> np.ndarray:
    """Event values as float64 (NaN where absent); anything else non-numeric is an error."""
    value = pd.to_numeric(raw_value, errors="coerce").astype(np.float64)
    bad = (value.isna() & raw_value.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"row {row} of the interactions: value {raw_value.iloc[row]!r} is not a number",
            file=source,
        )
    return value.to_numpy()


def epoch_seconds(raw: pd.Series, source: str | None) -> np.ndarray:
    """Epoch seconds (int64); datetimes are converted, fractions of a second dropped."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        if raw.isna().any():
            row = int(np.flatnonzero(raw.isna().to_numpy())[0])
            raise DataError(f"row {row} of the interactions: timestamp is missing", file=source)
        if getattr(raw.dt, "tz", None) is not None:
            raw = raw.dt.tz_convert("UTC").dt.tz_localize(None)
        return (raw.astype("datetime64[s]").astype(np.int64)).to_numpy()
    numeric = pd.to_numeric(raw, errors="coerce")
    bad = numeric.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        shown = raw.iloc[row]
        reason = "is missing" if pd.isna(shown) else f"{shown!r} is not epoch seconds"
        raise DataError(f"row {row} of the interactions: timestamp {reason}", file=source)
    if numeric.dtype.kind == "f":
        return np.floor(numeric.to_numpy(dtype=np.float64)).astype(np.int64)
    return numeric.to_numpy(dtype=np.int64)


def prepare_items(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Catalogue rows for upsert: one per item id (the last wins), JSON-encoded attributes.

    Missing title/text/attributes are None, meaning "keep what the store has"; an empty
    attribute dict also counts as missing. ``active`` defaults to True.
    """
    if "item_id" not in frame.columns:
        raise DataError("items are missing the item_id column", file=source)
    frame = frame.reset_index(drop=True)
    ids = _string_column(frame, "item_id", source, MAX_ID_LENGTH, "items")
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
    ids = _string_column(frame, "user_id", source, MAX_ID_LENGTH, "users")
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
