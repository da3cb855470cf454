"""The ``recstack keys`` commands, and ``recstack serve`` as a real multi-worker server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from recstack.cli.app import _register, app
from recstack.settings import Settings, get_settings
from recstack.store import Store
from recstack.testing.processes import stop_process_group


@pytest.fixture
def home(tmp_path, monkeypatch, planted, fill) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("RECSTACK_HOME", str(home))
    monkeypatch.delenv("RECSTACK_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECSTACK_REDIS_URL", raising=False)
    get_settings.cache_clear()
    settings = Settings(home=home)
    settings.ensure_home()
    with Store.from_settings(settings) as store:
        fill(store, planted)
    yield home
    get_settings.cache_clear()


def test_keys_create_list_revoke(home):
    _register()
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--scope", "write", "--name", "ingest-bot"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    assert key.startswith("rs_")
    prefix = key.split("_")[1]
    with Store.from_settings(Settings(home=home)) as store:
        assert store.verify_api_key(key)["scope"] == "write"
    listed = runner.invoke(app, ["keys", "list", "--json"])
    assert listed.exit_code == 0 and prefix in listed.stdout and key not in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", prefix]).exit_code == 0
    with Store.from_settings(Settings(home=home)) as store:
        assert store.verify_api_key(key) is None
    again = runner.invoke(app, ["keys", "revoke", prefix])
    assert again.exit_code == 1 and "no active key" in again.output
    bad = runner.invoke(app, ["keys", "create", "--scope", "root"])
    assert bad.exit_code == 2 and "--scope must be one of" in bad.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_workers_that_share_metrics_and_user_changes(home):
    with Store.from_settings(Settings(home=home)) as store:
        key = store.create_api_key("read", "cli-test")[0]
        write_key = store.create_api_key("write", "cli-test")[0]
    server, port = start_two_workers(home)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base)
        headers = {"Authorization": f"Bearer {key}", "Connection": "close"}
        n = 20
        for user in range(n):  # one connection each, so both workers take requests
            body = httpx.get(f"{base}/v1/users/u{user}/recommendations?k=3", headers=headers).json()
            assert len(body["items"]) == 3 and body["model"]["name"] == "popularity"
        total, workers = 0.0, set()
        metrics = httpx.get(f"{base}/metrics", headers=headers).text
        for family in text_string_to_metric_families(metrics):
            for sample in family.samples:
                if (
                    sample.name == "recstack_http_responses_total"
                    and sample.labels["route"] == "/v1/users/{user_id}/recommendations"
                ):
                    total += sample.value
                if sample.name == "recstack_model_info":
                    workers.add(sample.labels["pid"])
        assert total == n  # summed over both workers' samples
        assert len(workers) == 2  # one live model series per worker process
        assert httpx.get(f"{base}/v1/popular").status_code == 401

        # without Redis, an event posted to one worker reaches the other (a shared file)
        url = f"{base}/v1/users/u5/recommendations?k=3"
        top = httpx.get(url, headers=headers).json()["items"][0]["item_id"]
        event = {"user_id": "u5", "item_id": top}
        writer = {"Authorization": f"Bearer {write_key}", "Connection": "close"}
        assert httpx.post(f"{base}/v1/events", json=event, headers=writer).status_code == 200
        for _ in range(10):  # new connections: both workers answer some of these
            items = httpx.get(url, headers=headers).json()["items"]
            assert top not in [item["item_id"] for item in items]
    finally:
        stop_process_group(server)


def start_two_workers(home: Path, **settings: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    script = Path(sys.executable).with_name("recstack")
    env = {**os.environ, "RECSTACK_HOME": str(home), "RECSTACK_LOG_LEVEL": "WARNING"}
    env.update({f"RECSTACK_{name.upper()}": value for name, value in settings.items()})
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [str(script), "serve", "--port", str(port), "--workers", "2", "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return server, port


def wait_up(base: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code in (200, 503):
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError("the server did not come up")


def listening_pids(port: int) -> set[int]:
    """Processes holding a listening TCP socket on ``port`` (from /proc: socket inodes)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    pids = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                pids.add(int(fd_dir.parent.name))
        except OSError:
            continue  # a process that ended, or not ours to read
    return pids


def two_listening(port: int, without: int | None = None, timeout: float = 60.0) -> set[int]:
    """The two processes listening on ``port`` once they are two, ``without`` not among them
    (a worker that must have been replaced)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = listening_pids(port)
        if len(now) == 2 and without not in now:
            return now
        time.sleep(0.2)
    raise AssertionError(f"not two listening workers without {without}: {now}")


def test_each_worker_listens_on_its_own_socket_and_a_killed_worker_is_replaced(home):
    server, port = start_two_workers(home)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base)
        workers = two_listening(port)
        # two listening sockets, one per worker, and none in the parent: the kernel spreads
        # connections over the workers instead of one worker accepting a whole burst
        assert len(workers) == 2 and server.pid not in workers
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        two_listening(port, without=victim)
        assert server.poll() is None
        for _ in range(10):  # new connections, answered whichever worker takes them
            assert httpx.get(f"{base}/healthz", headers={"Connection": "close"}).status_code == 200
    finally:
        stop_process_group(server)
    assert server.returncode == 0  # SIGTERM stops the workers and the parent cleanly


def test_a_hung_worker_is_killed_and_replaced(home):
    server, port = start_two_workers(home, worker_timeout_seconds="3")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base)
        workers = two_listening(port)
        assert len(workers) == 2
        time.sleep(2)  # both serve and beat
        victim = min(workers)
        os.kill(victim, signal.SIGSTOP)  # alive, but its event loop no longer runs
        now = two_listening(port, without=victim)
        assert not Path(f"/proc/{victim}").exists() or "Z" in _state(victim)  # killed
        assert server.poll() is None
        for _ in range(10):  # new connections, answered whichever worker takes them
            assert httpx.get(f"{base}/healthz", headers={"Connection": "close"}).status_code == 200
        time.sleep(4)  # the healthy worker is not mistaken for a hung one
        assert listening_pids(port) == now
    finally:
        stop_process_group(server)
    output = server.stdout.read().decode() if server.stdout else ""
    assert f"worker {victim} sent no heartbeat" in output


def _state(pid: int) -> str:
    """A process's state letter from /proc (``Z``: a zombie not yet reaped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_serve_refuses_a_port_another_process_listens_on(home):
    with socket.socket() as taken:  # a plain listener, as another server would hold it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        script = Path(sys.executable).with_name("recstack")
        env = {**os.environ, "RECSTACK_HOME": str(home)}
        done = subprocess.run(
            [str(script), "serve", "--port", str(port), "--workers", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_second_server_on_a_running_servers_port_is_refused(home):
    from recstack.serving.runtime.workers import PortInUseError, port_socket

    first = port_socket("127.0.0.1", 0, exclusive=True)
    port = first.getsockname()[1]
    worker = port_socket("127.0.0.1", port)  # a worker of the first server joins its port
    worker.listen()
    try:
        # without the check a second SO_REUSEPORT server would share the port silently
        with pytest.raises(PortInUseError, match="Address already in use"):
            port_socket("127.0.0.1", port, exclusive=True)
    finally:
        worker.close()
        first.close()
