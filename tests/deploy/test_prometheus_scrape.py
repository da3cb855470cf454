"""The real Prometheus binary scrapes a real ``recstack serve`` and evaluates recstack's rules:
a recording rule over the scraped HTTP series, and the drift alert fed by the store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from recstack.settings import Settings
from recstack.store import Store
from recstack.store.monitoring import save_drift_report
from recstack.testing.processes import stop_process_group
from recstack.testing.prometheus import planted_home, prometheus_binary

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen in {timeout} s (last: {last!r})")


def fast_rules(deploy_dir: Path, tmp_path: Path) -> Path:
    """recstack-rules.yml with every group evaluated each second instead of each minute."""
    rules = yaml.safe_load((deploy_dir / "prometheus" / "recstack-rules.yml").read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
    path = tmp_path / "recstack-rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def test_prometheus_scrapes_recstack_and_evaluates_its_rules(tmp_path) -> None:
    prometheus_bin = prometheus_binary("prometheus")
    deploy_dir = Path(__file__).parents[2] / "deploy"
    home = planted_home(tmp_path / "home")
    settings = Settings(home=home)
    with Store.from_settings(settings) as store:
        key = store.create_api_key("read", "prometheus-test")[0]
        report = {
            "id": "r-test",
            "created_at": datetime.now(UTC).isoformat(),
            "drifted": True,
            "share": 0.6,
        }
        save_drift_report(store.engine, report, "<html></html>")
    app_port, prom_port = free_port(), free_port()
    env = {**os.environ, "RECSTACK_HOME": str(home), "RECSTACK_LOG_LEVEL": "WARNING"}
    for name in ("PROMETHEUS_MULTIPROC_DIR", "RECSTACK_DATABASE_URL", "RECSTACK_REDIS_URL"):
        env.pop(name, None)
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("recstack")),
            "serve",
            "--port",
            str(app_port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(fast_rules(deploy_dir, tmp_path))],
        "scrape_configs": [
            {
                "job_name": "recstack",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    app, prom = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{prom_port}"

    def query(expr: str) -> list[dict]:
        body = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5).json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    try:
        wait_until(
            lambda: httpx.get(f"{app}/healthz", timeout=2).status_code == 200, 90, "recstack up"
        )
        wait_until(
            lambda: httpx.get(f"{prom}/-/ready", timeout=2).status_code == 200, 60, "prometheus up"
        )
        headers = {"Authorization": f"Bearer {key}"}

        def traffic() -> list[dict]:
            for user in range(5):
                httpx.get(f"{app}/v1/users/u{user}/recommendations?k=3", headers=headers)
            return query(
                'recstack:http_requests:rate5m{route="/v1/users/{user_id}/recommendations"}'
            )

        recorded = wait_until(traffic, 60, "the recording rule over scraped requests")
        assert float(recorded[0]["value"][1]) > 0
        assert float(query('up{job="recstack"}')[0]["value"][1]) == 1
        assert float(query("recstack_drift_share")[0]["value"][1]) == 0.6

        def drift_alert() -> list[dict]:
            alerts = httpx.get(f"{prom}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
            return [
                a
                for a in alerts
                if a["labels"]["alertname"] == "RecstackDriftDetected" and a["state"] == "firing"
            ]

        (alert,) = wait_until(drift_alert, 30, "the drift alert firing")
        assert alert["labels"]["severity"] == "ticket"
        groups = httpx.get(f"{prom}/api/v1/rules", timeout=5).json()["data"]["groups"]
        unhealthy = [r["name"] for g in groups for r in g["rules"] if r["health"] == "err"]
        assert unhealthy == []
    finally:
        stop_process_group(prometheus)
        stop_process_group(server)
