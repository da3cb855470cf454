"""Per-user rollups of the exposure log: kept by the writers, backfilled by the migration, and
read by the results with the same figures as a GROUP BY over the raw rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from recstack.store import Store
from recstack.store.engine import write_transaction
from recstack.store.migrate import alembic_config
from recstack.store.tables import exposures, outcomes
from recstack.workflows.experiments import experiment_results

CLICKS, CONVERSIONS = ["click", "view"], ["purchase", "complete"]


def exposure(rid: str, user: str | None, experiment: str | None, arm: str | None) -> dict:
    return {
        "recommendation_id": rid,
        "served_at": float(int(rid[1:])),
        "user_id": user,
        "surface": "recommendations",
        "experiment": experiment,
        "arm": arm,
        "model": "als",
        "model_version": None,
        "items": [{"item_id": "i1", "position": 0, "score": 1.0}],
    }


def outcome(eid: str, rid: str, user: str, experiment, arm, kind, value=None, position=0) -> dict:
    return {
        "event_id": eid,
        "recommendation_id": rid,
        "experiment": experiment,
        "arm": arm,
        "user_id": user,
        "item_id": "i1",
        "event_type": kind,
        "value": value,
        "position": position,
        "timestamp": 100,
    }


# Two batches each: repeated ids (inside a batch and across batches) count once; rows without an
# experiment, arm or user and outcomes of other experiments stay out of "exp"'s figures.
EXPOSURE_BATCHES = [
    [
        exposure("r1", "u1", "exp", "a"),
        exposure("r1", "u1", "exp", "a"),
        exposure("r2", "u1", "exp", "a"),
        exposure("r3", "u2", "exp", "b"),
        exposure("r4", "u3", "exp", "b"),
        exposure("r5", "u1", None, None),
        exposure("r6", "u4", "exp", None),
        exposure("r7", "u2", "other", "a"),
        exposure("r10", None, "exp", "a"),
    ],
    [
        exposure("r2", "u1", "exp", "a"),
        exposure("r8", "u2", "exp", "b"),
        exposure("r9", "u5", "exp", "a"),
    ],
]
OUTCOME_BATCHES = [
    [
        outcome("e1", "r1", "u1", "exp", "a", "click", position=0),
        outcome("e2", "r2", "u1", "exp", "a", "purchase", 9.5, position=1),
        outcome("e3", "r3", "u2", "exp", "b", "click", position=0),
        outcome("e4", "r3", "u2", "exp", "b", "click", position=1),
        outcome("e5", "r8", "u2", "exp", "b", "complete", None, position=None),
        outcome("e6", "r8", "u2", "exp", "b", "purchase", 2.25, position=2),
        outcome("e7", "r4", "u3", "exp", "b", "view", position=0),
        outcome("e8", "r6", "u4", "exp", None, "click"),
        outcome("e9", "r5", "u1", None, None, "click"),
        outcome("e12", "r4", "u3", "exp", "b", "add_to_cart", 4.0, position=5),
    ],
    [
        outcome("e1", "r1", "u1", "exp", "a", "click", position=0),
        outcome("e10", "r9", "u5", "exp", "a", "click", position=3),
        outcome("e11", "r7", "u2", "other", "a", "click"),
    ],
]
# By hand: (arm, user) -> exposures, clicks (click/view), conversions (purchase/complete), value.
EXPECTED = [
    ("a", "u1", 2.0, 1.0, 1.0, 9.5),
    ("a", "u5", 1.0, 1.0, 0.0, 0.0),
    ("b", "u2", 2.0, 2.0, 2.0, 2.25),
    ("b", "u3", 1.0, 1.0, 0.0, 0.0),
]
POSITIONS = [["a", 0, 1], ["a", 3, 1], ["b", 0, 2], ["b", 1, 1]]


@pytest.fixture
def store(store_url):
    store = Store(store_url)
    store.migrate()
    yield store
    store.close()


def _write(store: Store) -> None:
    assert [store.exposures.add_exposures(b) for b in EXPOSURE_BATCHES] == [8, 2]
    assert [store.exposures.add_outcomes(b) for b in OUTCOME_BATCHES] == [10, 2]


def _assert_hand_counts(store: Store) -> None:
    for from_log in (False, True):
        frame = store.exposures.user_metrics("exp", CLICKS, CONVERSIONS, from_log=from_log)
        assert [tuple(r) for r in frame.itertuples(index=False)] == EXPECTED
        positions = store.exposures.clicks_by_position("exp", CLICKS, from_log=from_log)
        assert positions.values.tolist() == POSITIONS
    other = store.exposures.user_metrics("other", CLICKS, CONVERSIONS)
    assert other.values.tolist() == [["a", "u2", 1.0, 1.0, 0.0, 0.0]]


def test_writers_keep_the_rollups_equal_to_the_raw_rows(store):
    _write(store)
    _assert_hand_counts(store)
    # an add_to_cart counts as neither a click nor a conversion, unless asked for
    frame = store.exposures.user_metrics("exp", ["add_to_cart"], ["add_to_cart"])
    assert frame[frame["user_id"] == "u3"].values.tolist() == [["b", "u3", 1.0, 1.0, 1.0, 4.0]]
    log = store.exposures.user_metrics("exp", ["add_to_cart"], ["add_to_cart"], from_log=True)
    pd.testing.assert_frame_equal(frame, log)


def test_a_failed_batch_leaves_neither_raw_rows_nor_rollups(store):
    bad = [exposure("r1", "u1", "exp", "a"), {**exposure("r2", "u1", "exp", "a"), "surface": None}]
    with pytest.raises(Exception):  # noqa: B017 - the driver's own IntegrityError
        store.exposures.add_exposures(bad)
    assert store.exposures.count() == 0
    assert store.exposures.user_metrics("exp", CLICKS, CONVERSIONS).empty


def test_migration_backfills_rollups_from_rows_logged_before_it(store_url):
    store = Store(store_url)
    cfg = alembic_config()
    with write_transaction(store.engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")  # the logs, without rollups
    seen: set[str] = set()
    with write_transaction(store.engine) as conn:
        for table, batches, key in (
            (exposures, EXPOSURE_BATCHES, "recommendation_id"),
            (outcomes, OUTCOME_BATCHES, "event_id"),
        ):
            for batch in batches:
                rows = [r for r in batch if r[key] not in seen]
                seen.update(r[key] for r in rows)
                rows = list({r[key]: r for r in rows}.values())
                conn.execute(table.insert(), rows)
    store.migrate()
    _assert_hand_counts(store)
    store.close()


def test_results_from_rollups_equal_results_from_the_log(store):
    """A two-arm experiment over 40 users, written in uneven batches: the whole results dict
    (metrics, lifts, SRM, decision, clicks by position) is the same read either way."""
    arms = [{"name": "control", "model": "popularity", "weight": 0.5},
            {"name": "treatment", "model": "popularity", "weight": 0.5}]  # fmt: skip
    store.experiments.create(
        {"key": "exp", "status": "stopped", "namespace": "default", "arms": arms,
         "bucket_start": 0, "traffic": 1.0, "salt": "exp", "guardrails": ["conversion", "value"]}
    )  # fmt: skip
    rng = np.random.default_rng(7)
    shown, acted = [], []
    for n in range(600):
        user = int(rng.integers(40))
        arm = "treatment" if user % 2 else "control"
        shown.append(exposure(f"r{n}", f"u{user}", "exp", arm))
        if rng.random() < 0.3 + 0.1 * (arm == "treatment"):
            kind = str(rng.choice(["click", "view", "purchase", "complete", "share"]))
            value = None if rng.random() < 0.3 else float(rng.integers(1, 40)) / 4
            position = None if rng.random() < 0.1 else int(rng.integers(5))
            acted.append(outcome(f"e{n}", f"r{n}", f"u{user}", "exp", arm, kind, value, position))
    for low, high in ((0, 7), (7, 300), (300, 301), (301, 600)):
        store.exposures.add_exposures(shown[low:high])
        store.exposures.add_outcomes(acted[low // 3 : high // 3])
    store.exposures.add_outcomes(acted[200:])
    fast = experiment_results(store, "exp")
    slow = experiment_results(store, "exp", from_log=True)
    assert fast["arms"]["control"]["users"] == 20
    assert sum(a["exposures"] for a in fast["arms"].values()) == 600
    assert fast["clicks_by_position"]
    assert json.dumps(fast, sort_keys=True, default=str) == json.dumps(
        slow, sort_keys=True, default=str
    )


def test_rollups_read_one_row_per_user_and_type(store):
    _write(store)
    with store.engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM exposure_rollups")).scalar_one()
        by_type = conn.execute(
            sa.text(
                "SELECT events, value FROM outcome_rollups WHERE user_id = 'u2' AND arm = 'b' "
                "ORDER BY event_type"
            )  # fmt: skip
        ).all()
    assert count == 5  # 4 of "exp", 1 of "other"
    assert [tuple(r) for r in by_type] == [
        (2, 0.0),
        (1, 0.0),
        (1, 2.25),
    ]  # click, complete, purchase
