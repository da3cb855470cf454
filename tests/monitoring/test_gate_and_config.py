"""The promotion gate's verdicts, and thresholds checked before anything runs."""

from __future__ import annotations

import pytest

from recstack.errors import ConfigError
from recstack.monitoring.config import DriftConfig, GateConfig, parse_config
from recstack.monitoring.gate import decide

BASE = {"ndcg": 0.20, "coverage": 0.50, "precision_at_1": 0.30, "latency_ms": 2.0}


def test_a_better_challenger_is_promoted_with_every_check_listed() -> None:
    decision = decide(BASE, {**BASE, "ndcg": 0.22}, GateConfig(margin=0.01))
    assert decision.promoted and decision.reason.startswith("promoted: ndcg 0.2200")
    assert [c.metric for c in decision.checks] == [
        "ndcg",
        "coverage",
        "precision_at_1",
        "latency_ms",
    ]
    assert all(c.passed for c in decision.checks)


def test_a_tie_or_a_gain_under_the_margin_is_refused() -> None:
    assert not decide(BASE, dict(BASE), GateConfig()).promoted  # equal is not better
    refused = decide(BASE, {**BASE, "ndcg": 0.205}, GateConfig(margin=0.01))
    assert not refused.promoted and "by the margin 0.01" in refused.reason


@pytest.mark.parametrize(
    ("metric", "value", "words"),
    [
        ("coverage", 0.30, "guardrail coverage regressed"),
        ("precision_at_1", 0.20, "guardrail precision_at_1 regressed"),
        ("latency_ms", 4.5, "guardrail latency_ms regressed"),
    ],
)
def test_each_guardrail_can_refuse_a_better_challenger(metric, value, words) -> None:
    decision = decide(BASE, {**BASE, "ndcg": 0.3, metric: value}, GateConfig())
    assert not decision.promoted and words in decision.reason
    assert [c.metric for c in decision.checks if not c.passed] == [metric]


def test_within_tolerance_is_fine() -> None:
    challenger = {"ndcg": 0.3, "coverage": 0.45, "precision_at_1": 0.28, "latency_ms": 3.9}
    assert decide(BASE, challenger, GateConfig()).promoted


def test_other_primary_metric() -> None:
    champion = {**BASE, "recall": 0.5}
    config = GateConfig(primary_metric="recall")
    assert not decide(champion, {**champion, "ndcg": 0.9}, config).promoted
    assert decide(champion, {**champion, "recall": 0.6}, config).promoted


@pytest.mark.parametrize(
    ("cls", "values", "field"),
    [
        (DriftConfig, {"p_value": 1.5}, "p_value"),
        (DriftConfig, {"distance": 0}, "distance"),
        (DriftConfig, {"share": -0.1}, "share"),
        (DriftConfig, {"current_days": 0}, "current_days"),
        (GateConfig, {"margin": 2}, "margin"),
        (GateConfig, {"holdout_share": 1.0}, "holdout_share"),
        (GateConfig, {"primary_metric": "accuracy"}, "primary_metric"),
        (GateConfig, {"latency_tolerance": -1}, "latency_tolerance"),
    ],
)
def test_out_of_range_thresholds_name_the_field(cls, values, field) -> None:
    with pytest.raises(ConfigError, match=f"invalid {cls.__name__}: {field}"):
        parse_config(cls, values)


def test_unknown_threshold_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"shares.*valid fields: p_value, distance"):
        parse_config(DriftConfig, {"shares": 0.4})
