"""The Locust file: it loads in Locust, and each scenario's shape gives seed 003's rates.

Locust monkey-patches the standard library (gevent) on import, so it is loaded in a child
process, never in the test process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("locust") is None:  # importing it here would patch this process
    pytest.skip("locust is not installed: pip install 'recstack[load]'", allow_module_level=True)

LOCUSTFILE = Path(__file__).resolve().parents[2] / "deploy" / "locust" / "locustfile.py"
PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("locustfile", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
shape = module.ScenarioShape()
ticks = {}
for t in json.loads(sys.argv[2]):
    shape.get_run_time = lambda t=t: t
    ticks[t] = shape.tick()
print(json.dumps({str(k): v for k, v in ticks.items()}))
"""


def ticks(scenario: str, times: list[float], scale: str = "1") -> dict[float, list | None]:
    env = {**os.environ, "LOCUST_SCENARIO": scenario, "LOCUST_TIME_SCALE": scale}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(LOCUSTFILE), json.dumps(times)],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    return {float(k): (v[0] if v else None) for k, v in out.items()}


def test_normal_is_50_per_second_for_5_minutes() -> None:
    assert ticks("normal", [0, 150, 299.9, 300]) == {0: 50, 150: 50, 299.9: 50, 300: None}


def test_peak_is_150_per_second_for_2_minutes() -> None:
    assert ticks("peak", [0, 119.9, 120]) == {0: 150, 119.9: 150, 120: None}


def test_stress_ramps_to_300() -> None:
    got = ticks("stress", [0, 45, 150, 299, 330, 360])
    assert got == {0: 30, 45: 60, 150: 180, 299: 300, 330: 300, 360: None}


def test_time_scale_shortens_a_scenario() -> None:
    assert ticks("normal", [59.9, 60], scale="0.2") == {59.9: 50, 60: None}


def test_unknown_scenario_is_refused() -> None:
    env = {**os.environ, "LOCUST_SCENARIO": "soak"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(LOCUSTFILE), "[0]"],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0 and "choose one of ['normal', 'peak', 'stress']" in result.stderr


def test_locust_loads_the_file() -> None:
    locust = Path(sys.executable).parent / "locust"
    result = subprocess.run(
        [str(locust), "-f", str(LOCUSTFILE), "--list"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RecstackUser" in result.stdout
