"""SQLite's user index in a side file: each user's events found exactly, merged or not."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from recstack.store import Store, repository, user_index
from recstack.store import store as store_module
from recstack.store.migrate import alembic_config
from recstack.store.user_index import LEVELS

from .conftest import events


def _rows(n: int, start: int = 0, users: int = 5) -> list[tuple]:
    """``n`` events of ``users`` users over 3 items, one second apart."""
    return [
        (f"e{i}", f"u{i % users}", f"i{i % 3}", "view", None, 1_000 + i, None)
        for i in range(start, start + n)
    ]


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'events.db'}")
    s.migrate()
    yield s
    s.close()


def _expected(store: Store, user: str) -> list[str]:
    with store.engine.connect() as conn:  # a full scan: the truth the index must match
        return (
            conn.exec_driver_sql(
                "SELECT i.event_id FROM interactions i JOIN users u ON u.id = i.user_id "
                "WHERE u.external_id = ? ORDER BY i.timestamp DESC, i.id DESC",
                (user,),
            )
            .scalars()
            .all()
        )


def _check_all(store: Store, users: int = 5) -> None:
    for u in range(users):
        want = _expected(store, f"u{u}")
        assert store.user_history(f"u{u}")["event_id"].tolist() == want
        assert store.get_user(f"u{u}")["n_events"] == len(want)
        assert store.user_history(f"u{u}", limit=2)["event_id"].tolist() == want[:2]


def _marks(store: Store) -> tuple[int, int]:
    path = user_index.engine_side_path(store.engine)
    with store.engine.connect() as conn:
        db_mark = user_index.mark(conn)
    side = sqlite3.connect(path)
    try:
        return db_mark, side.execute("SELECT upto FROM covered").fetchone()[0]
    finally:
        side.close()


def test_events_are_found_in_the_tail_the_side_file_and_both(store) -> None:
    store.add_events(_rows(40), create_items=True)
    _check_all(store)  # all tail: nothing merged yet
    assert user_index.merge(store.engine.url.database) == 40
    assert _marks(store) == (40, 40)
    _check_all(store)  # all in the side file
    store.add_events(_rows(13, start=40))
    _check_all(store)  # both
    assert user_index.merge(store.engine.url.database, at_least=100) == 0  # tail of 13: waits
    assert user_index.merge(store.engine.url.database) == 13
    _check_all(store)


def test_reused_ids_after_deleting_the_newest_events_stay_visible(store) -> None:
    store.add_events(_rows(30), create_items=True)
    user_index.merge(store.engine.url.database)
    with store.engine.begin() as conn:  # the newest events go (e.g. their item was deleted)
        conn.exec_driver_sql("DELETE FROM interactions WHERE id > 25")
    # SQLite hands ids 26.. out again, to other users' events than the side file holds
    store.add_events([(f"n{i}", "u9", "i0", "view", None, 5_000 + i, None) for i in range(5)])
    assert _marks(store)[0] == 25  # the writer lowered the mark before reusing ids
    newest = [f"n{i}" for i in range(4, -1, -1)]
    for _ in range(2):  # before and after the next merge
        _check_all(store)
        assert store.user_history("u9")["event_id"].tolist() == newest == _expected(store, "u9")
        assert store.get_user("u9")["n_events"] == 5
        user_index.merge(store.engine.url.database)
    assert _marks(store) == (30, 30)


def test_a_lost_side_file_is_rebuilt_and_reads_stay_exact_meanwhile(store) -> None:
    store.add_events(_rows(20), create_items=True)
    user_index.merge(store.engine.url.database)
    path = user_index.engine_side_path(store.engine)
    path.unlink()
    _check_all(store)  # covered 0: every event is tail
    assert user_index.merge(store.engine.url.database) == 20
    _check_all(store)


def test_deleting_a_user_removes_merged_and_tail_events(store) -> None:
    store.add_events(_rows(20), create_items=True)
    user_index.merge(store.engine.url.database)
    store.add_events(_rows(10, start=20))
    assert store.delete_user("u1") == 6  # 4 merged + 2 in the tail
    assert store.get_user("u1") is None
    assert _expected(store, "u1") == []
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM interactions").scalar() == 24
    _check_all(store, users=1)


def test_writes_start_a_background_merge_once_the_tail_is_long(store, monkeypatch) -> None:
    monkeypatch.setattr(user_index, "MERGE_ROWS", 50)
    store.add_events(_rows(30), create_items=True)
    store.add_events(_rows(30, start=30))  # tail 60 >= 50: this commit starts a merge
    for thread in threading.enumerate():
        if thread.name == "recstack-user-index":
            thread.join()
    assert _marks(store) == (60, 60)
    _check_all(store)


def test_a_large_frame_and_a_large_ingest_merge_before_returning(store, monkeypatch) -> None:
    from recstack.data.loaders import LoadedData

    monkeypatch.setattr(user_index, "MERGE_ROWS", 10)
    monkeypatch.setattr(repository, "SMALL_BATCH_ROWS", 100)
    store.ingest(LoadedData(events([r[:6] for r in _rows(12)])))
    assert _marks(store) == (12, 12)
    store.add_events(events([r[:6] for r in _rows(600, start=12)]))  # the bulk frame path
    assert _marks(store) == (612, 612)
    _check_all(store)


def test_upgrading_a_store_drops_the_index_and_builds_the_side_file(tmp_path, monkeypatch) -> None:
    from alembic import command

    monkeypatch.setattr(store_module, "STARTUP_BACKLOG", 5)
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")  # a store as an older release left it
        conn.exec_driver_sql("INSERT INTO users (external_id) VALUES ('u0'), ('u1')")
        conn.exec_driver_sql("INSERT INTO items (external_id) VALUES ('i0')")
        for i in range(8):
            conn.exec_driver_sql(
                "INSERT INTO interactions (event_id, user_id, item_id, event_type, timestamp) "
                f"VALUES ('e{i}', {1 + i % 2}, 1, 'view', {i})"
            )
        names = [r[1] for r in conn.exec_driver_sql("PRAGMA index_list(interactions)")]
        assert "ix_interactions_user_ts" in names
    engine.dispose()
    store = Store(url)
    store.migrate()
    with store.engine.connect() as conn:
        names = [r[1] for r in conn.exec_driver_sql("PRAGMA index_list(interactions)")]
    assert "ix_interactions_user_ts" not in names
    assert _marks(store) == (8, 8)
    _check_all(store, users=2)
    store.close()


def test_recent_entries_move_into_the_large_level_and_stay_found(store, monkeypatch) -> None:
    monkeypatch.setattr(user_index, "LEVEL_ROWS", 25)
    path = user_index.engine_side_path(store.engine)
    store.add_events(_rows(10), create_items=True)
    user_index.merge(store.engine.url.database)  # 10 < 25: into ``recent``
    store.add_events(_rows(10, start=10))
    user_index.merge(store.engine.url.database)
    side = sqlite3.connect(path)
    assert [side.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in LEVELS] == [0, 20]
    _check_all(store)
    store.add_events(_rows(10, start=20))
    user_index.merge(store.engine.url.database)  # 30 >= 25: ``recent`` moves into ``events``
    assert [side.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in LEVELS] == [30, 0]
    _check_all(store)
    store.add_events(_rows(40, start=30))
    user_index.merge(store.engine.url.database)  # a run of 40 >= 25 goes straight to ``events``
    assert [side.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in LEVELS] == [70, 0]
    side.close()
    _check_all(store)


def _side_ids(store: Store) -> set[int]:
    side = sqlite3.connect(user_index.engine_side_path(store.engine))
    try:
        return {r[0] for t in LEVELS for r in side.execute(f"SELECT id FROM {t}")}
    finally:
        side.close()


def test_deleted_users_and_purged_events_leave_the_side_file(store, monkeypatch) -> None:
    store.add_events(_rows(30), create_items=True)
    user_index.merge(store.engine.url.database)
    with store.engine.connect() as conn:
        u2 = set(
            conn.exec_driver_sql(
                "SELECT i.id FROM interactions i JOIN users u ON u.id = i.user_id "
                "WHERE u.external_id = 'u2'"
            ).scalars()
        )
    assert u2 <= _side_ids(store)
    store.delete_user("u2")
    assert not u2 & _side_ids(store)  # nothing of the erased user stays beside the database
    with store.engine.begin() as conn:  # a retention purge of the oldest events
        conn.exec_driver_sql("DELETE FROM interactions WHERE id <= 10")
    store.add_events(_rows(5, start=30))
    user_index.merge(store.engine.url.database)
    assert min(_side_ids(store)) > 10
    assert _side_ids(store) == {
        r[0]
        for r in sqlite3.connect(store.engine.url.database).execute("SELECT id FROM interactions")
    }
    _check_all(store)


def test_reads_do_not_wait_for_a_running_merge(store) -> None:
    store.add_events(_rows(20), create_items=True)
    user_index.merge(store.engine.url.database)
    side = sqlite3.connect(user_index.engine_side_path(store.engine), isolation_level=None)
    side.execute("BEGIN IMMEDIATE")  # a merge holds the side file's write lock
    side.execute("INSERT INTO recent VALUES (99, 0, 999)")
    try:
        started = time.perf_counter()
        _check_all(store)
        assert time.perf_counter() - started < 20  # not the 30 s busy timeout
    finally:
        side.execute("ROLLBACK")
        side.close()
