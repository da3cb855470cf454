"""Event ids: the one builder of ids derived from file content, and new ids for the API.

Ids derived from a file must never change between releases (re-ingesting a file must give the
same ids, so nothing is stored twice): ``event_ids`` keys each row by its content plus the
number of equal rows before it, either as readable text (``ml:196:242:881250949``, for
datasets whose rows are unique per user, item and time) or as 20 hex digits of a hash defined
here rather than borrowed from a library whose internals may change. The hash reads each
string's UTF-8 bytes as little-endian 64-bit words (the last one zero-padded) chained through
the splitmix64 finaliser from a seed mixed with the byte length, as numpy operations over all
strings at once.

>>> hash_strings(pa.array(["abc", "", "abc"]), seed=1).tolist() == [
...     hash_strings(pa.array(["abc"]), seed=1)[0], hash_strings(pa.array([""]), seed=1)[0],
...     hash_strings(pa.array(["abc"]), seed=1)[0]]
True
"""

from __future__ import annotations

import itertools
import os
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

SEEDS = (0x9E3779B97F4A7C15, 0xD1B54A32D192ED03)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_strings(values: pa.Array | pa.ChunkedArray | pd.Series, seed: int) -> np.ndarray:
    """One uint64 hash per string (nulls hash like empty strings)."""
    arr = _large_strings(values)
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype="<i8", count=n + 1, offset=arr.offset * 8)
    data_buffer = arr.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else None
    padded = np.zeros((0 if data is None else len(data)) + 8, dtype=np.uint8)
    if data is not None:
        padded[: len(data)] = data
    # every byte offset read as a little-endian uint64 (an unaligned, overlapping view)
    words = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    starts, lengths = offsets[:-1], np.diff(offsets)
    with np.errstate(over="ignore"):
        h = mix64(np.full(n, seed, dtype=np.uint64) ^ lengths.astype(np.uint64))
        active = np.flatnonzero(lengths > 0)
        position = 0
        while active.size:
            word = words[starts[active] + position].astype(np.uint64)
            remaining = lengths[active] - position
            short = remaining < 8
            if short.any():
                keep_bits = (remaining[short] * 8).astype(np.uint64)
                word[short] &= (np.uint64(1) << keep_bits) - np.uint64(1)
            h[active] = mix64(h[active] ^ word)
            position += 8
            active = active[lengths[active] > position]
    return h


def occurrences(
    keys: pa.Array | pa.ChunkedArray | pd.Series, hashed: np.ndarray | None = None
) -> np.ndarray:
    """For each key, how many equal keys came before it (0 for the first).

    Repeats are found through the hash (``hashed``, if the caller has it already, must be
    ``hash_strings(keys, SEEDS[0])``); only candidate rows are compared as strings, so a
    hash collision between different keys never merges them.
    """
    arr = _large_strings(keys)
    h = hash_strings(arr, SEEDS[0]) if hashed is None else hashed
    out = np.zeros(len(h), dtype=np.int64)
    candidates = np.flatnonzero(pd.Series(h).duplicated(keep=False).to_numpy())
    if candidates.size:
        exact = pd.Series(arr.take(pa.array(candidates)).to_pylist(), dtype=object)
        out[candidates] = exact.groupby(exact, sort=False).cumcount().to_numpy()
    return out


def hex_ids(keys: pa.Array | pa.ChunkedArray | pd.Series, chars: int = 20) -> pd.Series:
    """Ids of ``chars`` hex digits (up to 32) hashing each key with its occurrence number.

    Equal keys get distinct ids (first, second, ... occurrence), and the same keys in the same
    order always give the same ids.
    """
    arr = _large_strings(keys)
    hashes = [hash_strings(arr, seed) for seed in SEEDS]
    occurrence = occurrences(arr, hashed=hashes[0]).astype(np.uint64)
    with np.errstate(over="ignore"):
        parts = [mix64(h + occurrence * GOLDEN) for h in hashes]
    raw = np.column_stack(parts).astype(">u8").tobytes().hex().encode()
    digits = np.frombuffer(raw, dtype="S32")
    text = pa.array(digits, type=pa.binary(32)).cast(pa.large_string())
    if chars < 32:
        text = pc.utf8_slice_codeunits(text, 0, chars)
    return pd.Series(text.to_pandas(), dtype="str")


def _large_strings(values: pa.Array | pa.ChunkedArray | pd.Series) -> pa.LargeStringArray:
    if isinstance(values, pd.Series):
        values = pa.array(values.astype("str"), from_pandas=True)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.type != pa.large_string():
        values = values.cast(pa.large_string())
    if values.null_count:
        values = values.fill_null("")
    return values


def event_ids(frame: pd.DataFrame, prefix: str | None = None) -> pd.Series:
    """Deterministic ids for canonical rows (``user_id``, ``item_id``, ``event_type``,
    ``timestamp``): the same rows in the same order always get the same ids.

    With ``prefix``: ``{prefix}:{user}:{item}:{timestamp}``, ``:n`` appended to the n-th
    repeat. Without: 20 hex digits hashing user, item, type and timestamp with the number of
    earlier equal rows, so exact repeats within a file stay distinct.
    """
    if prefix is not None:
        key = (
            f"{prefix}:"
            + frame["user_id"].astype("str")
            + ":"
            + frame["item_id"].astype("str")
            + ":"
            + frame["timestamp"].astype("str")
        )
        return with_occurrence(key, ":", first_bare=True)
    key = (
        frame["user_id"].astype("str")
        + "\x1f"
        + frame["item_id"].astype("str")
        + "\x1f"
        + frame["event_type"].astype("str")
        + "\x1f"
        + frame["timestamp"].astype("str")
    )
    return hex_ids(key, chars=20)


def with_occurrence(keys: pd.Series, sep: str, *, first_bare: bool = False) -> pd.Series:
    """Append the occurrence number (0, 1, ...) of each key among equal earlier keys.

    With ``first_bare`` the first occurrence keeps its key unchanged and only repeats get a
    suffix; otherwise every key gets one.
    """
    keys = keys.astype("str").reset_index(drop=True)
    occurrence = pd.Series(occurrences(keys))
    if first_bare:
        repeat = (occurrence > 0).to_numpy()
        if not repeat.any():
            return keys
        return keys.where(~repeat, keys + sep + occurrence.astype("str"))
    return keys + sep + occurrence.astype("str")


class _IdSource:
    """This process's random 48-bit tag and a counter (both redrawn in a forked child)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.tag = os.urandom(6).hex()
        self.counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


_SOURCE = _IdSource()
os.register_at_fork(after_in_child=_SOURCE.reset)


def time_ordered_id() -> str:
    """A fresh unique id: 32 hex digits, milliseconds since the epoch first, then this
    process's random 48-bit tag and a 32-bit counter. Used for events posted without an id,
    served lists (``recommendation_id``) and requests.

    Ids that grow with time are appended near the end of a unique index (the store's
    ``event_id``, the exposure log's ``recommendation_id``) instead of landing on a random page
    of it (as random UUIDs do), so each write touches fewer index pages. The tag keeps
    processes apart (80 random bits per process, as in the random part of a UUID) and the
    counter keeps one process's ids apart without asking the OS for randomness per id.

    >>> a, b = time_ordered_id(), time_ordered_id()
    >>> len(a), a != b, a[:12] <= b[:12], a[12:24] == b[12:24]
    (32, True, True, True)
    """
    return (
        f"{time.time_ns() // 1_000_000:012x}{_SOURCE.tag}{next(_SOURCE.counter) & 0xFFFFFFFF:08x}"
    )


new_event_id = time_ordered_id  # the id of an event posted without one
