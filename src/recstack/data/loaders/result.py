"""LoadedData, what every loader returns, and builders for frames in the canonical shape.

Every loader hands the store the same three frames (see ``recstack.data.schema``), so the store
never needs to know where data came from. The builders here fix the column order and dtypes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from recstack.data.schema import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS
from recstack.errors import DataError

OnError = Literal["fail", "skip"]
ON_ERROR_CHOICES: tuple[str, ...] = ("fail", "skip")


@dataclass
class LoadedData:
    """Interactions, items and users read from one source, in the canonical shape.

    Attributes:
        interactions: exactly ``INTERACTION_COLUMNS``: event_id, user_id, item_id, event_type
            (str), value (float64, NaN if none), timestamp (int64 epoch seconds, UTC), context
            (JSON string or None).
        items: exactly ``ITEM_COLUMNS``: item_id (str), title and text (str or None),
            attributes (dict), active (bool); ``None`` when the source has no catalogue.
        users: exactly ``USER_COLUMNS``: user_id (str), attributes (dict), or ``None``.
        skipped: rows dropped under ``on_error="skip"``, each naming its file, line and reason.
        source: what was read (a path or a description), for logs and reports.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    skipped: list[DataError] = field(default_factory=list)
    source: str = ""

    def __repr__(self) -> str:
        parts = [f"{len(self.interactions)} interactions"]
        if self.items is not None:
            parts.append(f"{len(self.items)} items")
        if self.users is not None:
            parts.append(f"{len(self.users)} users")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        return f"LoadedData({', '.join(parts)}, source={self.source!r})"


def check_on_error(on_error: str) -> None:
    """Reject an ``on_error`` other than "fail" or "skip" early, with a clear message."""
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")


def interactions_frame(
    event_id: Any,
    user_id: Any,
    item_id: Any,
    event_type: Any,
    value: Any,
    timestamp: Any,
    context: Any = None,
) -> pd.DataFrame:
    """A canonical interactions frame from column-like inputs (arrays, Series or pyarrow arrays).

    ``context`` may be None (no context for any event) or one JSON string / None per event.
    """
    columns = {
        "event_id": _str_column(event_id),
        "user_id": _str_column(user_id),
        "item_id": _str_column(item_id),
        "event_type": _str_column(event_type),
        "value": np.asarray(value, dtype=np.float64),
        "timestamp": np.asarray(timestamp, dtype=np.int64),
    }
    n = len(columns["event_id"])
    ctx = np.full(n, None, dtype=object) if context is None else np.asarray(context, dtype=object)
    columns["context"] = pd.Series(ctx, dtype=object)  # a plain array would be inferred as str
    return pd.DataFrame(columns, columns=list(INTERACTION_COLUMNS), copy=False)


def empty_interactions() -> pd.DataFrame:
    """An interactions frame with no rows but the canonical columns and dtypes."""
    empty = np.array([], dtype=object)
    return interactions_frame(empty, empty, empty, empty, [], [])


def items_frame(
    item_id: Any,
    title: Any = None,
    text: Any = None,
    attributes: list[dict[str, Any]] | None = None,
    active: Any = None,
) -> pd.DataFrame:
    """A canonical items frame; missing titles/texts become None, attributes default to {}.

    The attribute dicts are placed in the frame as given, not copied.
    """
    ids = _str_column(item_id)
    n = len(ids)
    frame = pd.DataFrame({"item_id": ids})
    frame["title"] = _optional_text(title, n)
    frame["text"] = _optional_text(text, n)
    frame["attributes"] = _dict_column(attributes, n)
    frame["active"] = np.ones(n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    return frame[list(ITEM_COLUMNS)]


def users_frame(user_id: Any, attributes: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """A canonical users frame; attributes default to {}."""
    ids = _str_column(user_id)
    frame = pd.DataFrame({"user_id": ids})
    frame["attributes"] = _dict_column(attributes, len(ids))
    return frame[list(USER_COLUMNS)]


def _dict_column(attributes: list[dict[str, Any]] | None, n: int) -> pd.Series:
    """Object column of the given dicts (used as they are, not copied), or n empty dicts."""
    out = np.empty(n, dtype=object)
    out[:] = attributes if attributes is not None else [{} for _ in range(n)]
    return pd.Series(out, dtype=object)


def _str_column(values: Any) -> pd.Series:
    """Values as a pandas ``str`` Series (pyarrow arrays convert without a Python loop)."""
    if hasattr(values, "to_pandas") and not isinstance(values, pd.Series):
        values = values.to_pandas()
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    return s.astype("str").reset_index(drop=True)


def _optional_text(values: Any, n: int) -> pd.Series:
    """Object column of str or None (never NaN), as the items contract promises."""
    out = np.full(n, None, dtype=object)
    if values is not None:
        s = pd.Series(values, dtype=object).reset_index(drop=True)
        keep = s.notna().to_numpy()
        out[keep] = s[keep].astype(str).to_numpy(dtype=object)
    return pd.Series(out, dtype=object)  # a plain array would be inferred as str (NaN for None)
