"""The Grafana dashboards: well-formed JSON models, provisioned by the compose file, and every
metric their queries use is one recstack exports (or a recording rule of recstack-rules.yml)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from recstack.serving.api.app import create_app
from recstack.settings import Settings
from recstack.testing.prometheus import planted_home, prometheus_binary

DASHBOARDS = ("recstack-service", "recstack-models", "recstack-experiments", "recstack-drift")
NAME = re.compile(r"\b(recstack[a-zA-Z0-9_:]*|up)\b")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


@pytest.fixture
def deploy_dir() -> Path:
    return Path(__file__).parents[2] / "deploy"


def dashboards(deploy_dir) -> dict[str, dict]:
    folder = deploy_dir / "grafana" / "dashboards"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def queries(board: dict) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (label values and strings left out).

    >>> sorted(metric_names('sum(rate(recstack_x_total{job="recstack"}[5m])) / up'))
    ['recstack_x_total', 'up']
    """
    return set(NAME.findall(QUOTED.sub('""', expr)))


def test_dashboards_are_well_formed(deploy_dir) -> None:
    boards = dashboards(deploy_dir)
    assert set(boards) == set(DASHBOARDS)
    datasource = yaml.safe_load((deploy_dir / "grafana" / "datasource.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for name, board in boards.items():
        assert board["uid"] == name and board["title"].startswith("recstack / ")
        assert isinstance(board["schemaVersion"], int) and board["panels"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
            covered = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not covered & cells, f"{name}: {panel['title']} overlaps another panel"
            cells |= covered
            assert panel["type"] in ("timeseries", "stat", "table", "gauge")
            assert panel["datasource"]["uid"] == uid and panel["targets"]
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(ref_ids) == len(set(ref_ids))
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid and target["expr"].strip()


def test_compose_provisions_the_dashboards_and_rules(deploy_dir) -> None:
    compose = yaml.safe_load((deploy_dir / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]["volumes"]
    provider = yaml.safe_load((deploy_dir / "grafana" / "dashboards.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{path}:ro" in grafana
    assert any(
        v.endswith("/etc/grafana/provisioning/dashboards/dashboards.yml:ro") for v in grafana
    )
    assert any(
        v.endswith("/etc/grafana/provisioning/datasources/datasource.yml:ro") for v in grafana
    )
    prometheus = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus/recstack-rules.yml:/etc/prometheus/recstack-rules.yml:ro" in prometheus
    config = yaml.safe_load((deploy_dir / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["recstack-rules.yml"]


@pytest.fixture
def exported(tmp_path) -> set[str]:
    """Every series name a running recstack server exposes at /metrics."""
    app = create_app(Settings(home=planted_home(tmp_path / "home")))
    with TestClient(app) as client:
        client.get("/healthz")
        text = client.get("/metrics").text
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{s}" for s in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return names


def test_every_metric_a_dashboard_or_rule_reads_is_exported(deploy_dir, exported) -> None:
    rules = yaml.safe_load((deploy_dir / "prometheus" / "recstack-rules.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    known = exported | recorded | {"up"}
    expected = {
        "recstack_drift_share",
        "recstack_retrain_outcomes_total",
        "recstack_model_alias_info",
        "recstack_exposures_served_total",
        "recstack_store_events_total",
    }
    assert expected <= exported
    for name, board in dashboards(deploy_dir).items():
        for expr in queries(board):
            unknown = metric_names(expr) - known
            assert not unknown, f"{name}: {expr!r} reads {sorted(unknown)}, which nothing exports"
    for group in rules["groups"]:
        for rule in group["rules"]:
            unknown = metric_names(rule["expr"]) - known
            assert not unknown, f"{rule.get('alert') or rule['record']} reads {sorted(unknown)}"


@pytest.mark.prometheus
def test_every_dashboard_query_is_valid_promql(deploy_dir, tmp_path) -> None:
    """promtool parses each query (as a recording rule) the way Prometheus will."""
    promtool = prometheus_binary("promtool")
    rules = [
        {"record": f"dashboard:query{n}", "expr": expr}
        for n, expr in enumerate(
            q for board in dashboards(deploy_dir).values() for q in queries(board)
        )
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(rules)} rules found" in done.stdout
