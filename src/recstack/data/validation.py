"""The one validation of external ids, event types, values, timestamps and context.

File loaders, the store's bulk frames, its small-batch row path and the HTTP API all check
events with these rules, so a value the API accepts is one the store can hold, and every path
words a rejection the same way: ``row 3 of the interactions: timestamp 'soon' is not epoch
seconds`` for a batch, the part after the colon for a single value.

Three shapes of the same rules: single values (``check_*``), plain lists for small batches
(``event_columns``: no pandas unless a value has an unusual type, which is then handed to the
column rules so both always agree) and pandas columns for bulk frames.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recstack.data.schema import INTERACTION_COLUMNS
from recstack.errors import DataError

MAX_ID_LENGTH = 255  # users/items/interactions external id columns are VARCHAR(255)
MAX_EVENT_TYPE_LENGTH = 32  # interactions.event_type is VARCHAR(32)
MAX_EPOCH_SECONDS = 253_402_300_800  # year 10000: beyond it a time is a unit mistake
_INT64 = (-(2**63), 2**63)
_NUMBERS = frozenset({int, float, type(None)})
_NUL = "{} contains a NUL character"  # PostgreSQL text cannot hold one

EventColumns = list[list[Any]]  # INTERACTION_COLUMNS order, typed for the store


_OWN_ROW = -1  # ``_reported``: report the rejected cell's own row


class _Invalid(Exception):
    """One rejected cell: its row in the batch and the reason, worded for the user."""

    def __init__(self, row: int, reason: str) -> None:
        super().__init__(reason)
        self.row, self.reason = row, reason


@contextmanager
def _reported(what: str, source: str | None, row: int | None = _OWN_ROW) -> Iterator[None]:
    """``_Invalid`` as a ``DataError``: ``row N of the <what>: <reason>`` (the cell's own row
    by default, ``row`` when given, the bare reason for ``row=None``)."""
    try:
        yield
    except _Invalid as bad:
        at = bad.row if row == _OWN_ROW else row
        text = bad.reason if at is None else f"row {at} of the {what}: {bad.reason}"
        raise DataError(text, file=source) from None


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays (common in frames) as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)


def dumps_json(value: Any) -> str:
    """The one JSON encoding the store writes (numpy values as plain JSON), so texts compare."""
    return _ENCODER.encode(value)


def is_missing(value: Any) -> bool:
    """Whether one cell counts as missing the way ``pd.isna`` sees it (None, NaN, NA, NaT)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and value != value


def too_long(values: pd.Series, limit: int) -> np.ndarray:
    """Mask of strings longer than ``limit`` characters (missing ones are not)."""
    return (values.str.len() > limit).fillna(False).to_numpy(dtype=bool)


# ---- single values (the HTTP API, single upserts) -----------------------------------------------
def check_id(
    value: Any, column: str = "id", *, row: int | None = None, what: str = "interactions"
) -> str:
    """One external id as text; missing, empty, longer than ``MAX_ID_LENGTH`` or holding a
    NUL character is an error."""
    with _reported(what, None, row):
        return _texts([value], column, MAX_ID_LENGTH)[0]


def check_event_type(value: Any, *, row: int | None = None) -> str:
    """An event type: 1 to ``MAX_EVENT_TYPE_LENGTH`` characters, no control characters."""
    with _reported("interactions", None, row):
        names = _texts([value], "event_type", MAX_EVENT_TYPE_LENGTH, nul_ok=True)
        _check_names(names)
    return names[0]


def check_value(value: Any, *, row: int | None = None) -> float | None:
    """An event value as a float (None when absent); text must be a number."""
    with _reported("interactions", None, row):
        return _floats([value])[0]


def check_timestamp(value: Any, *, row: int | None = None) -> int:
    """Epoch seconds (fractions dropped); datetimes convert, anything else is an error."""
    with _reported("interactions", None, row):
        return _seconds([value])[0]


def check_context(value: Any, *, row: int | None = None) -> str | None:
    """Context as the JSON text the store keeps (None when absent)."""
    with _reported("interactions", None, row):
        return None if is_missing(value) else _context_text(value, 0)


