"""Precomputed list sets: round trips, atomic replacement, failures that leave the old set."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from recstack.errors import ConfigError, DataError, NotFoundError
from recstack.store import Store
from recstack.store.precomputed import ListChunk


def chunk(rows: list[tuple[str, str, float]]) -> ListChunk:
    users, items, scores = zip(*rows, strict=True)
    return ListChunk(np.array(users, dtype=object), np.array(items, dtype=object), np.array(scores))


# u2's list starts in the first chunk and ends in the second
FIRST = [
    chunk([("u1", "a", 0.9), ("u1", "b", 0.5), ("u2", "c", 0.4)]),
    chunk([("u2", "a", 0.3), ("u3", "d", 0.8)]),
]
SECOND = [chunk([("u1", "d", 2.0), ("u4", "b", 1.5), ("u4", "c", 1.0)])]


def lists_of(store: Store, name: str) -> dict[str, list[tuple[str, float]]]:
    stored = store.precomputed.load(name)
    out = {}
    for u, user in enumerate(stored.users.ids.tolist()):
        lo, hi = stored.indptr[u], stored.indptr[u + 1]
        items = stored.items.externals(stored.item_idx[lo:hi])
        out[user] = [
            (i, round(float(s), 4)) for i, s in zip(items, stored.scores[lo:hi], strict=True)
        ]
    return out


def table_counts(store: Store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        lists = conn.execute(sa.text("SELECT count(*) FROM precomputed_lists")).scalar_one()
        gens = conn.execute(sa.text("SELECT count(*) FROM precomputed_generations")).scalar_one()
    return int(lists), int(gens)


def test_round_trip_keeps_every_list_in_rank_order(store: Store) -> None:
    info = store.precomputed.write("als", FIRST, source={"model": "als", "version": 3})
    assert (info.name, info.k, info.n_users, info.n_rows) == ("als", 2, 3, 5)
    assert lists_of(store, "als") == {
        "u1": [("a", 0.9), ("b", 0.5)],
        "u2": [("c", 0.4), ("a", 0.3)],
        "u3": [("d", 0.8)],
    }
    stored = store.precomputed.load("als")
    assert stored.indptr.tolist() == [0, 2, 4, 5]
    assert stored.item_idx.dtype == np.int32 and stored.scores.dtype == np.float32
    got = store.precomputed.get("als")
    assert got is not None and got.generation == info.generation
    assert got.source == {"model": "als", "version": 3}
    assert [s.name for s in store.precomputed.list()] == ["als"]
    assert table_counts(store) == (3, 1)  # one row per user, one generation


def test_replacing_a_set_serves_the_new_lists_and_drops_the_old(store: Store) -> None:
    first = store.precomputed.write("als", FIRST)
    other = store.precomputed.write("other", SECOND)
    second = store.precomputed.write("als", SECOND)
    assert second.generation > first.generation
    assert lists_of(store, "als") == {"u1": [("d", 2.0)], "u4": [("b", 1.5), ("c", 1.0)]}
    assert lists_of(store, "other") == lists_of(store, "als")  # a set of another name stays
    assert store.precomputed.get("other").generation == other.generation
    assert table_counts(store) == (4, 2)  # the replaced generation's rows are gone


def failing(chunks: list[ListChunk], after: int) -> Iterator[ListChunk]:
    """The chunks, failing after ``after`` of them as a scoring job that dies would."""
    for n, c in enumerate(chunks):
        if n == after:
            raise RuntimeError("scoring job died")
        yield c


def test_a_failure_midway_leaves_the_old_set_serving(store: Store) -> None:
    store.precomputed.write("als", FIRST)
    before = lists_of(store, "als")
    big = [SECOND[0], chunk([("u9", "a", 0.1)]), chunk([("u10", "b", 0.1)])]
    with pytest.raises(RuntimeError, match="scoring job died"):
        store.precomputed.write("als", failing(big, after=2))  # two chunks were committed
    assert lists_of(store, "als") == before
    assert table_counts(store) == (3, 1)  # nothing of the failed generation is left


def test_the_old_set_is_served_while_the_new_one_is_written(store: Store) -> None:
    store.precomputed.write("als", FIRST)
    seen: list[dict] = []

    def watched() -> Iterator[ListChunk]:
        yield SECOND[0]
        seen.append(lists_of(store, "als"))  # the first chunk is committed by now
        yield chunk([("u9", "a", 0.1)])

    store.precomputed.write("als", watched())
    assert seen == [{"u1": [("a", 0.9), ("b", 0.5)], "u2": [("c", 0.4), ("a", 0.3)],
                     "u3": [("d", 0.8)]}]  # fmt: skip
    assert set(lists_of(store, "als")) == {"u1", "u4", "u9"}


def test_bad_rows_are_reported_and_store_nothing(store: Store) -> None:
    store.precomputed.write("als", FIRST)
    empty_user = [SECOND[0], chunk([("u5", "a", 0.1), ("", "b", 0.2)])]
    with pytest.raises(DataError, match="line 5: user_id must be a non-empty string"):
        store.precomputed.write("als", empty_user)
    missing = [chunk([("u5", "a", float("nan"))])]
    with pytest.raises(DataError, match="line 1: score is missing"):
        store.precomputed.write("als", missing)
    split = [chunk([("u5", "a", 0.1), ("u6", "b", 0.2)]), chunk([("u6", "c", 0.1)]),
             chunk([("u7", "a", 0.1)]), chunk([("u5", "c", 0.1)])]  # fmt: skip
    with pytest.raises(DataError, match="more than one place"):
        store.precomputed.write("als", split)
    with pytest.raises(DataError, match="no recommendation lists"):
        store.precomputed.write("als", [])
    with pytest.raises(ConfigError, match="name"):
        store.precomputed.write("", FIRST)
    assert set(lists_of(store, "als")) == {"u1", "u2", "u3"}
    assert table_counts(store) == (3, 1)


def test_unknown_sets_and_delete(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no precomputed list set 'nope'.*stored: none"):
        store.precomputed.load("nope")
    store.precomputed.write("als", FIRST)
    with pytest.raises(NotFoundError, match="stored: 'als'"):
        store.precomputed.load("nope")
    assert store.precomputed.delete("als") is True
    assert store.precomputed.delete("als") is False
    assert store.precomputed.get("als") is None and table_counts(store) == (0, 0)


def test_store_scores_reads_a_parquet_directory_in_batches(store: Store, tmp_path) -> None:
    from recstack.workflows.precomputed import store_scores

    out = tmp_path / "scores"
    out.mkdir()
    first = pd.DataFrame(  # rank order shuffled within the file: sorted on the way in
        {"user_id": ["u1", "u1", "u1", "u2"], "rank": [2, 1, 3, 1],
         "item_id": ["b", "a", "c", "d"], "score": [0.5, 0.9, 0.1, 0.7]}
    )  # fmt: skip
    second = pd.DataFrame({"user_id": ["u3"], "rank": [1], "item_id": ["a"], "score": [0.2]})
    first.astype({"rank": "int32", "score": "float32"}).to_parquet(out / "part-0.parquet")
    second.astype({"rank": "int32", "score": "float32"}).to_parquet(out / "part-1.parquet")
    (out / "_SUCCESS").write_text("")
    (out / "_recstack.json").write_text('{"job": "score", "k": 3}')
    info = store_scores(store, out, "als", source={"version": 2}, batch_rows=2)
    assert (info.n_users, info.n_rows, info.k) == (3, 5, 3)
    assert info.source["job"] == "score" and info.source["version"] == 2
    assert lists_of(store, "als") == {
        "u1": [("a", 0.9), ("b", 0.5), ("c", 0.1)],
        "u2": [("d", 0.7)],
        "u3": [("a", 0.2)],
    }
    bad = second.assign(item_id=[None])
    bad.to_parquet(out / "part-1.parquet")
    with pytest.raises(DataError, match=r"part-1.parquet:1: item_id is missing"):
        store_scores(store, out, "als")
    assert set(lists_of(store, "als")) == {"u1", "u2", "u3"}
    with pytest.raises(DataError, match="no scores directory"):
        store_scores(store, tmp_path / "absent", "als")


def test_erasing_a_user_removes_their_stored_lists(store: Store, small_data) -> None:
    store.ingest(small_data)
    user = small_data.interactions["user_id"].iloc[0]
    store.precomputed.write("als", [chunk([(user, "a", 0.9), ("other", "b", 0.5)])])
    store.delete_user(user)
    assert lists_of(store, "als") == {"other": [("b", 0.5)]}
