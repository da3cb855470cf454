"""Items and users from raw tables: ids, titles, texts, attributes and the active flag.

Attribute columns become typed values: a column whose every filled cell is a number becomes
numbers (CSV cells arrive as text), strings containing the list separator become lists
("Action|Comedy" -> ["Action", "Comedy"]), empty cells are left out of the dict. A column of
JSON objects (``attributes_json``) is merged in first, so named columns win over it.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from recstack.data.loaders.cells import clean_ids
from recstack.data.loaders.checks import RowChecks, finish, resolve_column, show_cell
from recstack.data.loaders.mapping import ColumnMapping
from recstack.data.loaders.readers import RawTable
from recstack.data.loaders.result import OnError, items_frame, users_frame
from recstack.errors import ConfigError, DataError

TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y"})
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n"})


def build_items(
    raw: RawTable, mapping: ColumnMapping, on_error: OnError = "fail"
) -> tuple[pd.DataFrame, list[DataError]]:
    """Validate raw rows into a canonical items frame; a repeated item id keeps its last row."""
    frame = raw.frame
    checks = RowChecks(len(frame))
    if len(frame.columns) == 0:  # nothing parsed: an empty file, or only broken lines
        return items_frame([]), finish(raw, checks, on_error)[1]
    id_col = resolve_column(raw, mapping, "item_id", required=True)
    ids = clean_ids(frame[id_col], "item_id", id_col, checks)
    title_col = resolve_column(raw, mapping, "title")
    text_col = resolve_column(raw, mapping, "text")
    attributes = build_attributes(raw, mapping, checks)
    active_col = mapping.active or ("active" if "active" in frame.columns else None)
    if active_col is not None and active_col not in frame.columns:
        resolve_column(raw, mapping, "active")
    active = parse_active(frame[active_col], active_col, checks) if active_col else None

    keep, errors = finish(raw, checks, on_error)
    items = items_frame(
        ids[keep],
        _optional_strings(frame[title_col])[keep] if title_col else None,
        _optional_strings(frame[text_col])[keep] if text_col else None,
        [a for a, k in zip(attributes, keep, strict=True) if k],
        None if active is None else active[keep],
    )
    items = items.drop_duplicates("item_id", keep="last").reset_index(drop=True)
    return items, errors


def build_users(
    raw: RawTable, mapping: ColumnMapping, on_error: OnError = "fail"
) -> tuple[pd.DataFrame, list[DataError]]:
    """Validate raw rows into a canonical users frame; a repeated user id keeps its last row."""
    checks = RowChecks(len(raw.frame))
    if len(raw.frame.columns) == 0:
        return users_frame([]), finish(raw, checks, on_error)[1]
    id_col = resolve_column(raw, mapping, "user_id", required=True)
    ids = clean_ids(raw.frame[id_col], "user_id", id_col, checks)
    attributes = build_attributes(raw, mapping, checks)
    keep, errors = finish(raw, checks, on_error)
    users = users_frame(ids[keep], [a for a, k in zip(attributes, keep, strict=True) if k])
    return users.drop_duplicates("user_id", keep="last").reset_index(drop=True), errors


def build_attributes(raw: RawTable, mapping: ColumnMapping, checks: RowChecks) -> list[dict]:
    """One attributes dict per row from the JSON column and the named attribute columns."""
    frame = raw.frame
    missing = [c for c in mapping.attributes if c not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns))
        raise ConfigError(
            f"{raw.file}: attribute column {missing[0]!r} not found; available columns: {available}"
        )
    json_col = resolve_column(raw, mapping, "attributes_json")
    if json_col is not None and json_col not in mapping.attributes:
        rows = parse_json_objects(frame[json_col], json_col, checks)
    else:
        rows = [{} for _ in range(len(frame))]
    for column in mapping.attributes:
        values = typed_attribute(frame[column], mapping.list_separator)
        for row, value in zip(rows, values, strict=True):
            if value is not None:
                row[column] = value
    return rows


def typed_attribute(col: pd.Series, separator: str) -> list[Any]:
    """Cells of one attribute column as Python values (None where empty)."""
    if col.dtype == object and col.map(lambda v: isinstance(v, dict | list | np.ndarray)).any():
        return [plain_value(v) for v in col.tolist()]
    if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        return [plain_value(v) for v in col.astype(object).tolist()]
    text = col.astype("str").str.strip()
    filled = text.notna() & (text != "")
    numbers = pd.to_numeric(text.where(filled, None), errors="coerce")
    if filled.any() and numbers[filled].notna().all():
        integral = bool((numbers[filled] == np.floor(numbers[filled])).all())
        out = numbers.astype("Int64" if integral else "float64").astype(object)
        return [None if pd.isna(v) else (int(v) if integral else float(v)) for v in out]
    values: list[Any] = []
    for cell in text.where(filled, None).tolist():
        if cell is None or cell != cell:
            values.append(None)
        elif separator and separator in cell:
            values.append([part.strip() for part in cell.split(separator) if part.strip()])
        else:
            values.append(cell)
    return values


def plain_value(v: Any) -> Any:
    """A cell as plain JSON-able Python: numpy scalars and arrays unwrapped, NaN/NA as None,
    and null entries dropped from nested objects."""
    if isinstance(v, np.ndarray):
        return [plain_value(x) for x in v.tolist()]
    if isinstance(v, dict):
        return {k: plain_value(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [plain_value(x) for x in v]
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def parse_json_objects(col: pd.Series, column: str, checks: RowChecks) -> list[dict]:
    """Cells holding a JSON object (as text or already parsed) as dicts; empty cells give {}."""
    out: list[dict] = []
    bad = np.zeros(len(col), dtype=bool)
    for row, value in enumerate(col.tolist()):
        if isinstance(value, str):
            if not value.strip():
                out.append({})
                continue
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = None
                bad[row] = True
        elif value is None or (isinstance(value, float) and value != value) or value is pd.NA:
            out.append({})
            continue
        if isinstance(value, dict):
            out.append(plain_value(value))
        else:
            bad[row] = True
            out.append({})
    checks.add(
        bad,
        lambda r: f"attributes {show_cell(col.iloc[r])} is not a JSON object (column {column!r})",
    )
    return out


def parse_active(col: pd.Series, column: str, checks: RowChecks) -> np.ndarray:
    """Booleans from bool columns, numbers (0/1) or words (true/false, yes/no); empty = True."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.fillna(True).to_numpy(dtype=bool)
    text = col.astype("str").str.strip().str.lower()
    empty = (text.isna() | (text == "")).to_numpy()
    is_true = text.isin(TRUE_WORDS).to_numpy()
    is_false = text.isin(FALSE_WORDS).to_numpy()
    checks.add(
        ~empty & ~is_true & ~is_false,
        lambda r: f"active {show_cell(col.iloc[r])} is not a boolean (column {column!r})",
    )
    return ~is_false


def _optional_strings(col: pd.Series) -> np.ndarray:
    """Object array of stripped strings, None where empty."""
    text = col.astype("str").str.strip()
    text = text.where(text.notna() & (text != ""), None)
    return text.astype(object).where(text.notna(), None).to_numpy(dtype=object)
