"""Every metric's docstring example runs and holds."""

from __future__ import annotations

import doctest

import recstack.evaluation.metrics


def test_metric_doctests_pass():
    outcome = doctest.testmod(recstack.evaluation.metrics)
    assert outcome.attempted >= 15
    assert outcome.failed == 0
