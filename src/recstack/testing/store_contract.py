"""The contract every store backend honours, as a pytest mixin.

A test module subclasses ``StoreContract`` once per database and supplies a ``store_url``
fixture pointing at a fresh, empty database::

    class TestSQLiteStore(StoreContract):
        @pytest.fixture
        def store_url(self, tmp_path):
            return f"sqlite:///{tmp_path / 'store.db'}"

and inherits tests for what the server, the CLI and training rely on, identical on every
backend: bulk ingest and idempotent re-ingest, the online event path (rows, tuples and
mappings; repeats; unknown users created; a bad batch or unknown items storing nothing;
concurrent batches each keeping their own outcome; committed before returning), snapshots,
stats, item upserts, user purges and API keys.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from recstack.data.loaders import LoadedData
from recstack.errors import DataError, NotFoundError
from recstack.store import EventRow, Store

T0 = 1_700_000_000


def contract_data() -> LoadedData:
    """Three users, four catalogue items (one without events) and six events."""
    events = pd.DataFrame(
        {
            "event_id": [f"e{k}" for k in range(1, 7)],
            "user_id": ["u1", "u1", "u1", "u2", "u2", "u3"],
            "item_id": ["i1", "i1", "i2", "i2", "i3", "i1"],
            "event_type": ["view", "complete", "rate", "purchase", "rate", "click"],
            "value": [np.nan, np.nan, 4.0, np.nan, 2.0, np.nan],
            "timestamp": np.array([100, 200, 150, 50, 60, 70], dtype=np.int64) + T0,
            "context": pd.Series([None, None, '{"page":"home"}', None, None, None], dtype=object),
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3", "i4"],
            "title": ["Intro to SQL", "Python basics", None, "Statistics"],
            "text": ["Joins", None, None, "Means"],
            "attributes": [{"level": 1}, {}, {}, {"level": 2}],
            "active": [True, True, True, False],
        }
    )
    users = pd.DataFrame({"user_id": ["u1"], "attributes": [{"plan": "pro"}]})
    return LoadedData(events, items=items, users=users, source="contract.csv")


class StoreContract:
    """Tests every store backend passes; subclasses provide a ``store_url`` fixture."""

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[Store]:
        store = Store(store_url)
        store.migrate()
        yield store
        store.close()

    @pytest.fixture
    def loaded(self, store: Store) -> Store:
        store.ingest(contract_data())
        return store

    # ---- bulk ingest ---------------------------------------------------------------------------
    def test_ingest_stores_users_items_and_events(self, store: Store) -> None:
        result = store.ingest(contract_data())
        assert (result.interactions_read, result.interactions_inserted) == (6, 6)
        assert (result.users_created, result.items_created, result.duplicates) == (3, 4, 0)
        stats = store.stats()
        assert (stats["users"], stats["items"], stats["interactions"]) == (3, 4, 6)
        assert store.get_user("u1")["attributes"] == {"plan": "pro"}
        assert store.get_item("i1")["attributes"] == {"level": 1}

    def test_reingest_adds_nothing(self, loaded: Store) -> None:
        before = loaded.stats()
        again = loaded.ingest(contract_data())
        assert (again.interactions_inserted, again.duplicates) == (0, 6)
        assert (again.users_created, again.items_created, again.items_updated) == (0, 0, 0)
        assert loaded.stats() == before

    # ---- the online event path -----------------------------------------------------------------
    def test_add_events_takes_rows_tuples_and_mappings(self, loaded: Store) -> None:
        rows = [
            EventRow("r1", "u1", "i3", "view", None, T0 + 500),
            ("r2", "u1", "i4", "rate", 4.5, T0 + 510, {"page": "search"}),
            {"event_id": "r3", "user_id": "new", "item_id": "i2", "event_type": "view",
             "timestamp": T0 + 520},
            EventRow("r1", "u1", "i3", "view", None, T0 + 500),  # repeated within the batch
            EventRow("e1", "u1", "i1", "view", None, T0 + 100),  # stored by the ingest
        ]  # fmt: skip
        assert loaded.add_events(rows[:2] + rows[3:]) == 2
        assert loaded.add_events(rows[2:3]) == 1
        assert loaded.add_events(rows[:3]) == 0
        history = loaded.user_history("u1")
        assert history["event_id"].tolist()[:2] == ["r2", "r1"]
        newest = history.iloc[0]
        assert (newest["item_id"], newest["event_type"], newest["value"]) == ("i4", "rate", 4.5)
        assert '"search"' in newest["context"]
        assert loaded.get_user("new")["n_events"] == 1  # unknown users are created

    def test_bad_batches_store_nothing(self, loaded: Store) -> None:
        before = loaded.stats()
        good = EventRow("ok", "fresh-user", "i1", "view", None, T0)
        with pytest.raises(DataError, match="row 1 of the interactions: timestamp 'soon'"):
            loaded.add_events([good, EventRow("bad", "u1", "i1", "view", None, "soon")])
        with pytest.raises(DataError, match="row 0 of the interactions: user_id contains a NUL"):
            loaded.add_events([EventRow("nul", "u\x00", "i1", "view", None, T0), good])
        with pytest.raises(NotFoundError, match="ghost"):
            loaded.add_events([good, EventRow("n2", "fresh-user", "ghost", "view", None, T0)])
        assert loaded.stats() == before
        assert loaded.get_user("fresh-user") is None
        assert loaded.add_events([EventRow("n3", "u1", "ghost", "view", None, T0)], create_items=True) == 1  # fmt: skip
        assert loaded.get_item("ghost")["title"] is None

    def test_concurrent_batches_keep_their_own_outcomes(self, loaded: Store) -> None:
        outcomes: dict[int, object] = {}

        def post(k: int) -> None:
            item = "ghost" if k == 3 else f"i{1 + k % 3}"
            rows = [EventRow(f"c{k}-{j}", f"cu{k}", item, "view", None, T0 + j) for j in range(20)]
            try:
                outcomes[k] = loaded.add_events(rows)
            except NotFoundError as exc:
                outcomes[k] = exc

        threads = [threading.Thread(target=post, args=(k,)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert isinstance(outcomes.pop(3), NotFoundError)
        assert outcomes == {k: 20 for k in (0, 1, 2, 4, 5, 6, 7)}
        assert loaded.stats()["interactions"] == 6 + 7 * 20
        assert loaded.get_user("cu3") is None

    def test_events_are_committed_before_returning(self, loaded: Store, store_url: str) -> None:
        loaded.add_events([EventRow("d1", "u2", "i4", "complete", None, T0 + 900)])
        other = Store(store_url)  # its own connections see the event at once
        try:
            assert other.user_history("u2", limit=1)["event_id"].tolist() == ["d1"]
        finally:
            other.close()

    # ---- reads ---------------------------------------------------------------------------------
    def test_snapshot_holds_everything(self, loaded: Store) -> None:
        dataset = loaded.snapshot()
        assert (dataset.n_users, dataset.n_items, dataset.n_interactions) == (3, 4, 6)
        assert set(dataset.users.ids) == {"u1", "u2", "u3"}
        since = loaded.snapshot(since=T0 + 100)
        assert since.n_interactions == 3 and since.n_items == 4

    def test_stats(self, loaded: Store) -> None:
        stats = loaded.stats()
        assert stats["distinct_pairs"] == 5 and stats["active_items"] == 3
        assert stats["event_types"] == {
            "rate": 2, "click": 1, "complete": 1, "purchase": 1, "view": 1,
        }  # fmt: skip
        assert stats["first_timestamp"] < stats["last_timestamp"]

    # ---- items, users, keys --------------------------------------------------------------------
    def test_upsert_item_creates_updates_and_keeps(self, store: Store) -> None:
        created = store.upsert_item("c1", title="Algebra", attributes={"level": 1})
        assert created["title"] == "Algebra" and created["active"] is True
        updated = store.upsert_item("c1", text="Linear equations", active=False)
        assert (updated["title"], updated["text"], updated["active"]) == (
            "Algebra",
            "Linear equations",
            False,
        )
        assert store.get_item("c1") == updated
        with pytest.raises(DataError, match="item_id is longer than 255 characters"):
            store.upsert_item("x" * 256)

    def test_delete_user_purges_their_events(self, loaded: Store) -> None:
        assert loaded.delete_user("u1") == 3
        assert loaded.get_user("u1") is None
        assert loaded.user_history("u1").empty
        assert loaded.stats()["interactions"] == 3
        with pytest.raises(NotFoundError):
            loaded.delete_user("u1")
        assert loaded.add_events([EventRow("back", "u1", "i1", "view", None, T0)]) == 1

    def test_api_keys(self, store: Store) -> None:
        key, record = store.create_api_key("write", "ingest bot")
        assert store.verify_api_key(key)["scope"] == "write"
        assert [k["prefix"] for k in store.list_api_keys()] == [record["prefix"]]
        assert store.revoke_api_key(record["prefix"]) is True
        assert store.verify_api_key(key) is None
        assert store.revoke_api_key(record["prefix"]) is False
