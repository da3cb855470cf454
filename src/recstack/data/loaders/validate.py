"""Validation shared by every loader: raw columns in, canonical interactions and row errors out.

Checks run as vectorised masks over whole columns (missing ids, unparseable timestamps,
non-numeric values, over-long event types, context that is not a JSON object). Python only
visits the rows that fail, to word their error. Each error names the file, the physical line
(see ``readers``) and every reason the row was rejected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recstack.data.loaders.mapping import ColumnMapping
from recstack.data.loaders.readers import RawTable
from recstack.data.loaders.result import OnError, interactions_frame
from recstack.errors import ConfigError, DataError

MAX_EVENT_TYPE_LENGTH = 32
# epoch seconds beyond year 9999 are certainly a unit mistake
MAX_EPOCH_SECONDS = 253_402_300_800
MS_THRESHOLD = 1e11
EventIdMaker = Callable[[pd.DataFrame], pd.Series]


class RowChecks:
    """Collects per-row failure masks and words an error for each failing row."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._checks: list[tuple[np.ndarray, Callable[[int], str]]] = []

    def add(self, bad: np.ndarray, describe: Callable[[int], str]) -> None:
        """Register rows where ``bad`` holds; ``describe(row)`` words the reason for one row."""
        bad = np.asarray(bad, dtype=bool)
        if bad.any():
            self._checks.append((bad, describe))

    def bad_mask(self) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        for bad, _ in self._checks:
            mask |= bad
        return mask

    def errors(self, raw: RawTable) -> list[DataError]:
        """One DataError per failing row, with its file and physical line."""
        rows = np.flatnonzero(self.bad_mask())
        if len(rows) == 0:
            return []
        lines = raw.line_of(raw.frame.index.to_numpy()[rows])
        out = []
        for row, line in zip(rows.tolist(), lines.tolist(), strict=True):
            reasons = [describe(row) for bad, describe in self._checks if bad[row]]
            out.append(DataError("; ".join(reasons), file=raw.file, line=int(line)))
        return out


def resolve_column(
    raw: RawTable, mapping: ColumnMapping, name: str, *, required: bool = False
) -> str | None:
    """The source column for mapping field ``name``, or None when the field is off or absent.

    Raises:
        ConfigError: a required column, or one the mapping named explicitly, is not in the file.
    """
    column = getattr(mapping, name)
    if column is None:
        return None
    if column in raw.frame.columns:
        return column
    if required or not mapping.is_default(name):
        available = ", ".join(map(str, raw.frame.columns)) or "(none)"
        raise ConfigError(
            f"{raw.file}: column {column!r} (for {name}) not found; available columns: {available}"
        )
    return None


def finish(
    raw: RawTable, checks: RowChecks, on_error: OnError
) -> tuple[np.ndarray, list[DataError]]:
    """Merge parse errors with row errors; raise the first under "fail", else return the keep
    mask and the skipped rows in line order."""
    errors = sorted(raw.errors + checks.errors(raw), key=lambda e: e.line or 0)
    if errors and on_error == "fail":
        raise errors[0]
    return ~checks.bad_mask(), errors


def build_interactions(
    raw: RawTable,
    mapping: ColumnMapping,
    on_error: OnError = "fail",
    *,
    make_event_ids: EventIdMaker | None = None,
    value_required: bool = False,
) -> tuple[pd.DataFrame, list[DataError]]:
    """Validate raw rows and turn them into a canonical interactions frame.

    Args:
        raw: the file as read.
        mapping: which source column holds each field.
        on_error: "fail" raises the first bad row (lowest line); "skip" drops bad rows.
        make_event_ids: builds ids from the valid canonical rows; default: the mapped event_id
            column where filled, otherwise a hash of the row content.
        value_required: reject rows without a value (ratings files).

    Returns:
        The canonical frame and the rows dropped (empty under "fail").
    """
    frame = raw.frame
    checks = RowChecks(len(frame))
    user_col = resolve_column(raw, mapping, "user_id", required=True)
    item_col = resolve_column(raw, mapping, "item_id", required=True)
    ts_col = resolve_column(raw, mapping, "timestamp", required=True)
    type_col = resolve_column(raw, mapping, "event_type")
    value_col = resolve_column(raw, mapping, "value")
    id_col = resolve_column(raw, mapping, "event_id")
    context_col = mapping.context or ("context" if "context" in frame.columns else None)
    if context_col is not None and context_col not in frame.columns:
        resolve_column(raw, mapping, "context")

    users = clean_ids(frame[user_col], "user_id", user_col, checks)
    items = clean_ids(frame[item_col], "item_id", item_col, checks)
    event_types = clean_event_types(frame, type_col, mapping, checks)
    if value_col is not None:
        values = parse_values(frame[value_col], value_col, checks, required=value_required)
    else:
        values = np.full(len(frame), np.nan)
        if value_required:
            checks.add(np.ones(len(frame), bool), lambda r: "missing value")
    if ts_col is not None:
        timestamps = parse_timestamps(frame[ts_col], ts_col, mapping.timestamp_unit, checks)
    else:
        timestamps = np.zeros(len(frame), dtype=np.int64)
    context = parse_context(frame[context_col], context_col, checks) if context_col else None
    given_ids = clean_optional_ids(frame[id_col]) if id_col is not None else None

    keep, errors = finish(raw, checks, on_error)
    good = pd.DataFrame(
        {
            "user_id": users[keep].reset_index(drop=True),
            "item_id": items[keep].reset_index(drop=True),
            "event_type": event_types[keep].reset_index(drop=True),
            "timestamp": timestamps[keep],
        }
    )
    if make_event_ids is not None:
        event_ids = make_event_ids(good)
    else:
        event_ids = content_event_ids(good)
        if given_ids is not None:
            given = given_ids[keep].reset_index(drop=True)
            event_ids = given.where(given.notna(), event_ids)
    out = interactions_frame(
        event_ids,
        good["user_id"],
        good["item_id"],
        good["event_type"],
        values[keep],
        good["timestamp"],
        None if context is None else context[keep],
    )
    return out, errors


