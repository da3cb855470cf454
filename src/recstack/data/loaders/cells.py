"""Column parsers: ids, numbers, timestamps and JSON context, each as one vectorised pass.

Every parser returns the parsed column and registers the rows it rejects with a ``RowChecks``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recstack.data.loaders.checks import RowChecks, show_cell
from recstack.data.validation import MAX_EPOCH_SECONDS, MAX_ID_LENGTH, too_long

MS_THRESHOLD = 1e11


def clean_ids(col: pd.Series, field: str, column: str, checks: RowChecks) -> pd.Series:
    """Ids as stripped strings; empty, null, over-long and nested (object/list) values are
    errors."""
    nested = _nested_mask(col)
    values = clean_optional_ids(col)
    missing = values.isna().to_numpy() & ~nested
    checks.add(missing, lambda r: f"missing {field} (column {column!r})")
    check_length(values, field, column, checks)
    checks.add(
        nested,
        lambda r: (
            f"{field} must be a string or a number, not {show_cell(col.iloc[r])} "
            f"(column {column!r})"
        ),
    )
    return values.fillna("")


def check_length(values: pd.Series, field: str, column: str, checks: RowChecks) -> None:
    """Ids longer than the store keeps (``MAX_ID_LENGTH`` characters) are errors."""
    checks.add(
        too_long(values, MAX_ID_LENGTH),
        lambda r: (
            f"{field} is {len(values.iloc[r])} characters long, more than {MAX_ID_LENGTH} "
            f"(column {column!r})"
        ),
    )


def clean_optional_ids(col: pd.Series) -> pd.Series:
    """Stripped strings with NaN where empty; integral floats lose their ``.0``."""
    if pd.api.types.is_float_dtype(col.dtype):
        v = col.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(v)
        if finite.any() and np.all(v[finite] == np.floor(v[finite])):
            col = pd.Series(v, index=col.index).astype("Int64")
    values = col.astype("str").str.strip()
    return values.where(values != "", np.nan).reset_index(drop=True)


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
    checks.add(
        bad, lambda r: f"bad value {show_cell(col.iloc[r])}: not a number (column {column!r})"
    )
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
        lambda r: (
            f"bad timestamp {show_cell(col.iloc[r])}: expected {expected} (column {column!r})"
        ),
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


def _nested_mask(col: pd.Series) -> np.ndarray:
    if col.dtype != object:
        return np.zeros(len(col), dtype=bool)
    return col.map(lambda v: isinstance(v, dict | list | tuple | np.ndarray)).to_numpy(dtype=bool)
