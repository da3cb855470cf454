"""The bulk write and stats paths: exact round trips, connection settings, block boundaries."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from recstack.data.loaders import LoadedData
from recstack.store import Store, bulk, ingest_sqlite, stats
from recstack.store.engine import driver_connection, write_transaction
from recstack.store.tables import interactions
from recstack.testing.data import planted_frame


def _stored_events(store: Store) -> pd.DataFrame:
    """Stored interactions with external ids, in surrogate id order."""
    sql = (
        "SELECT i.event_id, u.external_id AS user_id, it.external_id AS item_id, i.event_type, "
        'i.value, i."timestamp", i.context FROM interactions i '
        "JOIN users u ON u.id = i.user_id JOIN items it ON it.id = i.item_id ORDER BY i.id"
    )
    with store.engine.connect() as conn:
        return pd.DataFrame(conn.execute(sa.text(sql)).mappings().all())


def _as_json(value: object) -> object:
    """A JSON column as Python (SQLite hands back text, psycopg decoded values)."""
    if isinstance(value, float) and np.isnan(value):  # pandas' missing value
        return None
    return json.loads(value) if isinstance(value, str) else value


def _mixed_events(n: int) -> pd.DataFrame:
    """``n`` events with three types, values on some rows and context on others."""
    k = np.arange(n)
    return pd.DataFrame(
        {
            "event_id": [f"m{i:04d}" for i in k],
            "user_id": [f"u{i % 7}" for i in k],
            "item_id": [f"i{i % 11}" for i in k],
            "event_type": np.array(["view", "rate", "start"])[k % 3],
            "value": np.where(k % 3 == 1, (k % 5) + 0.5, np.nan),
            "timestamp": 1_700_000_000 + (37 * k) % 1000,  # out of order, some repeated
            "context": pd.Series(
                [json.dumps({"page": int(i)}) if i % 4 == 0 else None for i in k], dtype=object
            ),
        }
    )


@pytest.mark.parametrize("large", [False, True], ids=["row-by-row", "large-load"])
def test_every_column_round_trips_in_input_order(store, monkeypatch, large) -> None:
    # 250 rows in chunks of 120: full 100-row statements plus remainders of 20 and 10 rows
    if large:
        monkeypatch.setattr(bulk, "LARGE_LOAD_MIN_ROWS", 10)
    frame = _mixed_events(250)
    result = store.ingest(LoadedData(frame, source="mixed"), chunk_size=120)
    assert (result.interactions_inserted, result.duplicates) == (250, 0)
    stored = _stored_events(store)
    for column in ("event_id", "user_id", "item_id", "event_type", "timestamp"):
        assert stored[column].tolist() == frame[column].tolist(), column
    np.testing.assert_array_equal(stored["value"].astype(float), frame["value"])
    assert [_as_json(c) for c in stored["context"]] == [_as_json(c) for c in frame["context"]]


def test_large_load_builds_sound_indexes(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bulk, "LARGE_LOAD_MIN_ROWS", 10)
    store = Store(f"sqlite:///{tmp_path / 'bulk.db'}")
    store.migrate()
    inter, items = planted_frame(n_users=50, n_items=30, per_user=12)
    store.ingest(LoadedData(inter, items=items, source="planted"), chunk_size=100)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        # each user's events: the side-file index covers every event, and the query that
        # finds a user's rows looks them up by id (no scan of the table)
        stored = conn.exec_driver_sql("SELECT max(id) FROM interactions").scalar()
        assert conn.exec_driver_sql("SELECT upto FROM user_index_mark").scalar() == stored
        where = store.backend.user_events(store.engine, conn, 3)
        query = sa.select(interactions.c.id).where(where)
        sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        assert "SCAN interactions" not in plan and "INTEGER PRIMARY KEY (rowid=?)" in plan
        found = conn.execute(query).scalars().all()
        assert (
            sorted(found)
            == conn.exec_driver_sql("SELECT id FROM interactions WHERE user_id = 3 ORDER BY id")
            .scalars()
            .all()
        )
        assert len(found) == 12
        # the connection is back to its usual settings
        assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000
    store.close()


def test_temp_store_switch_restarts_an_empty_transaction_safely(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'switch.db'}")
    store.migrate()
    with store.engine.connect() as conn:  # opening the temp schema pins temp_store...
        conn.exec_driver_sql("CREATE TEMP TABLE probe (x)")
        conn.commit()
    with pytest.raises(RuntimeError, match="late failure"):
        with write_transaction(store.engine, check_foreign_keys=False) as conn:
            raw = driver_connection(conn)
            assert raw.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0] == 1
            with pytest.raises(sqlite3.OperationalError, match="within a transaction"):
                raw.execute("PRAGMA temp_store=FILE")
            ingest_sqlite.prepare_bulk(conn, large=True)  # ...so this restarts the transaction
            assert raw.execute("PRAGMA temp_store").fetchone()[0] == 1  # FILE
            assert raw.in_transaction
            raw.execute("INSERT INTO users (external_id) VALUES ('written-after-switch')")
            ingest_sqlite.finish_bulk(conn)
            raise RuntimeError("late failure")
    assert store.get_user("written-after-switch") is None  # still all or nothing
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2
    store.close()


def test_stats_are_the_same_over_many_blocks(store, small_data, make_events, monkeypatch) -> None:
    store.ingest(small_data)
    store.add_events(make_events([("e7", "u1", "i1", "view", np.nan, 10)]))  # a repeated pair
    whole = store.stats()
    monkeypatch.setattr(stats, "_BLOCK_IDS", 2)
    assert store.stats() == whole
    assert whole["interactions"] == 7 and whole["distinct_pairs"] == 5
    assert whole["event_types"] == {
        "rate": 2,
        "view": 2,
        "click": 1,
        "complete": 1,
        "purchase": 1,
    }
    assert whole["first_timestamp"] == "1970-01-01T00:00:10+00:00"
    assert whole["last_timestamp"] == "1970-01-01T00:03:20+00:00"


def test_stats_after_deleting_everything(store, small_data) -> None:
    store.ingest(small_data)
    for user in ("u1", "u2", "u3"):
        store.delete_user(user)
    figures = store.stats()
    assert (figures["interactions"], figures["distinct_pairs"], figures["event_types"]) == (
        0,
        0,
        {},
    )
    assert figures["first_timestamp"] is None and figures["density"] == 0.0


def test_count_distinct() -> None:
    assert stats.count_distinct([]) == 0
    assert stats.count_distinct([np.array([], dtype=np.int64)]) == 0
    blocks = [np.array([9, 3, 9, 2**40]), np.array([3, 7]), np.array([2**40])]
    assert stats.count_distinct(blocks) == 4


def test_stored_rows_estimate_is_the_id_span(store, small_data) -> None:
    with store.engine.connect() as conn:
        assert bulk.stored_rows_estimate(conn) == 0
    store.ingest(small_data)
    store.delete_user("u2")  # events 4 and 5: an upper bound keeps the hole
    with store.engine.connect() as conn:
        assert bulk.stored_rows_estimate(conn) == 6
    store.delete_user("u3")  # the last event: ids 1..3 are left
    with store.engine.connect() as conn:
        assert bulk.stored_rows_estimate(conn) == 3


def test_reingest_leaves_the_indexes_in_place(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bulk, "LARGE_LOAD_MIN_ROWS", 10)
    store = Store(f"sqlite:///{tmp_path / 'again.db'}")
    store.migrate()
    inter, items = planted_frame(n_users=30, n_items=20, per_user=10)
    half = inter.iloc[: len(inter) // 2]
    drops = []
    real_drop = ingest_sqlite._drop_secondary_indexes

    def counting_drop(raw):  # noqa: ANN001, ANN202
        drops.append(len(drops))
        return real_drop(raw)

    monkeypatch.setattr(ingest_sqlite, "_drop_secondary_indexes", counting_drop)
    assert store.ingest(LoadedData(half, items=items, source="a")).interactions_inserted == 150
    assert len(drops) == 1  # a first load: index once at the end
    assert store.ingest(LoadedData(half, source="a")).interactions_inserted == 0
    assert len(drops) == 1  # nothing new: the index stays and nothing is rebuilt
    assert store.ingest(LoadedData(inter, source="b")).interactions_inserted == 150
    assert len(drops) == 2  # as many new rows as stored ones: rebuilt again
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    store.close()
