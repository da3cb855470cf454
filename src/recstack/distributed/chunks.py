"""Validation of one Spark partition of raw input with the single-machine loaders' own code.

Spark reads each input file in splits (``file_block_start``); a split's rows arrive in file
order. For every split this module rebuilds what the single-machine reader would have seen for
those lines (a small file holding the header line, if any, and the split's lines), reads it
with the same reader (``recstack.data.loaders.readers``), validates it with the same
``build_interactions`` and the same column mapping, and translates the reader's line numbers
back to the input file's physical lines. So a row is accepted, rejected and worded exactly as
``recstack ingest`` would, and event ids can be derived afterwards over the whole file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recstack.data.loaders.cells import clean_optional_ids
from recstack.data.loaders.checks import resolve_column
from recstack.data.loaders.mapping import ColumnMapping
from recstack.data.loaders.movielens import RATING_COLUMNS, Layout, _read_fixed
from recstack.data.loaders.readers import RawTable, _nullable_types, read_raw
from recstack.data.loaders.validate import build_interactions
from recstack.data.loaders.writer import INTERACTION_SCHEMA
from recstack.errors import RecstackError

FILE_COLUMN = "_file"
BLOCK_COLUMN = "_block"
# where a row came from, then the canonical interaction columns (the id is derived later)
VALIDATED_SCHEMA = pa.schema(
    [
        ("file_index", pa.int32()),
        ("line", pa.int64()),
        ("error", pa.string()),
        ("given_event_id", pa.string()),
        *(f for f in INTERACTION_SCHEMA if f.name != "event_id"),
    ]
)


@dataclass(frozen=True)
class InputPlan:
    """How to read and validate the input files (built on the driver, shipped to workers).

    ``kind`` is ``text`` (CSV/TSV/JSONL, read line by line), ``parquet`` or ``movielens`` (a
    ratings file of a MovieLens release). ``headers`` holds each file's header line (None for
    files without one); ``suffix`` is the extension the reader dispatches on.
    """

    kind: str
    files: tuple[str, ...]
    uris: tuple[str, ...]
    headers: tuple[str | None, ...]
    suffix: str
    mapping: ColumnMapping
    layout: Layout | None = None
    value_required: bool = False


def local_path(spark_path: str) -> str:
    """Spark's ``_metadata.file_path`` (a URI) as the path ``InputPlan.uris`` records.

    >>> local_path("file:/data/my%20events.csv")
    '/data/my events.csv'
    """
    parsed = urlparse(spark_path)
    return unquote(parsed.path) if parsed.scheme in ("file", "") else spark_path


def _no_ids(good: pd.DataFrame) -> pd.Series:
    """Ids are derived after validation, over whole files (see ``recstack.distributed.ids``)."""
    return pd.Series([""] * len(good), dtype=object)


def validate_partition(
    batches: Iterator[pa.RecordBatch],
    plan: InputPlan,
    first_lines: dict[tuple[str, int], int],
) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: canonical rows and bad rows (file, line, reason) of a partition.

    ``first_lines[(uri, block_start)]`` is the 1-based line (Parquet: row) number of the first
    record of that split, counted by a cheap pass before this one.
    """
    tables = [pa.Table.from_batches([b]) for b in batches if b.num_rows]
    if not tables:
        return
    table = pa.concat_tables(tables)
    keys = pd.DataFrame(
        {
            "file": table.column(FILE_COLUMN).to_numpy(zero_copy_only=False),
            "block": table.column(BLOCK_COLUMN).to_numpy(zero_copy_only=False),
        }
    )
    for (uri, block), rows in keys.groupby(["file", "block"], sort=False).indices.items():
        part = table.take(pa.array(rows)).drop_columns([FILE_COLUMN, BLOCK_COLUMN])
        file_index = plan.uris.index(local_path(uri))
        first = first_lines[(uri, int(block))]
        yield _validated_split(part, plan, file_index, first)


def _validated_split(
    part: pa.Table, plan: InputPlan, file_index: int, first: int
) -> pa.RecordBatch:
    real_lines = first + np.arange(part.num_rows, dtype=np.int64)
    try:
        if plan.kind == "parquet":
            raw = _parquet_raw(part, plan.files[file_index], real_lines)
            return _validated(raw, plan, file_index, lambda lines: lines)
        header = plan.headers[file_index]
        lines = part.column("value").combine_chunks()
        if header is not None and first == 1:  # this split holds the header line itself
            lines, real_lines = lines[1:], real_lines[1:]
        skip = 0 if header is None else 1
        with tempfile.TemporaryDirectory(prefix="recstack-etl-") as tmp:
            path = os.path.join(tmp, "chunk" + plan.suffix)
            _write_lines(path, header, lines)
            raw = _read_chunk(path, plan)

            def to_real(temp_lines: np.ndarray) -> np.ndarray:
                return real_lines[np.asarray(temp_lines, dtype=np.int64) - 1 - skip]

            return _validated(raw, plan, file_index, to_real)
    except RecstackError as exc:
        line = getattr(exc, "line", None)
        reason = getattr(exc, "reason", None) or str(exc)
        at = None
        if line is not None and len(real_lines):
            at = int(real_lines[min(max(line - 1, 0), len(real_lines) - 1)])
        return _errors_batch(file_index, [at], [reason])


