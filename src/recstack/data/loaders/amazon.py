"""Amazon Reviews 2023 loader: review JSONL as ``rate`` events, product metadata JSONL as items.

Reviews name the product by ``parent_asin`` (variants share it) and carry millisecond
timestamps. Metadata gives the title, the text (title, features and description joined) and the
attributes ``categories``, ``main_category``, ``store``, ``price``, ``average_rating`` and
``rating_number``. When metadata is given, reviewed products missing from it still get a bare
item row, so every interaction's item is in the catalogue. The 2018 release's field names
(``reviewerID``, ``asin``, ``overall``, ``unixReviewTime``) are recognised too.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recstack.data.event_ids import event_ids
from recstack.data.loaders.catalog import plain_value
from recstack.data.loaders.cells import clean_ids
from recstack.data.loaders.checks import RowChecks, finish
from recstack.data.loaders.mapping import ColumnMapping
from recstack.data.loaders.progress import step_progress
from recstack.data.loaders.readers import read_raw
from recstack.data.loaders.result import LoadedData, OnError, check_on_error, items_frame
from recstack.data.loaders.validate import build_interactions
from recstack.errors import ConfigError, DataError

REVIEWS_2023 = ColumnMapping(
    user_id="user_id",
    item_id="parent_asin",
    value="rating",
    timestamp="timestamp",
    timestamp_unit="ms",
    event_type=None,
    event_id=None,
    default_event_type="rate",
    title=None,
    text=None,
    attributes_json=None,
)
REVIEWS_2018 = ColumnMapping(
    user_id="reviewerID",
    item_id="asin",
    value="overall",
    timestamp="unixReviewTime",
    timestamp_unit="s",
    event_type=None,
    event_id=None,
    default_event_type="rate",
    title=None,
    text=None,
    attributes_json=None,
)
META_ATTRIBUTES = ("main_category", "categories", "store", "price", "average_rating")
META_NUMBERS = frozenset({"price", "average_rating", "rating_number"})


def load_amazon(
    reviews_path: str | Path,
    meta_path: str | Path | None = None,
    on_error: OnError = "fail",
    progress: bool = False,
) -> LoadedData:
    """Load Amazon Reviews (2023 JSONL; 2018 field names accepted) and optional metadata.

    Raises:
        ConfigError: a file is missing or lacks the review fields.
        DataError: a malformed line under ``on_error="fail"``.
    """
    check_on_error(on_error)
    reviews_file = Path(reviews_path)
    if not reviews_file.is_file():
        raise ConfigError(f"reviews file not found: {reviews_file}")
    with step_progress(f"loading {reviews_file.name}", 3, progress) as steps:
        raw = read_raw(reviews_file)
        mapping = REVIEWS_2018 if "reviewerID" in raw.frame.columns else REVIEWS_2023
        steps.advance("validating reviews")
        interactions, skipped = build_interactions(
            raw,
            mapping,
            on_error,
            make_event_ids=partial(event_ids, prefix="az"),
            value_required=True,
        )
        steps.advance("reading metadata")
        items = None
        if meta_path is not None:
            meta_file = Path(meta_path)
            if not meta_file.is_file():
                raise ConfigError(f"metadata file not found: {meta_file}")
            items, bad = _read_meta(meta_file, on_error)
            skipped = sorted(skipped + bad, key=lambda e: (e.file or "", e.line or 0))
            items = _with_bare_items(items, interactions["item_id"])
        steps.advance("done")
    return LoadedData(interactions, items, None, skipped, source=f"amazon:{reviews_file}")


def _read_meta(path: Path, on_error: OnError) -> tuple[pd.DataFrame, list[DataError]]:
    raw = read_raw(path)
    frame = raw.frame
    id_col = "parent_asin" if "parent_asin" in frame.columns else "asin"
    if id_col not in frame.columns:
        raise ConfigError(f"{path}: metadata lines need a 'parent_asin' field")
    checks = RowChecks(len(frame))
    ids = clean_ids(frame[id_col], "item_id", id_col, checks)
    keep, errors = finish(raw, checks, on_error)
    n = len(frame)
    titles = _column(frame, "title", n)
    features = _column(frame, "features", n)
    descriptions = _column(frame, "description", n)
    wanted = [c for c in (*META_ATTRIBUTES, "rating_number") if c in frame.columns]
    attr_values = {c: _column(frame, c, n) for c in wanted}
    out_titles: list[str | None] = []
    texts: list[str | None] = []
    attributes: list[dict[str, Any]] = []
    for row in np.flatnonzero(keep).tolist():
        title = _text(titles[row])
        parts = [title, *_texts(features[row]), *_texts(descriptions[row])]
        out_titles.append(title)
        texts.append(" ".join(p for p in parts if p) or None)
        attrs = {}
        for name in wanted:
            value = _attribute(name, attr_values[name][row])
            if value is not None:
                attrs[name] = value
        attributes.append(attrs)
    items = items_frame(ids[keep], out_titles, texts, attributes)
    return items.drop_duplicates("item_id", keep="last").reset_index(drop=True), errors


def _with_bare_items(items: pd.DataFrame, item_ids: pd.Series) -> pd.DataFrame:
    """Append an item row with no metadata for every reviewed item the metadata lacks."""
    unknown = pd.Index(item_ids.unique()).difference(pd.Index(items["item_id"]), sort=False)
    if len(unknown) == 0:
        return items
    return pd.concat([items, items_frame(unknown.to_numpy())], ignore_index=True)


def _column(frame: pd.DataFrame, name: str, n: int) -> list[Any]:
    return frame[name].tolist() if name in frame.columns else [None] * n


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _texts(value: Any) -> list[str]:
    """A list-valued field (features, description) as its non-empty strings."""
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list | tuple | np.ndarray):
        return [v.strip() for v in value if isinstance(v, str) and v.strip()]
    return []


def _attribute(name: str, value: Any) -> Any:
    value = plain_value(value)
    if name in META_NUMBERS:
        if isinstance(value, str):
            value = pd.to_numeric(value.strip().lstrip("$").replace(",", ""), errors="coerce")
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return None
        return float(value) if name != "rating_number" else int(value)
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        return [v for v in value if v not in (None, "")] or None
    return value
