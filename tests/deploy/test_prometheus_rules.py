"""The alert and recording rules: promtool's syntax check and its unit tests, both green."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from recstack.testing.prometheus import prometheus_binary

pytestmark = pytest.mark.prometheus


@pytest.fixture
def promtool() -> str:
    return prometheus_binary("promtool")


@pytest.fixture
def deploy_dir() -> Path:
    return Path(__file__).parents[2] / "deploy"


SLO_WINDOWS = {"14.4": ("1h", "5m"), "6": ("6h", "30m"), "1": ("3d", "6h")}


def test_promtool_check_rules(promtool, deploy_dir) -> None:
    done = subprocess.run(
        [promtool, "check", "rules", str(deploy_dir / "prometheus" / "recstack-rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_test_rules(promtool, deploy_dir) -> None:
    done = subprocess.run(
        [promtool, "test", "rules", "recstack-rules-test.yml"],
        cwd=deploy_dir / "prometheus",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_prometheus_config_loads_the_rules(promtool, deploy_dir) -> None:
    done = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],
        cwd=deploy_dir / "prometheus",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recstack-rules.yml" in done.stdout


def test_burn_rate_alerts_pair_a_long_and_a_short_window(deploy_dir) -> None:
    """Both SLOs page at 14.4x (1h/5m) and 6x (6h/30m) and open a ticket at 1x (3d/6h)."""
    rules = yaml.safe_load((deploy_dir / "prometheus" / "recstack-rules.yml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    for slo, metric in (("Availability", "errors"), ("Latency", "slow")):
        for speed, factor in (("Fast", "14.4"), ("Medium", "6"), ("Slow", "1")):
            expr = alerts[f"Recstack{slo}BudgetBurn{speed}"]["expr"]
            long, short = SLO_WINDOWS[factor]
            assert f"recstack:slo_{metric}:ratio_rate{long} > ({factor} *" in expr
            assert f"recstack:slo_{metric}:ratio_rate{short} > ({factor} *" in expr
    expected = {
        "RecstackHigh5xxRatio",
        "RecstackLatencyP95AboveSLO",
        "RecstackDriftDetected",
        "RecstackRetrainFailed",
        "RecstackChampionStale",
    }
    assert expected <= set(alerts)
