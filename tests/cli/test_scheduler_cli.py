"""``recstack scheduler | retention | audit`` and ``recstack serve --with-scheduler``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from recstack.cli.app import app
from recstack.data.loaders import LoadedData
from recstack.settings import Settings, get_settings
from recstack.store import Store
from recstack.testing.data import planted_frame
from recstack.testing.processes import stop_process_group

ENV = (
    "RECSTACK_DATABASE_URL",
    "RECSTACK_MLFLOW_TRACKING_URI",
    "RECSTACK_CONFIG",
    "RECSTACK_REDIS_URL",
    "RECSTACK_RETRAIN_SCHEDULE",
    "RECSTACK_RETRAIN_MIN_NEW_EVENTS",
    "RECSTACK_DRIFT_SCHEDULE",
    "RECSTACK_RETENTION_DAYS",
)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    inter, items = planted_frame(n_users=40, n_items=30, per_user=6)
    with Store.from_settings(Settings(home=path)) as store:
        store.ingest(LoadedData(inter, items=items))
    for var in ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RECSTACK_HOME", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_a_bad_schedule_is_a_usage_error_naming_the_setting(home, monkeypatch) -> None:
    monkeypatch.setenv("RECSTACK_RETRAIN_SCHEDULE", "61 * * * *")
    for command in (["scheduler", "--once"], ["scheduler"], ["serve", "--with-scheduler"]):
        result = invoke(*command)
        assert result.exit_code == 2, (command, result.output)
        assert "retrain_schedule (RECSTACK_RETRAIN_SCHEDULE)" in result.output
        assert "minute: 61 is outside 0-59" in result.output


def test_scheduler_once_runs_what_is_due(home, monkeypatch) -> None:
    monkeypatch.setenv("RECSTACK_RETENTION_DAYS", "1")  # not due now: its schedule is nightly
    result = invoke("scheduler", "--once", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["actions"] == []
    assert "nothing was due" in invoke("scheduler", "--once").stdout


def test_retention_command_deletes_old_events(home) -> None:
    with Store.from_settings(Settings(home=home)) as store:
        total = store.stats()["interactions"]
        now = int(datetime.now(UTC).timestamp())
        store.add_events(
            [
                {
                    "event_id": "fresh-1",
                    "user_id": "u1",
                    "item_id": "i1",
                    "event_type": "view",
                    "timestamp": now,
                }
            ]
        )
    assert invoke("retention").exit_code == 2  # no window set anywhere
    result = invoke("retention", "--days", "30", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["deleted"] == total  # the planted events are years old
    with Store.from_settings(Settings(home=home)) as store:
        assert store.stats()["interactions"] == 1


def test_audit_command_lists_entries(home) -> None:
    with Store.from_settings(Settings(home=home)) as store:
        store.operations.record_audit(
            key_prefix="abcd1234",
            action="POST /v1/admin/reload",
            target="/v1/admin/reload",
            status=200,
        )
    entries = json.loads(invoke("audit", "--json").stdout)
    assert [(e["key_prefix"], e["action"]) for e in entries] == [
        ("abcd1234", "POST /v1/admin/reload")
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_with_scheduler_runs_jobs_the_api_shows(home) -> None:
    """The embedded scheduler starts a retrain on new events; any worker's API shows the job
    (it fails here: nothing is registered as champion yet, and says so)."""
    with Store.from_settings(Settings(home=home)) as store:
        key = store.create_api_key("admin", "ops")[0]
    port = free_port()
    env = {
        **os.environ,
        "RECSTACK_HOME": str(home),
        "RECSTACK_LOG_LEVEL": "WARNING",
        "RECSTACK_RETRAIN_MIN_NEW_EVENTS": "1",
        "RECSTACK_SCHEDULER_POLL_SECONDS": "0.5",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("recstack")),
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--with-scheduler",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    try:
        deadline, jobs = time.monotonic() + 120, []
        while time.monotonic() < deadline:
            try:
                jobs = httpx.get(f"{base}/v1/admin/jobs?kind=retrain", headers=headers).json()
                jobs = jobs["jobs"]
                if jobs and jobs[0]["status"] in ("succeeded", "failed"):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert jobs, "the scheduler started no retrain"
        job = jobs[0]
        assert job["request"]["trigger"] == "events" and job["status"] == "failed"
        assert "champion" in job["error"]
        for _ in range(4):  # new connections reach both workers: each reads it from the store
            one = httpx.get(
                f"{base}/v1/admin/jobs/{job['id']}", headers={**headers, "Connection": "close"}
            )
            assert one.status_code == 200 and one.json()["status"] == "failed"
        state = httpx.get(f"{base}/v1/admin/scheduler", headers=headers).json()
        assert state["active"] is not None and state["triggers"][0] == "retrain after 1 new events"
    finally:
        stop_process_group(server, timeout=30)
    with Store.from_settings(Settings(home=home)) as store:
        assert store.operations.lock_holder("scheduler") is None  # given back at shutdown
