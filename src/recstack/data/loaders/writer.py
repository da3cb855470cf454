"""Write LoadedData as Parquet files that the tabular loaders read back unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recstack.data.loaders.result import LoadedData
from recstack.data.schema import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS

INTERACTION_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("event_type", pa.string()),
        ("value", pa.float64()),
        ("timestamp", pa.int64()),
        ("context", pa.string()),
    ]
)
ITEM_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("attributes", pa.string()),
        ("active", pa.bool_()),
    ]
)
USER_SCHEMA = pa.schema([("user_id", pa.string()), ("attributes", pa.string())])


def write_loaded(data: LoadedData, out_dir: str | Path) -> list[Path]:
    """Write ``data`` as Parquet files ``load_interactions``/``load_items``/``load_users`` read
    back as they are (default mapping).

    Writes ``interactions.parquet``, and ``items.parquet`` / ``users.parquet`` when present,
    with attributes as a JSON string column. Returns the paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    interactions = data.interactions[list(INTERACTION_COLUMNS)]
    written = [_write(interactions, INTERACTION_SCHEMA, out / "interactions.parquet")]
    if data.items is not None:
        items = data.items[list(ITEM_COLUMNS)]
        items = items.assign(attributes=_json_column(items["attributes"]))
        written.append(_write(items, ITEM_SCHEMA, out / "items.parquet"))
    if data.users is not None:
        users = data.users[list(USER_COLUMNS)]
        users = users.assign(attributes=_json_column(users["attributes"]))
        written.append(_write(users, USER_SCHEMA, out / "users.parquet"))
    return written


def _write(frame: pd.DataFrame, schema: pa.Schema, path: Path) -> Path:
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), path)
    return path


def _json_column(values: pd.Series) -> list[str]:
    return [
        json.dumps(v if isinstance(v, dict) else {}, ensure_ascii=False, default=_json_default)
        for v in values.tolist()
    ]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
