"""Experiment definitions: what is accepted, and every refusal naming its reason."""

from __future__ import annotations

import pytest

from recstack.errors import ConfigError
from recstack.experiments.config import Experiment

ARMS = [
    {"name": "control", "model": "popularity", "weight": 0.5},
    {"name": "treatment", "model": "champion", "weight": 0.5},
]


def test_a_minimal_definition_gets_defaults():
    experiment = Experiment.from_input({"key": "exp-1", "arms": ARMS})
    assert experiment.status == "draft"
    assert experiment.salt == "exp-1"
    assert experiment.namespace == "default"
    assert experiment.mode == "ab" and experiment.exploration.kind == "none"
    assert experiment.arm_names == ["control", "treatment"]
    assert experiment.buckets == 10_000


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"arms": [{**ARMS[0], "weight": 0.6}, ARMS[1]]}, "weights must sum to 1; they sum to 1.1"),
        ({"arms": [{**ARMS[0], "weight": 0.0}, ARMS[1]]}, "greater than 0"),
        ({"arms": [ARMS[0], {**ARMS[1], "name": "control"}]}, "arm names must be unique"),
        ({"arms": [ARMS[0]]}, "at least 2"),
        ({"arms": [ARMS[0], {**ARMS[1], "model": "a b"}]}, "should match pattern"),
        ({"traffic": 0}, "traffic"),
        ({"traffic": 1.5}, "traffic"),
        ({"primary_metric": "revenue"}, "primary_metric"),
        ({"forced": {"u1": "nope"}}, "forced user 'u1' names unknown arm 'nope'"),
        (
            {
                "mode": "interleave",
                "arms": [
                    *ARMS[:1],
                    {**ARMS[1], "weight": 0.25},
                    {"name": "c", "model": "x", "weight": 0.25},
                ],
            },
            "exactly two arms",
        ),
        ({"start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end must be after"),
        ({"key": "has space"}, "key"),
        ({"status": "running"}, "set by start/stop"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_definitions_are_refused_naming_the_reason(change, reason):
    with pytest.raises(ConfigError, match=None) as caught:
        Experiment.from_input({"key": "exp-1", "arms": ARMS, **change})
    assert reason in str(caught.value)


def test_weights_within_tolerance_are_accepted_as_they_are():
    arms = [{"name": n, "model": "popularity", "weight": 1 / 3} for n in "abc"]
    experiment = Experiment.from_input({"key": "thirds", "arms": arms})
    assert experiment.weights == [1 / 3] * 3


def test_a_stored_definition_round_trips():
    experiment = Experiment.from_input({"key": "exp-1", "arms": ARMS, "traffic": 0.1})
    again = Experiment.model_validate(experiment.as_dict())
    assert again == experiment
