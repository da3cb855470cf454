"""Power and sample size: planned sizes deliver the planned power in simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recstack.experiments.power import (
    minimum_detectable_effect,
    power,
    sample_size,
    sample_size_for_lift,
)


def test_planned_sample_size_reaches_planned_power() -> None:
    n = sample_size(1.0, 0.3)
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (400, n))
    b = rng.normal(0.3, 1.0, (400, n))
    p = stats.ttest_ind(b, a, axis=1, equal_var=False).pvalue
    achieved = np.mean(p < 0.05)
    assert achieved == pytest.approx(0.8, abs=0.06)  # 400 runs: sd 0.02


def test_power_sample_size_and_mde_agree() -> None:
    n = sample_size(2.0, 0.25, alpha=0.01, power=0.9)
    assert power(2.0, 0.25, n, alpha=0.01) >= 0.9
    assert power(2.0, 0.25, n - 5, alpha=0.01) < 0.9
    assert minimum_detectable_effect(2.0, n, alpha=0.01, power=0.9) <= 0.25
    assert sample_size_for_lift(0.2, 0.4, 0.1) == sample_size(0.4, 0.02)


def test_bad_planning_inputs() -> None:
    with pytest.raises(ValueError, match="non-zero"):
        sample_size(1.0, 0.0)
    with pytest.raises(ValueError, match="strictly between"):
        sample_size(1.0, 0.1, alpha=1.5)
