"""The exposure log, outcomes and experiment definitions on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from recstack.errors import ConflictError, NotFoundError
from recstack.store import Store
from recstack.store.tables import EXPERIMENT_TABLES


@pytest.fixture
def store(store_url):
    store = Store(store_url)
    store.migrate()
    for table in EXPERIMENT_TABLES:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM {table}")
    yield store
    store.close()


def exposure(rid: str, user: str, arm: str | None, at: float, items=("i1", "i2")) -> dict:
    return {
        "recommendation_id": rid,
        "served_at": at,
        "user_id": user,
        "surface": "recommendations",
        "experiment": "exp" if arm else None,
        "arm": arm,
        "model": "als",
        "model_version": 1,
        "items": [{"item_id": i, "position": p, "score": 1.0 - p} for p, i in enumerate(items)],
    }


def outcome(event_id: str, rid: str, user: str, arm: str, kind: str, value=None) -> dict:
    return {
        "event_id": event_id,
        "recommendation_id": rid,
        "experiment": "exp",
        "arm": arm,
        "user_id": user,
        "item_id": "i1",
        "event_type": kind,
        "value": value,
        "position": 0,
        "timestamp": 100,
    }


def test_exposures_are_written_once_and_found_by_id_and_by_user(store):
    rows = [exposure("r1", "u1", "a", 10.0), exposure("r2", "u1", None, 20.0)]
    assert store.exposures.add_exposures(rows) == 2
    assert store.exposures.add_exposures(rows) == 0  # idempotent by recommendation_id
    found = store.exposures.find(["r1", "r2", "nope"])
    assert set(found) == {"r1", "r2"}
    assert found["r1"]["items"][1] == {"item_id": "i2", "position": 1, "score": 0.0}
    assert store.exposures.count("exp") == 1


def test_latest_showing_finds_each_pairs_newest_list_in_the_window(store):
    store.exposures.add_exposures(
        [
            exposure("old", "u1", "a", 10.0, items=("i1", "i2")),
            exposure("mid", "u1", "a", 20.0, items=("i1", "i10")),
            exposure("new", "u1", "a", 30.0, items=("i3",)),
            exposure("outside", "u1", None, 40.0, items=("i1",)),  # in no experiment
            exposure("other", "u2", "b", 25.0, items=("i2", 'q"uote')),
        ]
    )
    pairs = [("u1", "i1"), ("u1", "i2"), ("u1", "i1x"), ("u2", 'q"uote'), ("u3", "i1")]
    found = store.exposures.latest_showing(pairs, since=15.0)
    assert {k: v["recommendation_id"] for k, v in found.items()} == {
        ("u1", "i1"): "mid",  # the newest experiment list showing i1 ("new" does not)
        ("u2", 'q"uote'): "other",  # ids are matched as JSON strings, escapes included
    }  # i2 only in a list before the window; "i1x" and "i10" are not "i1"
    assert found[("u1", "i1")]["items"][1] == {"item_id": "i10", "position": 1, "score": 0.0}
    assert found[("u2", 'q"uote')]["arm"] == "b"
    assert (
        store.exposures.latest_showing(pairs, since=0.0)[("u1", "i2")]["recommendation_id"] == "old"
    )


def test_latest_showing_takes_repeated_pairs_and_more_pairs_than_one_query(store):
    lists = [exposure(f"r{u}", f"u{u}", "a", 10.0 + u, items=("i1", "i2")) for u in range(1200)]
    store.exposures.add_exposures([*lists, exposure("later", "u7", "a", 5000.0, items=("i2",))])
    pairs = [(f"u{u}", item) for u in range(1200) for item in ("i1", "i2", "i3")]
    found = store.exposures.latest_showing([*pairs, ("u7", "i1"), ("u7", "i1")], since=0.0)
    assert len(found) == 2400  # every user's i1 and i2, no i3, each pair once
    assert found[("u1199", "i1")]["recommendation_id"] == "r1199"
    assert found[("u7", "i2")]["recommendation_id"] == "later"  # the newer list wins
    assert found[("u7", "i1")]["recommendation_id"] == "r7"
    assert found[("u3", "i1")]["items"] == found[("u3", "i2")]["items"]
    assert found[("u3", "i2")]["served_at"] == 13.0 and found[("u3", "i2")]["arm"] == "a"


def test_user_metrics_agree_with_a_hand_count(store):
    store.exposures.add_exposures(
        [
            exposure("r1", "u1", "a", 1.0),
            exposure("r2", "u1", "a", 2.0),
            exposure("r3", "u2", "b", 3.0),
            exposure("r4", "u3", "b", 4.0),
        ]
    )
    assert (
        store.exposures.add_outcomes(
            [
                outcome("e1", "r1", "u1", "a", "click"),
                outcome("e2", "r2", "u1", "a", "purchase", 9.5),
                outcome("e3", "r3", "u2", "b", "click"),
                outcome("e4", "r3", "u2", "b", "click"),
            ]
        )
        == 4
    )
    assert store.exposures.add_outcomes([outcome("e1", "r1", "u1", "a", "click")]) == 0
    frame = store.exposures.user_metrics("exp", ["click"], ["purchase"])
    got = {
        (r.arm, r.user_id): (r.exposures, r.clicks, r.conversions, r.value)
        for r in frame.itertuples()
    }
    assert got == {
        ("a", "u1"): (2.0, 1.0, 1.0, 9.5),
        ("b", "u2"): (1.0, 2.0, 0.0, 0.0),
        ("b", "u3"): (1.0, 0.0, 0.0, 0.0),
    }
    until = store.exposures.user_metrics("exp", ["click"], ["purchase"], until=1.5)
    assert until[["arm", "user_id", "exposures"]].values.tolist() == [["a", "u1", 1.0]]
    positions = store.exposures.clicks_by_position("exp", ["click"])
    assert positions.values.tolist() == [["a", 0, 1], ["b", 0, 2]]
    assert store.exposures.time_range("exp") == (1.0, 4.0)


def test_experiment_status_changes_are_compare_and_set(store):
    definition = {"key": "k", "status": "draft", "namespace": "default", "arms": []}
    store.experiments.create(definition)
    with pytest.raises(ConflictError, match="exists"):
        store.experiments.create(definition)

    def refuse(_definition, _running):
        raise ValueError("refused")

    with pytest.raises(ValueError):
        store.experiments.change("k", ("draft",), refuse)
    assert store.experiments.get("k")["status"] == "draft"  # nothing half-written
    store.experiments.change("k", ("draft",), lambda d, r: {**d, "status": "running"})
    with pytest.raises(ConflictError, match="is running"):
        store.experiments.change("k", ("draft",), lambda d, r: d)
    with pytest.raises(NotFoundError):
        store.experiments.change("other", ("draft",), lambda d, r: d)
    assert [d["key"] for d in store.experiments.list("running")] == ["k"]


def test_experiment_and_user_indexes_hold_only_experiment_lists_and_serve_their_reads(store):
    """The (experiment, arm, user) and (user, time) indexes are partial (lists outside
    experiments are most of the log and never read through them), and the reads of results
    and of attribution still use them."""
    store.exposures.add_exposures(
        [exposure("r1", "u1", "a", 10.0), exposure("r2", "u2", None, 20.0)]
    )
    reads = {
        "ix_exposures_experiment_arm": "SELECT arm, user_id FROM exposures WHERE experiment = 'exp'",
        "ix_exposures_user_served": "SELECT recommendation_id FROM exposures WHERE user_id = 'u1' "
        "AND served_at >= 0 AND experiment IS NOT NULL",
    }
    sqlite = store.engine.dialect.name == "sqlite"
    with store.engine.connect() as conn:
        if not sqlite:
            conn.exec_driver_sql("SET enable_seqscan = off")
        for index, read in reads.items():
            if sqlite:
                definition = conn.exec_driver_sql(
                    f"SELECT sql FROM sqlite_master WHERE name = '{index}'"
                ).scalar_one()
                plan = " ".join(
                    row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {read}")
                )
            else:
                definition = conn.exec_driver_sql(
                    f"SELECT indexdef FROM pg_indexes WHERE indexname = '{index}' "
                    "AND schemaname = current_schema()"
                ).scalar_one()
                plan = " ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {read}"))
            assert "experiment IS NOT NULL" in definition.replace("(", "").replace(")", "")
            assert index in plan, plan
        assert [tuple(r) for r in conn.exec_driver_sql(reads["ix_exposures_experiment_arm"])] == [
            ("a", "u1")
        ]
        assert conn.exec_driver_sql(reads["ix_exposures_user_served"]).scalar_one() == "r1"


def test_sqlite_rollup_of_a_batch_reads_only_the_batch_rows(store):
    """Each flush sums the rows it just inserted (``id > before``); reading them through the
    rowid range keeps a flush's cost to its own rows instead of the experiment's whole log."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL sums the rows its INSERT returns")
    from recstack.store.exposures import _ROLL_UP_NEW_EXPOSURES

    store.exposures.add_exposures(
        [exposure(f"r{i}", f"u{i % 7}", "ab"[i % 2], float(i)) for i in range(200)]
    )
    with store.engine.connect() as conn:
        plan = " ".join(
            row[-1]
            for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {_ROLL_UP_NEW_EXPOSURES}", (190,))
        )
    assert "INTEGER PRIMARY KEY (rowid>?)" in plan, plan
    assert "ix_exposures_experiment_arm" not in plan, plan
    store.exposures.add_exposures([exposure("r200", "u0", "a", 200.0)])
    metrics = store.exposures.user_metrics("exp", ["click"], ["purchase"])
    by_user = metrics.set_index(["arm", "user_id"])["exposures"]
    assert by_user[("a", "u0")] == 15 + 1  # i = 0, 14, ..., 196 and the new list
    assert by_user[("b", "u1")] == 15  # i = 1, 15, ..., 197
    assert by_user.sum() == 201
