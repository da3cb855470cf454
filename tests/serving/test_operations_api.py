"""Jobs in the store seen from every worker, the admin audit log, the scheduler's state."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from recstack.serving.runtime.jobs import Job, JobManager


def wait_for(client, headers, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/admin/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_a_job_accepted_by_one_worker_is_visible_from_another(serve, second_worker, als_model):
    with serve(als_model) as s, second_worker(s, als_model) as (other, _engine):
        admin = s.headers("admin")
        body = {"model": "popularity", "evaluate": False}
        accepted = s.client.post("/v1/admin/train", json=body, headers=admin)
        assert accepted.status_code == 202
        job_id = accepted.json()["id"]
        seen = other.get(f"/v1/admin/jobs/{job_id}", headers=admin)  # the other worker
        assert seen.status_code == 200 and seen.json()["kind"] == "train"
        assert seen.json()["request"]["model"] == "popularity"
        done = wait_for(other, admin, job_id)
        assert done["status"] == "succeeded", done["error"]
        assert done["result"]["version"] == 1 and done["finished_at"] is not None
        listed = other.get("/v1/admin/jobs?kind=train", headers=admin).json()["jobs"]
        assert [j["id"] for j in listed] == [job_id]
        assert other.get("/v1/admin/jobs/nope", headers=admin).status_code == 404
        assert other.get("/v1/admin/jobs?kind=BAD!", headers=admin).status_code == 422
        assert other.get("/v1/admin/jobs", headers=s.headers("read")).status_code == 403


def test_a_job_whose_process_died_is_reported_failed(serve, als_model):
    with serve(als_model) as s:
        long_ago = datetime(2026, 1, 1, tzinfo=UTC)
        s.store.operations.insert_job(
            {
                "id": "d" * 32,
                "kind": "train",
                "status": "running",
                "request": {},
                "created_at": long_ago,
                "started_at": long_ago,
                "heartbeat_at": long_ago,
            }
        )
        job = s.client.get(f"/v1/admin/jobs/{'d' * 32}", headers=s.headers("admin")).json()
    assert job["status"] == "failed" and "no heartbeat" in job["error"]


def test_jobs_without_a_store_stay_in_memory() -> None:
    manager = JobManager()
    job = manager.submit("train", {}, lambda: {"ok": 1})
    for _ in range(100):
        if manager.get(job.id).status == "succeeded":
            break
        time.sleep(0.01)
    assert isinstance(manager.get(job.id), Job) and manager.get(job.id).result == {"ok": 1}
    assert [j.id for j in manager.list()] == [job.id]
    manager.shutdown()


def test_admin_actions_are_audited_and_readable_by_admins(serve, als_model):
    with serve(als_model) as s:
        admin, read = s.headers("admin"), s.headers("read")
        prefix = s.keys["admin"].split("_")[1]
        bad = s.client.post("/v1/admin/train", json={"model": "nope"}, headers=admin)
        assert bad.status_code == 422
        s.client.delete("/v1/admin/slots/ghost", headers={**admin, "X-Request-ID": "rid-7"})
        s.client.get("/v1/admin/models", headers=admin)  # a read: not an action
        s.client.post("/v1/admin/reload", headers=read)  # refused before it acted: no entry
        response = s.client.get("/v1/admin/audit", headers=admin)
        assert response.status_code == 200
        entries = response.json()["entries"]
        assert [(e["action"], e["status"]) for e in entries] == [
            ("DELETE /v1/admin/slots/{slot}", 404),
            ("POST /v1/admin/train", 422),
        ]
        assert entries[0]["target"] == "/v1/admin/slots/ghost"
        assert entries[0]["request_id"] == "rid-7"
        assert {e["key_prefix"] for e in entries} == {prefix}
        older = s.client.get(f"/v1/admin/audit?before_id={entries[0]['id']}", headers=admin)
        assert [e["action"] for e in older.json()["entries"]] == ["POST /v1/admin/train"]
        mine = s.client.get(f"/v1/admin/audit?key_prefix={prefix}&limit=1", headers=admin)
        assert len(mine.json()["entries"]) == 1
        assert s.client.get("/v1/admin/audit", headers=read).status_code == 403
        assert s.client.get("/v1/admin/audit?limit=0", headers=admin).status_code == 422


def test_scheduler_state_names_the_active_scheduler(serve, als_model):
    with serve(als_model, retrain_schedule="0 3 * * *", retention_schedule="") as s:
        s.store.operations.acquire_lock("scheduler", "host-a:12", 60)
        state = s.client.get("/v1/admin/scheduler", headers=s.headers("admin")).json()
    assert state["active"]["owner"] == "host-a:12" and state["retrain_running"] is None
    assert state["triggers"][0] == "retrain on schedule '0 3 * * *' (UTC)"
    with serve(als_model, drift_schedule="every hour") as s:
        state = s.client.get("/v1/admin/scheduler", headers=s.headers("admin")).json()
    assert state["triggers"][0].startswith("invalid: drift_schedule (RECSTACK_DRIFT_SCHEDULE)")


def test_the_scheduler_tells_the_workers_to_reload_after_retention(tmp_path) -> None:
    from recstack.serving.runtime.broadcast import FileBroadcast
    from recstack.serving.runtime.image import images_root
    from recstack.serving.runtime.scheduler_process import change_notifier
    from recstack.settings import Settings

    shared = tmp_path / "shared"
    shared.mkdir()
    FileBroadcast.create(shared)
    worker = FileBroadcast(shared)  # what a serving worker listens on
    settings = Settings(home=tmp_path / "home", worker_state_dir=shared)
    image = images_root(settings.home) / "some-image"
    image.mkdir(parents=True)
    change_notifier(settings)("retention", {"deleted": 3})
    heard: list[dict] = []
    assert worker.poll(heard.append) == 1
    assert heard[0]["kind"] == "reload" and heard[0]["reason"] == "retention"
    assert not image.exists()  # images held the deleted events
    worker.stop()
