"""The scheduler: cron, new-event and drift triggers, cooldown, skips, the cross-process lock,
retention, and job records every server worker can read."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recstack.errors import ConfigError
from recstack.settings import Settings
from recstack.store import Store
from recstack.workflows.scheduler import (
    LEADER_LOCK,
    RETRAIN_LOCK,
    Scheduler,
    SchedulerConfig,
)

T0 = datetime(2026, 3, 2, 2, 59, tzinfo=UTC)


def add_events(store: Store, n: int, *, start: int = 0, ts: int = 1_700_000_000) -> None:
    store.add_events(
        [
            {
                "event_id": f"s{start + k}",
                "user_id": f"u{k % 7}",
                "item_id": f"i{k % 5}",
                "event_type": "view",
                "timestamp": ts + k,
            }
            for k in range(n)
        ],
        create_items=True,
    )


class Retrains:
    """The retrain work: records its calls, promotes unless told to fail or refuse."""

    def __init__(self, promoted: bool = True, fail: bool = False) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.promoted = promoted
        self.fail = fail

    def __call__(self, settings, store, reason: str, drift_id: str | None) -> dict[str, Any]:
        self.calls.append((reason, drift_id))
        if self.fail:
            raise RuntimeError("the challenger could not be fitted")
        return {"promoted": self.promoted, "reason": "better" if self.promoted else "worse"}


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.migrate()
    yield s
    s.close()


def home_of(store: Store) -> Path:
    return Path(store.engine.url.database).parent / "home"


def scheduler(store, retrain=None, drift=None, owner="host:1", **settings: Any) -> Scheduler:
    return Scheduler(
        Settings(**{"home": home_of(store), "retention_schedule": "", **settings}),
        store,
        retrain=retrain or Retrains(),
        drift=drift or (lambda s, st: {"id": "d0", "drifted": False, "share": 0.0}),
        started_at=T0,
        owner=owner,
    )


def test_bad_schedules_are_clear_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"retrain_schedule .*'0 25 \* \* \*'.*hour: 25"):
        SchedulerConfig.from_settings(Settings(retrain_schedule="0 25 * * *"))
    with pytest.raises(ConfigError, match="drift_schedule .* must have 5 fields"):
        SchedulerConfig.from_settings(Settings(drift_schedule="hourly"))
    config = SchedulerConfig.from_settings(
        Settings(retrain_schedule="@daily", retrain_min_new_events=10, retention_days=90)
    )
    assert config.describe() == [
        "retrain on schedule '@daily' (UTC)",
        "retrain after 10 new events",
        "delete events older than 90 days on '30 2 * * *'",
        "cooldown between retrains: 3600 s",
    ]


def test_cron_trigger_cooldown_and_nothing_changed(store) -> None:
    add_events(store, 10)
    work = Retrains()
    s = scheduler(store, work, retrain_schedule="0 3 * * *", retrain_cooldown_seconds=3600)
    first = s.tick(T0 + timedelta(minutes=1))  # 03:00 passed
    assert first.kinds() == ["retrain"] and first.actions[0]["promoted"] is True
    assert work.calls == [("schedule", None)]
    job = store.operations.get_job(first.actions[0]["job_id"])
    assert job["kind"] == "retrain" and job["status"] == "succeeded"
    assert job["result"]["mark"] == 10 and job["request"]["trigger"] == "schedule"
    assert s.tick(T0 + timedelta(minutes=30)).kinds() == []  # not due again until tomorrow
    next_day = s.tick(T0 + timedelta(days=1, minutes=1))
    assert next_day.kinds() == ["skip"] and "nothing changed" in next_day.actions[0]["reason"]
    add_events(store, 3, start=100)
    s.config = SchedulerConfig.from_settings(
        Settings(
            retrain_schedule="*/5 * * * *", retrain_cooldown_seconds=3600, retention_schedule=""
        )
    )
    # a retrain started 2 days ago, so not in cooldown; the one after it is
    assert s.tick(T0 + timedelta(days=2, minutes=1)).kinds() == ["retrain"]
    add_events(store, 3, start=200)
    cooled = s.tick(T0 + timedelta(days=2, minutes=6))
    assert cooled.kinds() == ["skip"] and "cooldown" in cooled.actions[0]["reason"]
    assert len(work.calls) == 2


def test_new_events_trigger_counts_from_the_last_promoted_data(store) -> None:
    work = Retrains()
    s = scheduler(store, work, retrain_min_new_events=5, retrain_cooldown_seconds=0)
    add_events(store, 4)
    assert s.tick(T0 + timedelta(seconds=30)).kinds() == []
    add_events(store, 1, start=50)
    assert s.tick(T0 + timedelta(seconds=60)).kinds() == ["retrain"]
    assert work.calls == [("events", None)]
    add_events(store, 4, start=60)
    assert s.new_events_since_champion() == 4
    assert s.tick(T0 + timedelta(seconds=90)).kinds() == []
    work.promoted = False  # a refused challenger: the champion's data stays the base
    add_events(store, 1, start=70)
    assert s.tick(T0 + timedelta(seconds=120)).kinds() == ["retrain"]
    assert s.new_events_since_champion() == 5
    refused = s.tick(T0 + timedelta(seconds=150))  # still 5 behind, but nothing new was tried
    assert refused.kinds() == ["skip"] and "nothing changed" in refused.actions[0]["reason"]


def test_drift_trigger_passes_the_report_and_failures_are_recorded(store) -> None:
    add_events(store, 6)
    reports = iter(
        [{"id": "d1", "drifted": True, "share": 0.6}, {"id": "d2", "drifted": False, "share": 0.2}]
    )
    work = Retrains(fail=True)
    s = scheduler(
        store,
        work,
        drift=lambda st, sto: next(reports),
        drift_schedule="0 * * * *",
        retrain_cooldown_seconds=0,
    )
    tick = s.tick(T0 + timedelta(minutes=1))
    assert tick.kinds() == ["drift", "retrain"] and work.calls == [("drift", "d1")]
    failed = store.operations.get_job(tick.actions[1]["job_id"])
    assert failed["status"] == "failed" and "could not be fitted" in failed["error"]
    assert store.operations.lock_holder(RETRAIN_LOCK) is None  # released after the failure
    assert s.tick(T0 + timedelta(hours=1, minutes=1)).kinds() == ["drift"]  # d2: no drift
    assert [j["kind"] for j in store.operations.list_jobs()].count("drift") == 2


def test_one_scheduler_acts_the_other_stands_by_and_takes_over(store) -> None:
    add_events(store, 5)
    a_work, b_work = Retrains(), Retrains()
    a = scheduler(
        store, a_work, owner="host:a", retrain_min_new_events=1, retrain_cooldown_seconds=0
    )
    b = scheduler(
        store, b_work, owner="host:b", retrain_min_new_events=1, retrain_cooldown_seconds=0
    )
    assert a.tick(T0).kinds() == ["retrain"]
    standby = b.tick(T0)
    assert standby.kinds() == ["standby"] and "host:a" in standby.actions[0]["reason"]
    assert b_work.calls == []
    a.close()  # a stops: b takes over at its next pass
    add_events(store, 1, start=10)
    assert b.tick(T0 + timedelta(minutes=1)).kinds() == ["retrain"]
    assert store.operations.lock_holder(LEADER_LOCK)["owner"] == "host:b"


def test_a_retrain_running_elsewhere_is_not_started_twice(store) -> None:
    add_events(store, 5)
    work = Retrains()
    s = scheduler(store, work, retrain_min_new_events=1, retrain_cooldown_seconds=0)
    assert store.operations.acquire_lock(RETRAIN_LOCK, "api-worker:9", 60)
    tick = s.tick(T0)
    assert tick.kinds() == ["skip"] and "api-worker:9" in tick.actions[0]["reason"]
    assert work.calls == []


def test_retention_job_deletes_old_events_and_tells_servers(store) -> None:
    now = datetime(2026, 3, 2, 2, 31, tzinfo=UTC)
    old = int((now - timedelta(days=100)).timestamp())
    add_events(store, 7, ts=old)
    add_events(store, 3, start=50, ts=int((now - timedelta(days=10)).timestamp()))
    changes: list[tuple[str, dict]] = []
    s = Scheduler(
        Settings(home=home_of(store), retention_days=90),
        store,
        on_change=lambda kind, r: changes.append((kind, r)),
        started_at=now - timedelta(minutes=2),
        owner="host:1",
    )
    tick = s.tick(now)
    assert tick.kinds() == ["retention"] and tick.actions[0]["result"]["deleted"] == 7
    assert store.snapshot().n_interactions == 3
    assert changes and changes[0][0] == "retention"


def test_run_forever_ticks_until_stopped_and_releases_the_lock(store) -> None:
    add_events(store, 3)
    work = Retrains()
    s = Scheduler(
        Settings(
            home=home_of(store),
            retrain_min_new_events=1,
            scheduler_poll_seconds=0.05,
            retention_schedule="",
        ),
        store,
        retrain=work,
        owner="host:loop",
    )
    stop = threading.Event()
    thread = threading.Thread(target=s.run_forever, args=(stop,))
    thread.start()
    try:
        for _ in range(200):
            if work.calls:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert work.calls == [("events", None)]  # then the cooldown holds it back
    assert store.operations.lock_holder(LEADER_LOCK) is None


def test_new_events_count_from_the_champion_window_before_any_scheduled_retrain(tmp_path) -> None:
    """A champion trained by hand: events timestamped after its training window are new."""
    from recstack.workflows.train import train_and_register

    settings = Settings(home=tmp_path / "home", retrain_min_new_events=3, retention_schedule="")
    settings.ensure_home()
    store = Store.from_settings(settings)
    add_events(store, 20, ts=1_700_000_000)
    train_and_register(settings, "popularity", evaluate=False, promote="champion")
    work = Retrains()
    s = Scheduler(settings, store, retrain=work, started_at=T0, owner="host:1")
    assert s.new_events_since_champion() == 0
    assert s.tick(T0 + timedelta(seconds=30)).kinds() == []
    add_events(store, 3, start=100, ts=1_800_000_000)  # after the window
    assert s.new_events_since_champion() == 3
    assert s.tick(T0 + timedelta(seconds=60)).kinds() == ["retrain"]
    store.close()
