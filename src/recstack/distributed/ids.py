"""Event ids derived in Spark exactly as ``recstack.data.event_ids`` derives them.

The single-machine loaders key each valid row by its content and count the equal rows before
it in the same file (its occurrence). Spark numbers occurrences with a window over
``(file, key)`` ordered by line; this module then turns ``(key, occurrence)`` into the id with
the hash and constants of ``recstack.data.event_ids``, so both paths give a row the same id and
re-ingesting a Spark-processed file stores nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recstack.data.event_ids import GOLDEN, SEEDS, hash_strings, mix64

HEX_CHARS = 20  # ``event_ids`` without a prefix uses 20 hex digits


def hex_ids_with_occurrence(
    keys: pa.Array, occurrence: np.ndarray, chars: int = HEX_CHARS
) -> pa.Array:
    """``hex_ids`` for keys whose occurrence numbers are already known.

    >>> import pandas as pd
    >>> from recstack.data.event_ids import hex_ids
    >>> keys = ["a", "b", "a"]
    >>> ours = hex_ids_with_occurrence(pa.array(keys), np.array([0, 0, 1])).to_pylist()
    >>> ours == hex_ids(pd.Series(keys)).tolist()
    True
    """
    occ = np.asarray(occurrence, dtype=np.uint64)
    with np.errstate(over="ignore"):
        parts = [mix64(hash_strings(keys, seed) + occ * GOLDEN) for seed in SEEDS]
    raw = np.column_stack(parts).astype(">u8").tobytes().hex().encode()
    digits = np.frombuffer(raw, dtype="S32")
    text = pa.array(digits, type=pa.binary(32)).cast(pa.string())
    return pc.utf8_slice_codeunits(text, 0, chars) if chars < 32 else text


def hex_id_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: adds ``derived_id`` from the ``id_key`` and ``occurrence`` columns."""
    for batch in batches:
        ids = hex_ids_with_occurrence(
            batch.column("id_key"), batch.column("occurrence").to_numpy(zero_copy_only=False)
        )
        names = [n for n in batch.schema.names if n not in ("id_key", "occurrence")]
        columns = [batch.column(n) for n in names] + [ids]
        yield pa.RecordBatch.from_arrays(columns, names=[*names, "derived_id"])
