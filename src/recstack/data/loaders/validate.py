"""Validation shared by every loader: raw columns in, canonical interactions and row errors out.

Checks run as vectorised masks over whole columns (missing ids, unparseable timestamps,
non-numeric values, over-long event types, context that is not a JSON object). Python only
visits the rows that fail, to word their error. Each error names the file, the physical line
(see ``readers``) and every reason the row was rejected.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from recstack.data.event_ids import event_ids as derived_event_ids
from recstack.data.loaders.cells import (
    check_length,
    clean_ids,
    clean_optional_ids,
    parse_context,
    parse_timestamps,
    parse_values,
)
from recstack.data.loaders.checks import RowChecks, finish, resolve_column
from recstack.data.loaders.mapping import ColumnMapping
from recstack.data.loaders.readers import RawTable
from recstack.data.loaders.result import OnError, empty_interactions, interactions_frame
from recstack.data.validation import MAX_EVENT_TYPE_LENGTH, too_long
from recstack.errors import DataError

EventIdMaker = Callable[[pd.DataFrame], pd.Series]


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
    if len(frame.columns) == 0:  # nothing parsed: an empty file, or only broken lines
        return empty_interactions(), finish(raw, checks, on_error)[1]
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
    given_ids = None
    if id_col is not None:
        given_ids = clean_optional_ids(frame[id_col])
        check_length(given_ids, "event_id", id_col, checks)

    keep, errors = finish(raw, checks, on_error)
    good = pd.DataFrame(
        {
            "user_id": users[keep].reset_index(drop=True),
            "item_id": items[keep].reset_index(drop=True),
            "event_type": event_types[keep].reset_index(drop=True),
            "timestamp": timestamps[keep],
        }
    )
    given = given_ids[keep].reset_index(drop=True) if given_ids is not None else None
    if make_event_ids is not None:
        event_ids = make_event_ids(good)
    elif given is not None and given.notna().all():
        event_ids = given
    else:
        event_ids = derived_event_ids(good)
        if given is not None:
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


def clean_event_types(
    frame: pd.DataFrame, column: str | None, mapping: ColumnMapping, checks: RowChecks
) -> pd.Series:
    """Event types (renamed by ``event_type_map``); empty cells get the default type."""
    if column is None:
        return pa.repeat(pa.scalar(mapping.default_event_type), len(frame)).to_pandas()
    types = clean_optional_ids(frame[column]).fillna(mapping.default_event_type)
    if mapping.event_type_map:
        types = types.replace(mapping.event_type_map)
    checks.add(
        too_long(types, MAX_EVENT_TYPE_LENGTH),
        lambda r: (
            f"event_type {types.iloc[r][:40]!r}... longer than "
            f"{MAX_EVENT_TYPE_LENGTH} characters (column {column!r})"
        ),
    )
    return types