# ---- small batches as plain lists ---------------------------------------------------------------
def event_columns(rows: Sequence[Sequence[Any]], source: str | None = "events") -> EventColumns:
    """Events (tuples in ``INTERACTION_COLUMNS`` order) checked and typed, as seven columns:
    ids and type as str, value float or None, timestamp int, context JSON text or None."""
    width = len(INTERACTION_COLUMNS)
    for row, fields in enumerate(rows):
        if len(fields) != width:
            raise DataError(
                f"row {row} of the interactions has {len(fields)} fields; events need {width} "
                f"({', '.join(INTERACTION_COLUMNS)})",
                file=source,
            )
    if not rows:
        return [[] for _ in INTERACTION_COLUMNS]
    event_ids, users, items, types, values, stamps, contexts = map(list, zip(*rows, strict=True))
    with _reported("interactions", source):
        out = [
            _texts(event_ids, "event_id", MAX_ID_LENGTH),
            _texts(users, "user_id", MAX_ID_LENGTH),
            _texts(items, "item_id", MAX_ID_LENGTH),
            _texts(types, "event_type", MAX_EVENT_TYPE_LENGTH, nul_ok=True),
        ]
        _check_names(out[3])
        out += [_floats(values), _seconds(stamps), _contexts(contexts)]
    return out


def text_values(
    values: Sequence[Any],
    column: str,
    source: str | None,
    max_length: int,
    what: str,
    *,
    nul_ok: bool = False,
) -> list[str]:
    """Strings with no missing, empty, over-long or (unless ``nul_ok``) NUL-holding values,
    checked in that order; event types pass ``nul_ok`` (their control-character rule covers
    it)."""
    with _reported(what, source):
        return _texts(values, column, max_length, nul_ok)


def _texts(values: Sequence[Any], column: str, max_length: int, nul_ok: bool = False) -> list[str]:
    if all(type(v) is str for v in values):
        out = list(values)
    else:
        out = [v if type(v) is str else (None if is_missing(v) else str(v)) for v in values]
        if None in out:
            raise _Invalid(out.index(None), f"{column} is missing")
    lengths = list(map(len, out))
    if lengths and min(lengths) == 0:
        raise _Invalid(lengths.index(0), f"{column} is empty")
    if lengths and max(lengths) > max_length:
        row = next(r for r, n in enumerate(lengths) if n > max_length)
        raise _Invalid(row, f"{column} is longer than {max_length} characters")
    if not nul_ok and "\x00" in "".join(out):
        raise _Invalid(next(r for r, v in enumerate(out) if "\x00" in v), _NUL.format(column))
    return out


def _check_names(event_types: list[str]) -> None:
    """Event types are short names: no control characters (checked once per distinct type)."""
    for name in dict.fromkeys(event_types):
        if any(ord(ch) < 32 for ch in name):
            raise _Invalid(event_types.index(name), f"event_type {name!r} has control characters")


def _floats(raw: list[Any]) -> list[float | None]:
    if set(map(type, raw)) <= _NUMBERS:
        return [None if v is None or v != v else float(v) for v in raw]
    numbers = _numeric(pd.Series(raw, dtype=object))  # text, numpy scalars, bools: column rules
    return [None if v != v else float(v) for v in numbers.tolist()]


def _seconds(raw: list[Any]) -> list[int]:
    kinds = set(map(type, raw))
    if kinds == {int} and _INT64[0] <= min(raw) and max(raw) < _INT64[1]:
        return raw
    if kinds <= {int, float} and all(
        _INT64[0] <= v < _INT64[1] if type(v) is int else math.isfinite(v) for v in raw
    ):
        return [v if type(v) is int else math.floor(v) for v in raw]
    return _epoch_seconds(pd.Series(raw)).tolist()  # missing, datetimes, text: column rules


def _contexts(raw: list[Any]) -> list[str | None]:
    if all(c is None for c in raw):
        return raw
    return [None if is_missing(c) else _context_text(c, row) for row, c in enumerate(raw)]


def _context_text(value: Any, row: int) -> str:
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError as exc:
            raise _Invalid(row, f"context is not valid JSON ({exc})") from None
        return value
    try:
        return dumps_json(value)
    except TypeError as exc:
        raise _Invalid(row, f"context cannot be stored as JSON ({exc})") from None


