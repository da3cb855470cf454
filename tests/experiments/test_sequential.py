"""Sequential testing: valid under continuous peeking where the fixed-horizon test is not."""

from __future__ import annotations

import numpy as np
from scipy import stats

from recstack.experiments.sequential import (
    confidence_sequence_halfwidth,
    msprt_p_value,
    msprt_p_values,
    sequential_test,
)

RUNS, LOOKS, PER_LOOK = 300, 30, 100


def _streams(rng: np.random.Generator, effect: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative difference of means and its variance at each look, for RUNS A/A (or A/B) runs."""
    a = rng.normal(1.0, 1.0, (RUNS, LOOKS * PER_LOOK))
    b = rng.normal(1.0 + effect, 1.0, (RUNS, LOOKS * PER_LOOK))
    n = PER_LOOK * np.arange(1, LOOKS + 1)
    ends = n - 1
    mean_a = np.cumsum(a, axis=1)[:, ends] / n
    mean_b = np.cumsum(b, axis=1)[:, ends] / n
    var_a = (np.cumsum(a**2, axis=1)[:, ends] / n - mean_a**2) / n
    var_b = (np.cumsum(b**2, axis=1)[:, ends] / n - mean_b**2) / n
    return mean_b - mean_a, var_a + var_b


def test_peeking_inflates_fixed_horizon_but_not_msprt() -> None:
    diff, var = _streams(np.random.default_rng(0))
    fixed_p = 2 * stats.norm.sf(np.abs(diff) / np.sqrt(var))
    fixed_fpr = np.mean((fixed_p < 0.05).any(axis=1))
    seq_fpr = np.mean(
        [msprt_p_values(diff[r], var[r], tau2=0.1**2)[-1] < 0.05 for r in range(RUNS)]
    )
    assert fixed_fpr > 0.12  # peeking 30 times at a fixed-horizon test
    assert seq_fpr <= 0.05 + 0.03  # always valid; 3 sd over the nominal rate at most


def test_msprt_has_power_and_covers_the_effect() -> None:
    diff, var = _streams(np.random.default_rng(1), effect=0.2)
    detected = np.mean(
        [msprt_p_values(diff[r], var[r], tau2=0.1**2)[-1] < 0.05 for r in range(RUNS)]
    )
    assert detected > 0.8
    covered_throughout = np.mean(
        [
            all(
                abs(d - 0.2) <= confidence_sequence_halfwidth(v, 0.1**2)
                for d, v in zip(diff[r], var[r], strict=True)
            )
            for r in range(RUNS)
        ]
    )
    assert covered_throughout >= 0.95 - 0.03


def test_p_values_never_increase_and_match_single_look() -> None:
    ps = msprt_p_values(np.array([0.5, 0.1, 0.9]), np.array([0.1, 0.05, 0.01]), tau2=0.04)
    assert np.all(np.diff(ps) <= 0)
    assert ps[0] == msprt_p_value(0.5, 0.1, 0.04)


def test_sequential_interval_is_wider_than_fixed() -> None:
    r = sequential_test(0.05, 0.0001, alpha=0.05, tau=0.1)
    assert r.ci[1] - r.ci[0] > 2 * 1.96 * 0.01
    assert r.significant == (r.p_value < 0.05)
    nan = sequential_test(float("nan"), 0.1)
    assert not nan.significant