def clean_ids(col: pd.Series, field: str, column: str, checks: RowChecks) -> pd.Series:
    """Ids as stripped strings; empty, null and nested (object/list) values are errors."""
    nested = _nested_mask(col)
    values = clean_optional_ids(col)
    missing = values.isna().to_numpy() & ~nested
    checks.add(missing, lambda r: f"missing {field} (column {column!r})")
    checks.add(
        nested,
        lambda r: f"{field} must be a string or a number, not {show_cell(col.iloc[r])} "
        f"(column {column!r})",
    )
    return values.fillna("")


def clean_optional_ids(col: pd.Series) -> pd.Series:
    """Stripped strings with NaN where empty; integral floats lose their ``.0``."""
    if pd.api.types.is_float_dtype(col.dtype):
        v = col.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(v)
        if finite.any() and np.all(v[finite] == np.floor(v[finite])):
            col = pd.Series(v, index=col.index).astype("Int64")
    values = col.astype("str").str.strip()
    return values.where(values != "", np.nan).reset_index(drop=True)


def clean_event_types(
    frame: pd.DataFrame, column: str | None, mapping: ColumnMapping, checks: RowChecks
) -> pd.Series:
    """Event types (renamed by ``event_type_map``); empty cells get the default type."""
    if column is None:
        return pa.repeat(pa.scalar(mapping.default_event_type), len(frame)).to_pandas()
    types = clean_optional_ids(frame[column]).fillna(mapping.default_event_type)
    if mapping.event_type_map:
        types = types.replace(mapping.event_type_map)
    too_long = (types.str.len() > MAX_EVENT_TYPE_LENGTH).to_numpy()
    checks.add(
        too_long,
        lambda r: f"event_type {types.iloc[r][:40]!r}... longer than "
        f"{MAX_EVENT_TYPE_LENGTH} characters (column {column!r})",
    )
    return types


def parse_values(
    col: pd.Series, column: str, checks: RowChecks, *, required: bool = False
) -> np.ndarray:
    """Values as float64 (NaN when empty); text that is not a finite number is an error."""
    if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
        v = col.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(v)
        bad = np.isinf(v)
    else:
        text = col.astype("str").str.strip()
        missing = (text.isna() | (text == "")).to_numpy()
        v = to_float(text.where(~missing, None))
        bad = ~missing & ~np.isfinite(v)
    checks.add(bad, lambda r: f"bad value {show_cell(col.iloc[r])}: not a number (column {column!r})")
    if required:
        checks.add(missing, lambda r: f"missing value (column {column!r})")
    return np.where(bad, np.nan, v)


def parse_timestamps(col: pd.Series, column: str, unit: str, checks: RowChecks) -> np.ndarray:
    """Event times as int64 epoch seconds (UTC).

    Numbers are epoch seconds or milliseconds (``auto``: milliseconds above 1e11); strings are
    numbers or ISO 8601 dates, naive ones taken as UTC. Datetime columns convert directly.
    """
    n = len(col)
    seconds = np.zeros(n, dtype=np.int64)
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col.dtype):
        missing = col.isna().to_numpy()
        bad = np.zeros(n, dtype=bool)
        seconds[~missing] = _datetimes_to_seconds(col[~missing])
    elif pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        v = col.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(v)
        if unit == "iso":
            bad = ~missing
        else:
            secs, bad = _numbers_to_seconds(v, unit)
            seconds = secs
    else:
        text = col.astype("str").str.strip()
        missing = (text.isna() | (text == "")).to_numpy()
        numeric = to_float(text.where(~missing, None))
        is_number = ~missing & ~np.isnan(numeric)
        bad = np.zeros(n, dtype=bool)
        if unit == "iso":
            as_iso = ~missing
        else:
            secs, bad_num = _numbers_to_seconds(numeric, unit)
            seconds[is_number] = secs[is_number]
            bad |= is_number & bad_num
            as_iso = ~missing & ~is_number
            if unit in ("s", "ms"):
                bad |= as_iso
                as_iso = np.zeros(n, dtype=bool)
        if as_iso.any():
            parsed = pd.to_datetime(
                text[as_iso], format="ISO8601", utc=True, errors="coerce"
            ).reset_index(drop=True)
            ok = parsed.notna().to_numpy()
            iso_rows = np.flatnonzero(as_iso)
            seconds[iso_rows[ok]] = _datetimes_to_seconds(parsed[ok])
            bad[iso_rows[~ok]] = True
    expected = {
        "auto": "epoch seconds, epoch milliseconds or an ISO 8601 date",
        "s": "epoch seconds",
        "ms": "epoch milliseconds",
        "iso": "an ISO 8601 date",
    }[unit]
    checks.add(missing, lambda r: f"missing timestamp (column {column!r})")
    checks.add(
        bad,
        lambda r: f"bad timestamp {show_cell(col.iloc[r])}: expected {expected} (column {column!r})",
    )
    return seconds