# ---- pandas columns (bulk frames) ---------------------------------------------------------------
def string_column(
    frame: pd.DataFrame,
    column: str,
    source: str | None,
    max_length: int,
    what: str,
    *,
    nul_ok: bool = False,
) -> pd.Series:
    """``column`` as strings, checked as ``text_values`` checks a list."""
    values = frame[column]
    if values.dtype.kind in "iu":
        values = values.astype(str)
    with _reported(what, source):
        _first(values.isna().to_numpy(), f"{column} is missing")
        values = values.astype(str)
        lengths = values.str.len().to_numpy()
        _first(lengths == 0, f"{column} is empty")
        _first(lengths > max_length, f"{column} is longer than {max_length} characters")
        if not nul_ok and _holds_nul(values):
            _first(values.str.contains("\x00", regex=False).to_numpy(), _NUL.format(column))
    return values


def check_event_type_column(event_type: pd.Series, source: str | None) -> None:
    """``_check_names`` for a column: the same rule and message, once per distinct type."""
    for name in event_type.unique().tolist():
        if any(ord(ch) < 32 for ch in name):
            row = int(np.flatnonzero((event_type == name).to_numpy())[0])
            raise DataError(
                f"row {row} of the interactions: event_type {name!r} has control characters",
                file=source,
            )


def numeric_values(raw_value: pd.Series, source: str | None) -> np.ndarray:
    """Event values as float64 (NaN where absent); anything else non-numeric is an error."""
    with _reported("interactions", source):
        return _numeric(raw_value)


def epoch_seconds(raw: pd.Series, source: str | None) -> np.ndarray:
    """Epoch seconds (int64); datetimes are converted, fractions of a second dropped."""
    with _reported("interactions", source):
        return _epoch_seconds(raw)


def context_column(frame: pd.DataFrame, source: str | None) -> np.ndarray:
    """Context as JSON text or None; dicts are encoded, strings must be valid JSON."""
    out = np.full(len(frame), None, dtype=object)
    if "context" not in frame.columns:
        return out
    raw = frame["context"].to_numpy(dtype=object)
    with _reported("interactions", source):
        for row in np.flatnonzero(~pd.isna(frame["context"]).to_numpy()).tolist():
            out[row] = _context_text(raw[row], row)
    return out


def _holds_nul(values: pd.Series) -> bool:
    """Whether any string holds a NUL character: for Arrow-backed strings one scan of the
    UTF-8 bytes for a zero byte (only NUL encodes to one), far faster than a search per
    string."""
    arrow = pa.array(values.array) if hasattr(values.array, "__arrow_array__") else None
    chunks = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    if arrow is None or not all(
        pa.types.is_string(c.type) or pa.types.is_large_string(c.type) for c in chunks
    ):
        return bool(values.str.contains("\x00", regex=False).any())
    for chunk in chunks:
        offsets, data = chunk.buffers()[1:3]
        if data is None or not len(chunk):
            continue
        width = 8 if pa.types.is_large_string(chunk.type) else 4
        ends = np.frombuffer(offsets, dtype=f"<i{width}")[chunk.offset :][: len(chunk) + 1]
        if not np.frombuffer(data, dtype=np.uint8)[ends[0] : ends[-1]].all():
            return True
    return False


def _first(bad: np.ndarray, reason: str) -> None:
    if bad.any():
        raise _Invalid(int(np.flatnonzero(bad)[0]), reason)


def _numeric(raw_value: pd.Series) -> np.ndarray:
    value = pd.to_numeric(raw_value, errors="coerce").astype(np.float64)
    bad = (value.isna() & raw_value.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise _Invalid(row, f"value {raw_value.iloc[row]!r} is not a number")
    return value.to_numpy()


def _epoch_seconds(raw: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(raw):
        _first(raw.isna().to_numpy(), "timestamp is missing")
        if getattr(raw.dt, "tz", None) is not None:
            raw = raw.dt.tz_convert("UTC").dt.tz_localize(None)
        return (raw.astype("datetime64[s]").astype(np.int64)).to_numpy()
    numeric = pd.to_numeric(raw, errors="coerce")
    bad = numeric.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        shown = raw.iloc[row]
        reason = "is missing" if pd.isna(shown) else f"{shown!r} is not epoch seconds"
        raise _Invalid(row, f"timestamp {reason}")
    if numeric.dtype.kind == "f":
        return np.floor(numeric.to_numpy(dtype=np.float64)).astype(np.int64)
    return numeric.to_numpy(dtype=np.int64)
