"""The online event writer: concurrent batches share one durable commit, each keeps its outcome."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa

from recstack.errors import NotFoundError
from recstack.store import EventRow, Store, rows_postgres, rows_sqlite
from recstack.store.backend import event_writer


@pytest.fixture
def loaded(store, small_data) -> Store:
    store.ingest(small_data)
    return store


def rows_module(store: Store) -> ModuleType:
    return rows_postgres if store.database == "postgresql" else rows_sqlite


def rows(tag: str, item: str = "i1", n: int = 3) -> list[EventRow]:
    return [EventRow(f"{tag}-{k}", f"user-{tag}", item, "view", None, 1_000 + k) for k in range(n)]


def post_while_locked(store: Store, batches: dict[str, tuple[list, bool]]) -> dict[str, object]:
    """Queue every batch behind a held write lock, then let one writer take them all."""
    writer = event_writer(store.engine)
    outcomes: dict[str, object] = {}

    def post(name: str) -> None:
        batch, create = batches[name]
        try:
            outcomes[name] = store.add_events(batch, create_items=create)
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[name] = exc

    threads = [threading.Thread(target=post, args=(name,)) for name in batches]
    with writer._write_lock:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(writer._queue) < len(batches) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(writer._queue) == len(batches)
    for thread in threads:
        thread.join()
    return outcomes


def count_transactions(store: Store, monkeypatch) -> list[int]:
    """Sizes of the groups written, one entry per transaction (patch before the first write)."""
    module, sizes = rows_module(store), []
    real = module._transaction

    def counted(raw, group):  # noqa: ANN001, ANN202
        sizes.append(len(group))
        return real(raw, group)

    monkeypatch.setattr(module, "_transaction", counted)
    return sizes


def test_queued_batches_share_one_commit(loaded, monkeypatch) -> None:
    transactions = count_transactions(loaded, monkeypatch)
    outcomes = post_while_locked(
        loaded,
        {
            "a": (rows("a"), False),
            "b": (rows("b", item="ghost"), False),  # unknown item: fails alone
            "c": (rows("c", item="new-item"), True),  # creates its item
            "d": (rows("d", n=1) + rows("a"), False),  # repeats a's events
        },
    )
    assert transactions == [4]
    assert isinstance(outcomes.pop("b"), NotFoundError)
    assert outcomes["a"] + outcomes["d"] == 4 and outcomes["c"] == 3
    assert loaded.get_user("user-b") is None
    assert loaded.get_item("new-item") is not None
    assert loaded.stats()["interactions"] == 6 + 7


def test_a_failing_group_retries_batch_by_batch(loaded, monkeypatch) -> None:
    module = rows_module(loaded)
    real = module._write

    def write(conn, group):  # noqa: ANN001, ANN202
        if any("boom-0" in batch.columns[0] for batch in group):
            raise RuntimeError("disk trouble")
        return real(conn, group)

    monkeypatch.setattr(module, "_write", write)
    outcomes = post_while_locked(
        loaded, {"a": (rows("a"), False), "boom": (rows("boom"), False), "c": (rows("c"), False)}
    )
    assert outcomes["a"] == outcomes["c"] == 3
    assert isinstance(outcomes["boom"], RuntimeError)
    assert loaded.get_user("user-boom") is None
    assert loaded.stats()["interactions"] == 6 + 6


def test_groups_stop_at_the_row_limit(loaded, monkeypatch) -> None:
    transactions = count_transactions(loaded, monkeypatch)
    event_writer(loaded.engine).max_rows = 5
    outcomes = post_while_locked(loaded, {t: (rows(t), False) for t in "abcd"})
    assert outcomes == {t: 3 for t in "abcd"}
    assert transactions == [1, 1, 1, 1]  # 3 + 3 rows would pass the limit of 5


def test_many_rows_span_several_statements(loaded) -> None:
    batch = [
        EventRow(f"m{k}", f"mu{k % 7}", f"i{1 + k % 4}", "rate", float(k % 5), k)
        for k in range(257)
    ]
    assert loaded.add_events(batch) == 257
    history = loaded.user_history("mu3")
    assert sorted(history["event_id"]) == sorted(r.event_id for r in batch if r.user_id == "mu3")


def test_sqlite_connections_are_durable_on_commit(tmp_path, small_data) -> None:
    store = Store(f"sqlite:///{tmp_path / 'durable.db'}")
    try:
        store.migrate()
        store.add_events(rows("w"), create_items=True)
        with store.engine.connect() as conn:
            pooled = (
                conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                conn.exec_driver_sql("PRAGMA synchronous").scalar(),
            )
        assert pooled == ("wal", 2)  # 2: FULL, the WAL is synced at every commit
        raw = event_writer(store.engine)._connection()
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert raw.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        store.close()


def test_sqlite_writer_turns_foreign_keys_back_on_after_a_failed_batch(tmp_path) -> None:
    """The writer skips SQLite's per-row key checks inside its transaction only: afterwards
    its connection enforces them again, and deleting a user still cascades to their events."""
    store = Store(f"sqlite:///{tmp_path / 'keys.db'}")
    try:
        store.migrate()
        assert store.add_events(rows("k"), create_items=True) == 3
        with pytest.raises(NotFoundError):
            store.add_events(rows("bad", item="no-such-item"))
        raw = event_writer(store.engine)._connection()
        assert raw.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert not raw.in_transaction
        with pytest.raises(sa.exc.IntegrityError):
            with store.engine.begin() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO interactions (event_id, user_id, item_id, event_type, "
                    "\"timestamp\") VALUES ('orphan', 999999, 999999, 'view', 1)"
                )
        assert store.delete_user("user-k") == 3
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM interactions").scalar() == 0
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_writer_replaces_a_dropped_connection(pg_url, small_data) -> None:
    store = Store(pg_url)
    try:
        store.migrate()
        store.ingest(small_data)
        assert store.add_events(rows("a")) == 3
        pid = event_writer(store.engine)._connection().info.backend_pid
        with store.engine.begin() as conn:  # as a server restart or an idle timeout would
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert store.add_events(rows("b")) == 3
        assert store.stats()["interactions"] == 6 + 6
    finally:
        store.close()


def test_writers_of_one_sqlite_file_take_turns_through_its_writer_lock(tmp_path):
    path = tmp_path / "recstack.db-writer.lock"
    first, second = rows_sqlite.WriterLock(path), rows_sqlite.WriterLock(path)
    order: list[str] = []

    def other_process() -> None:  # a second open file: excluded as another process would be
        with second:
            order.append("second")

    with first:
        thread = threading.Thread(target=other_process)
        thread.start()
        time.sleep(0.2)
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]


def test_a_sqlite_file_stores_event_writer_takes_the_writer_lock(tmp_path, monkeypatch):
    from recstack.settings import Settings

    settings = Settings(home=tmp_path / "home")
    settings.ensure_home()
    taken: list[Path] = []
    enter = rows_sqlite.WriterLock.__enter__
    monkeypatch.setattr(
        rows_sqlite.WriterLock, "__enter__", lambda lock: (taken.append(lock.path), enter(lock))[1]
    )
    with Store.from_settings(settings) as store:
        store.add_events(rows("a"), create_items=True)
        database = Path(store.engine.url.database)
    assert taken == [database.with_name(database.name + "-writer.lock")]
