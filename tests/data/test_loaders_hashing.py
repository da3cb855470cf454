"""The vectorised string hash behind derived event ids: matches its definition, never changes."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pyarrow as pa

import recstack.data.event_ids
from recstack.data.event_ids import (
    SEEDS,
    event_ids,
    hash_strings,
    hex_ids,
    new_event_id,
    occurrences,
    with_occurrence,
)

M64 = (1 << 64) - 1
T0 = 1_600_000_000


def mix64_py(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def hash_py(text: str, seed: int) -> int:
    """The documented definition, one string at a time."""
    data = text.encode("utf-8")
    h = mix64_py(seed ^ len(data))
    for start in range(0, len(data), 8):
        word = int.from_bytes(data[start : start + 8], "little")
        h = mix64_py(h ^ word)
    return h


def test_matches_definition_for_all_lengths_and_unicode():
    rng = np.random.default_rng(0)
    alphabet = list("abcxyz0189:|-_ é€🙂")
    texts = ["", "a", "abcdefg", "abcdefgh", "abcdefghi", "x" * 16, "x" * 17, "naïve café 🙂"]
    texts += ["".join(rng.choice(alphabet, rng.integers(0, 40))) for _ in range(200)]
    for seed in SEEDS:
        got = hash_strings(pa.array(texts), seed).tolist()
        assert got == [hash_py(t, seed) for t in texts]


def test_pinned_values_so_ids_never_change():
    # literal values: a change here would give re-ingested files new event ids
    got = hash_strings(pa.array(["abc", "u1\x1fi1\x1fview\x1f1600000000"]), SEEDS[0]).tolist()
    assert got == [12679399295869819513, 10463688381063515417]
    assert hex_ids(pd.Series(["abc"])).tolist() == ["e7d3f8d2a805a1196720"]
    row = pd.DataFrame(
        {"user_id": ["u1"], "item_id": ["i1"], "event_type": ["view"], "timestamp": [T0]}
    )
    assert event_ids(row).tolist() == ["82b6c4e01389160a426b"]


def test_sliced_chunked_and_null_inputs():
    arr = pa.array(["zero", "one", None, "three"])
    assert hash_strings(arr.slice(1, 2), 7).tolist() == [hash_py("one", 7), hash_py("", 7)]
    chunked = pa.chunked_array([["a", "b"], ["c"]])
    assert hash_strings(chunked, 7).tolist() == [hash_py(t, 7) for t in "abc"]
    assert hash_strings(pd.Series(["a", "b"], dtype="str"), 7).tolist() == [
        hash_py("a", 7),
        hash_py("b", 7),
    ]
    assert hash_strings(pa.array([], pa.string()), 7).tolist() == []


def test_occurrences_and_forced_collisions():
    keys = pa.array(["a", "b", "a", "a", "c", "b"])
    assert occurrences(keys).tolist() == [0, 0, 1, 2, 0, 1]
    # a hash collision between different keys must not merge them
    same_hash = np.full(3, 5, dtype=np.uint64)
    assert occurrences(pa.array(["x", "y", "x"]), hashed=same_hash).tolist() == [0, 0, 1]


def test_hex_ids_distinct_for_repeats_and_stable():
    ids = hex_ids(pd.Series(["k", "k", "j"]))
    assert ids.is_unique and all(len(i) == 20 for i in ids)
    assert hex_ids(pd.Series(["k", "k", "j"])).tolist() == ids.tolist()
    assert hex_ids(pd.Series(["k"]), chars=32).str.len().tolist() == [32]


def test_with_occurrence_suffixes():
    keys = pd.Series(["a", "b", "a", "a"])
    assert with_occurrence(keys, ":", first_bare=True).tolist() == ["a", "b", "a:1", "a:2"]
    assert with_occurrence(keys, "#").tolist() == ["a#0", "b#0", "a#1", "a#2"]
    assert with_occurrence(pd.Series(["x", "y"]), ":", first_bare=True).tolist() == ["x", "y"]


def test_prefixed_event_ids_are_readable_and_distinguish_repeats():
    rows = pd.DataFrame(
        {"user_id": ["u1", "u1", "u2"], "item_id": ["i1"] * 3, "event_type": ["rate"] * 3,
         "timestamp": [T0, T0, T0]}
    )  # fmt: skip
    assert event_ids(rows, prefix="ml").tolist() == [
        f"ml:u1:i1:{T0}",
        f"ml:u1:i1:{T0}:1",
        f"ml:u2:i1:{T0}",
    ]


def test_new_event_ids_grow_with_time():
    ids = [new_event_id() for _ in range(50)]
    assert len(set(ids)) == 50 and all(len(i) == 32 for i in ids)
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)


def test_doctests():
    assert doctest.testmod(recstack.data.event_ids).failed == 0