def _write_lines(path: str, header: str | None, lines: pa.Array) -> None:
    """The split's lines (plus the header) as a file, joined in Arrow without Python strings."""
    body = pc.binary_join(
        pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines), "\n"
    )
    with open(path, "wb") as fh:
        if header is not None:
            fh.write(header.encode("utf-8") + b"\n")
        text = body[0].as_py() if len(lines) else ""
        fh.write(text.encode("utf-8"))
        fh.write(b"\n")


def _read_chunk(path: str, plan: InputPlan) -> RawTable:
    from pathlib import Path

    if plan.kind == "movielens":
        assert plan.layout is not None
        return _read_fixed(Path(path), RATING_COLUMNS, plan.layout, encoding="utf-8")
    return read_raw(Path(path), delimiter=plan.mapping.delimiter, encoding="utf-8")


def _parquet_raw(part: pa.Table, file: str, real_lines: np.ndarray) -> RawTable:
    frame = part.to_pandas(types_mapper=_nullable_types)

    def line_of(positions: np.ndarray) -> np.ndarray:
        return real_lines[np.asarray(positions, dtype=np.int64)]

    return RawTable(frame, file, line_of)


def _validated(raw: RawTable, plan: InputPlan, file_index: int, to_real) -> pa.RecordBatch:  # noqa: ANN001
    good, errors = build_interactions(
        raw,
        plan.mapping,
        "skip",
        make_event_ids=_no_ids,
        value_required=plan.value_required,
    )
    positions = raw.frame.index.to_numpy()
    read_lines = raw.line_of(positions) if len(positions) else np.zeros(0, np.int64)
    bad = np.asarray([e.line for e in errors if e.line is not None], dtype=np.int64)
    keep = ~np.isin(read_lines, bad)
    good_lines = to_real(read_lines[keep]) if keep.any() else np.zeros(0, np.int64)
    given = None
    if len(raw.frame.columns):
        id_col = resolve_column(raw, plan.mapping, "event_id")
        if id_col is not None:
            given = clean_optional_ids(raw.frame[id_col])[keep].reset_index(drop=True)
    n = len(good)
    columns = {
        "file_index": pa.array(np.full(n, file_index, np.int32)),
        "line": pa.array(np.asarray(good_lines, np.int64)),
        "error": pa.nulls(n, pa.string()),
        "given_event_id": _strings(given, n),
        "user_id": _strings(good["user_id"], n),
        "item_id": _strings(good["item_id"], n),
        "event_type": _strings(good["event_type"], n),
        "value": pa.array(good["value"].to_numpy(np.float64), pa.float64()),
        "timestamp": pa.array(good["timestamp"].to_numpy(np.int64), pa.int64()),
        "context": pa.array(good["context"].tolist(), pa.string()),
    }
    out = pa.RecordBatch.from_pydict(columns, schema=VALIDATED_SCHEMA)
    if not errors:
        return out
    lines = [None if e.line is None else int(to_real(np.array([e.line]))[0]) for e in errors]
    rejected = _errors_batch(file_index, lines, [e.reason for e in errors])
    return pa.Table.from_batches([out, rejected]).combine_chunks().to_batches()[0]


def _strings(values: pd.Series | None, n: int) -> pa.Array:
    if values is None:
        return pa.nulls(n, pa.string())
    return pa.array(values.astype(object).where(values.notna(), None).tolist(), pa.string())


def _errors_batch(file_index: int, lines: list[int | None], reasons: list[str]) -> pa.RecordBatch:
    n = len(reasons)
    columns = {field.name: pa.nulls(n, field.type) for field in VALIDATED_SCHEMA}
    columns["file_index"] = pa.array(np.full(n, file_index, np.int32))
    columns["line"] = pa.array(lines, pa.int64())
    columns["error"] = pa.array(reasons, pa.string())
    return pa.RecordBatch.from_pydict(columns, schema=VALIDATED_SCHEMA)
