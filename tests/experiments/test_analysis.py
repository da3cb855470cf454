"""Experiment analysis: hand-computed statistics, error rates by simulation, the JSON result."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from recstack.experiments.analysis import ArmSample, analyse_experiment
from recstack.experiments.stats import (
    holm,
    linearise_ratio,
    ratio_delta_variance,
    relative_lift,
    srm_test,
    welch_t_test,
)

RUNS = 300
# 300 runs at alpha = 0.05: sd of the rejection rate is 0.0126; allow ~3 sd
FPR_LOW, FPR_HIGH = 0.012, 0.09


def _arm(rng: np.random.Generator, n: int, ctr: float, pre: bool = False) -> ArmSample:
    """Users with heterogeneous activity and click propensity (clustered, like real traffic)."""
    activity = rng.gamma(2.0, 1.0, n)
    exposures = rng.poisson(3 * activity) + 1
    p = np.clip(ctr * rng.gamma(4.0, 0.25, n), 0, 1)
    clicks = rng.binomial(exposures, p)
    # clicks of the same users over a longer pre-period (same activity and propensity)
    pre_values = rng.binomial(rng.poisson(12 * activity) + 1, p).astype(float) if pre else None
    return ArmSample(exposures, clicks, (clicks > 0).astype(float), clicks * 1.5, pre=pre_values)


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(1, 2, 50), rng.normal(0.5, 1, 80)
    ours = welch_t_test(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert ours.t == pytest.approx(ref.statistic)
    assert ours.p_value == pytest.approx(ref.pvalue)


def test_linearised_ratio_has_delta_variance() -> None:
    rng = np.random.default_rng(2)
    y = rng.poisson(5, 200) + 1.0
    x = rng.binomial(y.astype(int), 0.2).astype(float)
    lin = linearise_ratio(x, y)
    assert lin.mean() == pytest.approx(x.sum() / y.sum())
    assert lin.var(ddof=1) / lin.size == pytest.approx(ratio_delta_variance(x, y))


def test_ctr_interval_covers_the_truth_at_nominal_rate() -> None:
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(RUNS):
        arm = _arm(rng, 400, 0.1)
        ci = analyse_experiment({"a": arm, "b": _arm(rng, 400, 0.1)}, {"a": 1, "b": 1}, "a")[
            "arms"
        ]["a"]["metrics"]["ctr"]["ci"]
        covered += ci[0] <= 0.1 <= ci[1]
    assert 0.91 <= covered / RUNS <= 0.99


def test_aa_false_positive_rate_and_uniform_p_values() -> None:
    rng = np.random.default_rng(4)
    p_values = []
    for _ in range(RUNS):
        res = analyse_experiment(
            {"a": _arm(rng, 300, 0.1), "b": _arm(rng, 300, 0.1)}, {"a": 1, "b": 1}, "a"
        )
        p_values.append(res["comparisons"][0]["p_value"])
    p = np.array(p_values)
    assert FPR_LOW <= (p < 0.05).mean() <= FPR_HIGH
    assert stats.kstest(p, "uniform").pvalue > 0.001


def test_cuped_keeps_error_rate_and_narrows_the_interval() -> None:
    rng = np.random.default_rng(5)
    rejections, width_raw, width_cuped, rho = 0, [], [], []
    for _ in range(100):
        a, b = _arm(rng, 400, 0.1, pre=True), _arm(rng, 400, 0.1, pre=True)
        with_pre = analyse_experiment({"a": a, "b": b}, {"a": 1, "b": 1}, "a", primary="value")
        raw = analyse_experiment(
            {"a": ArmSample(a.exposures, a.clicks, a.conversions, a.value), "b": b},
            {"a": 1, "b": 1},
            "a",
            primary="value",
        )
        c, r = with_pre["comparisons"][0], raw["comparisons"][0]
        rho.append(np.corrcoef(np.r_[a.value, b.value], np.r_[a.pre, b.pre])[0, 1])
        assert c["cuped"] and not r["cuped"]
        rejections += c["p_value"] < 0.05
        width_cuped.append(c["lift_ci"][1] - c["lift_ci"][0])
        width_raw.append(r["lift_ci"][1] - r["lift_ci"][0])
    assert rejections <= 12
    ratio = np.mean(width_cuped) / np.mean(width_raw)
    # CUPED leaves a share 1 - rho**2 of the variance: the interval shrinks by sqrt of that
    assert ratio < 0.9
    assert ratio == pytest.approx(np.sqrt(1 - np.mean(rho) ** 2), abs=0.03)


def test_srm_thresholds_and_null_rate() -> None:
    assert srm_test({"a": 51_000, "b": 49_000}, {"a": 0.5, "b": 0.5}).flag
    assert not srm_test({"a": 50_200, "b": 49_800}, {"a": 0.5, "b": 0.5}).flag
    rng = np.random.default_rng(6)
    flags = sum(
        srm_test({"a": int(n), "b": 10_000 - int(n)}, {"a": 0.3, "b": 0.7}).flag
        for n in rng.binomial(10_000, 0.3, 2000)
    )
    assert flags <= 6  # expected 2 of 2000 at p < 0.001


def test_holm_controls_family_and_orders() -> None:
    assert holm([0.01, 0.02, 0.03]) == pytest.approx([0.03, 0.04, 0.04])
    assert holm([]) == []
    adjusted = holm([0.5, 0.001, 0.2])
    assert adjusted[1] == pytest.approx(0.003) and adjusted[0] == pytest.approx(0.5)


def test_relative_lift_interval_covers_at_nominal_rate() -> None:
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(RUNS):
        t, c = rng.binomial(1, 0.12, 3000), rng.binomial(1, 0.10, 3000)
        lift = relative_lift(t.mean(), t.var(ddof=1) / t.size, c.mean(), c.var(ddof=1) / c.size)
        covered += lift.ci[0] <= 0.2 <= lift.ci[1]
    assert 0.91 <= covered / RUNS <= 0.99


def test_result_is_strict_json_and_decides() -> None:
    rng = np.random.default_rng(8)
    samples = {"control": _arm(rng, 3000, 0.10), "better": _arm(rng, 3000, 0.13)}
    res = analyse_experiment(samples, {"control": 1, "better": 1}, "control", guardrails=["value"])
    json.dumps(res, allow_nan=False)
    assert set(res) >= {"arms", "srm", "comparisons", "decision"}
    assert res["arms"]["better"]["users"] == 3000
    assert [c["metric"] for c in res["comparisons"]] == ["ctr", "value"]
    primary = res["comparisons"][0]
    assert primary["lift_ci"][0] < primary["lift"] < primary["lift_ci"][1]
    assert primary["p_adjusted"] >= primary["p_value"]
    assert res["decision"]["action"] == "ship" and res["decision"]["arm"] == "better"


def test_decisions_for_srm_guardrail_and_underpowered() -> None:
    rng = np.random.default_rng(9)
    srm = analyse_experiment(
        {"a": _arm(rng, 1200, 0.1), "b": _arm(rng, 800, 0.13)}, {"a": 1, "b": 1}, "a"
    )
    assert srm["srm"]["flag"] and srm["decision"]["action"] == "do not ship"
    a = _arm(rng, 3000, 0.10)
    b = _arm(rng, 3000, 0.13)
    harmed = ArmSample(b.exposures, b.clicks, b.conversions, b.value * 0.5)
    guard = analyse_experiment({"a": a, "b": harmed}, {"a": 1, "b": 1}, "a", guardrails=["value"])
    assert guard["decision"]["action"] == "do not ship"
    assert "guardrail" in guard["decision"]["reason"]
    small = analyse_experiment(
        {"a": _arm(rng, 50, 0.1), "b": _arm(rng, 50, 0.1)}, {"a": 1, "b": 1}, "a", looks=1
    )
    assert small["decision"]["action"] == "keep running"
    assert small["power"]["users_per_arm"] > 50


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"control": "zzz"}, "control arm"),
        ({"weights": {"a": 1}}, "weights name arms"),
        ({"primary": "dwell"}, "unknown metric"),
    ],
)
def test_bad_input_is_refused(kwargs: dict, message: str) -> None:
    rng = np.random.default_rng(10)
    args = {
        "samples": {"a": _arm(rng, 10, 0.1), "b": _arm(rng, 10, 0.1)},
        "weights": {"a": 1, "b": 1},
        "control": "a",
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        analyse_experiment(**args)


def test_arm_sample_validates_rows() -> None:
    with pytest.raises(ValueError, match="clicks has 2 users"):
        ArmSample(np.ones(3), np.ones(2), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="negative"):
        ArmSample(np.ones(2), -np.ones(2), np.ones(2), np.ones(2))
