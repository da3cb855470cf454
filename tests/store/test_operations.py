"""Job records, cross-process locks, the audit log and batched retention, on both backends."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from recstack.store import Store


def test_job_records_round_trip_and_stale_jobs_fail(store) -> None:
    ops = store.operations
    created = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    ops.insert_job(
        {
            "id": "a" * 32,
            "kind": "train",
            "status": "queued",
            "request": {"model": "als"},
            "created_at": created,
        }
    )
    ops.update_job("a" * 32, status="running", started_at=created, heartbeat_at=created)
    job = ops.get_job("a" * 32)
    assert job["status"] == "running" and job["request"] == {"model": "als"}
    assert job["created_at"] == created and job["created_at"].tzinfo is not None
    ops.insert_job(
        {
            "id": "b" * 32,
            "kind": "retrain",
            "status": "succeeded",
            "result": {"when": created},
            "created_at": created + timedelta(minutes=1),
        }
    )
    assert [j["id"] for j in ops.list_jobs()] == ["b" * 32, "a" * 32]  # newest first
    assert [j["id"] for j in ops.list_jobs(kind="train")] == ["a" * 32]
    assert ops.get_job("b" * 32)["result"] == {"when": str(created)}  # stored as JSON
    assert ops.job_counts() == {("train", "running"): 1, ("retrain", "succeeded"): 1}
    # a job whose heartbeat stopped long ago is failed; a finished one is left alone
    assert ops.fail_stale_jobs(created + timedelta(hours=1), "lost") == 1
    assert ops.get_job("a" * 32)["status"] == "failed"
    assert ops.get_job("a" * 32)["error"] == "lost"
    assert ops.get_job("b" * 32)["status"] == "succeeded"
    assert ops.get_job("missing") is None


def test_lock_is_exclusive_renewable_and_expires(store) -> None:
    from recstack.store import jobs

    e = store.engine
    assert jobs.acquire_lock(e, "retrain", "host:1", 60, now=1000.0)
    assert not jobs.acquire_lock(e, "retrain", "host:2", 60, now=1010.0)  # held
    assert jobs.acquire_lock(e, "retrain", "host:1", 60, now=1020.0)  # renewed by its owner
    assert jobs.lock_holder(e, "retrain", now=1070.0)["owner"] == "host:1"
    assert jobs.renew_lock(e, "retrain", "host:1", 60, now=1070.0)
    assert not jobs.renew_lock(e, "retrain", "host:2", 60, now=1070.0)
    assert not jobs.acquire_lock(e, "retrain", "host:2", 60, now=1120.0)  # renewed to 1130
    assert jobs.acquire_lock(e, "retrain", "host:2", 60, now=1131.0)  # expired: taken over
    assert not jobs.renew_lock(e, "retrain", "host:1", 60, now=1132.0)  # the old owner lost it
    assert not jobs.release_lock(e, "retrain", "host:1")
    assert jobs.release_lock(e, "retrain", "host:2")
    assert jobs.lock_holder(e, "retrain") is None
    assert jobs.acquire_lock(e, "retrain", "host:1", 60)


def test_lock_has_one_winner_among_concurrent_takers(store_url) -> None:
    stores = [Store(store_url) for _ in range(6)]
    stores[0].migrate()
    barrier = threading.Barrier(len(stores))
    won: list[bool] = [False] * len(stores)

    def take(i: int) -> None:
        barrier.wait()
        won[i] = stores[i].operations.acquire_lock("scheduler", f"p{i}", 60)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert sum(won) == 1


def test_audit_log_newest_first_with_filters(store) -> None:
    ops = store.operations
    for n in range(5):
        ops.record_audit(
            key_prefix="abc" if n % 2 else "xyz",
            action="POST /v1/admin/reload",
            target="/v1/admin/reload",
            status=200,
            request_id=f"r{n}",
        )
    entries = ops.list_audit(limit=3)
    assert [e["request_id"] for e in entries] == ["r4", "r3", "r2"]
    assert entries[0]["at"].tzinfo is not None and entries[0]["status"] == 200
    assert [e["request_id"] for e in ops.list_audit(key_prefix="abc")] == ["r3", "r1"]
    older = ops.list_audit(before_id=entries[-1]["id"])
    assert [e["request_id"] for e in older] == ["r1", "r0"]


def test_delete_events_before_in_batches(store, make_events) -> None:
    from recstack.data.loaders import LoadedData

    rows = [(f"e{n}", f"u{n % 3}", f"i{n % 4}", "view", float("nan"), 1000 + n) for n in range(25)]
    store.ingest(LoadedData(make_events(rows), source="t"))
    batches: list[int] = []
    deleted = store.operations.delete_events_before(1017, batch_size=5, on_batch=batches.append)
    assert deleted == 17 and batches == [5, 5, 5, 2]
    left = store.snapshot()
    assert left.n_interactions == 8 and int(left.timestamp.min()) == 1017
    assert store.operations.delete_events_before(1017, batch_size=5) == 0