def to_float(text: pd.Series) -> np.ndarray:
    """Strings to float64, NaN where null or not a number.

    pyarrow's parser handles the common all-valid column quickly; pandas handles the rest.
    """
    try:
        return pc.cast(pa.array(text, from_pandas=True), pa.float64()).to_numpy(
            zero_copy_only=False
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        values = text.astype(object).to_numpy()
        return pd.to_numeric(values, errors="coerce").astype(np.float64)


def _numbers_to_seconds(v: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        divide = np.abs(v) > MS_THRESHOLD if unit == "auto" else np.full(len(v), unit == "ms")
        secs = np.floor(np.where(divide, v / 1000.0, v))
        bad = ~np.isnan(v) & ~(np.abs(secs) < MAX_EPOCH_SECONDS)
    out = np.zeros(len(v), dtype=np.int64)
    good = ~np.isnan(secs) & ~bad
    out[good] = secs[good].astype(np.int64)
    return out, bad


def _datetimes_to_seconds(values: pd.Series) -> np.ndarray:
    s = pd.Series(values)
    if s.dt.tz is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.to_numpy(dtype="datetime64[s]").astype(np.int64)


def parse_context(col: pd.Series, column: str, checks: RowChecks) -> np.ndarray:
    """Context as compact JSON object strings (None where empty); anything else is an error."""
    out = np.full(len(col), None, dtype=object)
    bad = np.zeros(len(col), dtype=bool)
    values = col.to_numpy(dtype=object)
    present = np.flatnonzero(pd.notna(col).to_numpy())
    for row in present.tolist():
        value = values[row]
        if isinstance(value, str):
            if not value.strip():
                continue
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                bad[row] = True
                continue
        if isinstance(value, dict):
            out[row] = json.dumps(_drop_nulls(value), ensure_ascii=False, separators=(",", ":"))
        else:
            bad[row] = True
    checks.add(
        bad,
        lambda r: f"context {show_cell(col.iloc[r])} is not a JSON object (column {column!r})",
    )
    return out


def _drop_nulls(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def content_event_ids(frame: pd.DataFrame) -> pd.Series:
    """Deterministic event ids from the row content: re-reading a file gives the same ids.

    The id hashes (user, item, type, timestamp, occurrence) where occurrence counts earlier rows
    with the same four fields, so exact repeats within a file stay distinct events.
    """
    key = (
        frame["user_id"].astype("str")
        + "\x1f"
        + frame["item_id"].astype("str")
        + "\x1f"
        + frame["event_type"].astype("str")
        + "\x1f"
        + frame["timestamp"].astype("str")
    )
    key = with_occurrence(key, "\x1f")
    digests = [hashlib.blake2b(k.encode(), digest_size=8).hexdigest() for k in key.tolist()]
    return pd.Series(digests, index=frame.index, dtype="str")


def with_occurrence(keys: pd.Series, sep: str, *, first_bare: bool = False) -> pd.Series:
    """Append the occurrence number (0, 1, ...) of each key among equal earlier keys.

    With ``first_bare`` the first occurrence keeps its key unchanged and only repeats get a
    suffix; otherwise every key gets one.
    """
    keys = keys.astype("str").reset_index(drop=True)
    dup = keys.duplicated(keep=False).to_numpy()
    if not dup.any():
        return keys if first_bare else keys + sep + "0"
    occurrence = pd.Series(np.zeros(len(keys), dtype=np.int64))
    occurrence[dup] = keys[dup].groupby(keys[dup], sort=False).cumcount().to_numpy()
    suffix = sep + occurrence.astype("str")
    if first_bare:
        return keys.where(occurrence == 0, keys + suffix)
    return keys + suffix


def _nested_mask(col: pd.Series) -> np.ndarray:
    if col.dtype != object:
        return np.zeros(len(col), dtype=bool)
    return col.map(lambda v: isinstance(v, dict | list | tuple | np.ndarray)).to_numpy(dtype=bool)


def show_cell(value: Any) -> str:
    """A short printable form of a raw cell for error messages."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
