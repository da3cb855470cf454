"""Loading batch-scored top-k lists (``recstack spark score`` output) into the store.

The scores directory is read file by file in record batches (pyarrow), so memory stays at one
batch however many users were scored; each batch is checked (file and row of the first bad
value) and handed to ``PrecomputedStore.write``, which replaces the named set atomically.
No Spark is needed: any Parquet directory with ``user_id, rank, item_id, score`` works as long
as each user's rows are together (as ``spark score`` writes them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from recstack.errors import DataError
from recstack.progress import ProgressTask
from recstack.store.precomputed import ListChunk, SetInfo
from recstack.store.store import Store

SCORE_COLUMNS = ("user_id", "rank", "item_id", "score")
BATCH_ROWS = 200_000
MANIFEST = "_recstack.json"  # the summary ``recstack.distributed.output`` writes beside the data


def score_files(directory: Path | str) -> list[Path]:
    """The Parquet files of a scores directory in name order (``_``/``.`` files skipped)."""
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"no scores directory at {root}")
    files = sorted(Path(f) for f in ds.dataset(root, format="parquet").files)
    if not files:
        raise DataError(f"no Parquet files in {root}")
    return files


def _manifest(directory: Path | str) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def _check(batch: pa.RecordBatch, path: Path, start: int) -> None:
    for column in SCORE_COLUMNS:
        values = batch.column(column)
        bad = pc.is_null(values)
        if column in ("user_id", "item_id"):
            length = pc.fill_null(pc.utf8_length(values.cast(pa.string())), 1)
            bad = pc.or_(bad, pc.equal(length, 0))
        if pc.any(bad).as_py():
            row = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{column} is missing or empty", file=str(path), line=start + row + 1)


def score_chunks(directory: Path | str, batch_rows: int = BATCH_ROWS) -> Iterator[ListChunk]:
    """The scores as ``ListChunk``s of at most ``batch_rows`` rows, each batch ordered by
    user (first appearance) then rank."""
    for path in score_files(directory):
        parquet = pq.ParquetFile(path)
        names = set(parquet.schema_arrow.names)
        missing = [c for c in SCORE_COLUMNS if c not in names]
        if missing:
            raise DataError(f"missing column(s) {', '.join(missing)}", file=str(path))
        start = 0
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=list(SCORE_COLUMNS)):
            _check(batch, path, start)
            start += batch.num_rows
            users = batch.column("user_id").cast(pa.string())
            codes = pc.dictionary_encode(users).indices.to_numpy(zero_copy_only=False)
            rank = batch.column("rank").to_numpy(zero_copy_only=False)
            order = np.lexsort((rank, codes))
            yield ListChunk(
                users.to_numpy(zero_copy_only=False)[order],
                batch.column("item_id").cast(pa.string()).to_numpy(zero_copy_only=False)[order],
                batch.column("score").to_numpy(zero_copy_only=False).astype(np.float64)[order],
            )


def store_scores(
    store: Store,
    directory: Path | str,
    name: str,
    *,
    source: dict[str, Any] | None = None,
    batch_rows: int = BATCH_ROWS,
    progress: bool = False,
) -> SetInfo:
    """Replace the store's list set ``name`` with the scores in ``directory``.

    The set's ``source`` records the job's manifest (model, k, fingerprint) and ``source``.
    """
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in score_files(directory))
    described = {**_manifest(directory), **(source or {}), "path": str(Path(directory))}
    with ProgressTask(f"store lists {name!r}", total=total, enabled=progress) as task:
        return store.precomputed.write(
            name, score_chunks(directory, batch_rows), source=described, task=task
        )
