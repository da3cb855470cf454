"""Correct-preference curves: exact interleaving sums and the A/B bootstrap against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recstack.experiments.interleaving import preference_test
from recstack.experiments.sensitivity import (
    CorrectPreference,
    ab_correct_preference,
    interleaving_correct_preference,
    paired_correct_preference,
    users_needed,
)
from recstack.experiments.stats import welch_t_test


@pytest.mark.parametrize("n", [1, 2, 5, 9, 16])
def test_interleaving_matches_enumeration_of_every_resample(n: int) -> None:
    """Enumerate every (wins, ties, losses) a resample of n users can have, with the sign test
    that preference_test itself applies."""
    pref = np.array([1] * 5 + [0] * 3 + [-1] * 2)
    probs = [0.5, 0.3, 0.2]
    correct = significant = 0.0
    for w in range(n + 1):
        for loss in range(n - w + 1):
            pr = stats.multinomial.pmf([w, n - w - loss, loss], n, probs)
            correct += pr * (1.0 if w > loss else 0.5 if w == loss else 0.0)
            credit_better = np.array([1] * w + [0] * loss)
            credit_worse = np.array([0] * w + [1] * loss)
            res = preference_test(credit_worse, credit_better) if w + loss else None
            if res is not None and res.winner == "b" and res.p_value < 0.05:
                significant += pr
    got = interleaving_correct_preference(pref, n)
    assert got.users == n
    assert got.correct == pytest.approx(correct, abs=1e-12)
    assert got.significant == pytest.approx(significant, abs=1e-12)


def test_interleaving_matches_a_monte_carlo_bootstrap() -> None:
    rng = np.random.default_rng(3)
    pref = rng.choice([-1, 0, 1], size=500, p=[0.3, 0.3, 0.4])
    n = 60
    samples = pref[rng.integers(0, pref.size, (40_000, n))].sum(axis=1)
    mc = np.mean(np.where(samples > 0, 1.0, np.where(samples == 0, 0.5, 0.0)))
    assert interleaving_correct_preference(pref, n).correct == pytest.approx(mc, abs=0.01)


def test_interleaving_edge_cases() -> None:
    assert interleaving_correct_preference(np.zeros(4), 10) == CorrectPreference(10, 0.5, 0.0)
    assert interleaving_correct_preference(-np.ones(4), 10).correct == 0.0
    with pytest.raises(ValueError):
        interleaving_correct_preference(np.array([]), 3)
    with pytest.raises(ValueError):
        interleaving_correct_preference(np.ones(3), 0)


def test_ab_bootstrap_matches_exact_bernoulli_comparison() -> None:
    """Per-user 0/1 outcomes (denominator 1): a resample mean is Binomial(n, share) / n, so
    P(better mean > worse mean) is a sum over two binomials."""
    better = (np.array([1.0, 1.0, 1.0, 0.0, 0.0]), np.ones(5))  # share 0.6
    worse = (np.array([1.0, 1.0, 0.0, 0.0, 0.0]), np.ones(5))  # share 0.4
    n = 4
    pb, pw = stats.binom.pmf(np.arange(n + 1), n, 0.6), stats.binom.pmf(np.arange(n + 1), n, 0.4)
    joint = np.outer(pb, pw)
    exact = float(np.sum(np.tril(joint, -1)) + 0.5 * np.trace(joint))
    got = ab_correct_preference(better, worse, n, 200_000, np.random.default_rng(0))
    assert got.users == 2 * n
    assert got.correct == pytest.approx(exact, abs=0.005)


def test_ab_significance_is_the_welch_test_of_the_analysis() -> None:
    """For a per-user mean the delta-method ratio test is Welch's t-test on the user values:
    the bootstrap's significant share matches a loop over resamples with welch_t_test."""
    rng = np.random.default_rng(1)
    x_b, x_w = rng.poisson(1.3, 400).astype(float), rng.poisson(1.0, 400).astype(float)
    n = 40
    hits = 0
    loop = np.random.default_rng(2)
    for _ in range(4000):
        b, w = x_b[loop.integers(0, 400, n)], x_w[loop.integers(0, 400, n)]
        r = welch_t_test(b, w)
        hits += r.diff > 0 and r.p_value < 0.05
    got = ab_correct_preference((x_b, np.ones(400)), (x_w, np.ones(400)), n, 20_000, rng)
    assert got.significant == pytest.approx(hits / 4000, abs=0.025)


def test_ab_ratio_metric_and_poisson_bootstrap_beyond_the_log() -> None:
    """CTR (clicks / exposures): the better arm's ratio is higher, and resamples larger than
    the log (the Poisson bootstrap) get more, not less, often right."""
    rng = np.random.default_rng(4)
    exp_b, exp_w = rng.integers(1, 20, 300).astype(float), rng.integers(1, 20, 300).astype(float)
    clk_b, clk_w = rng.binomial(exp_b.astype(int), 0.12), rng.binomial(exp_w.astype(int), 0.10)
    small = ab_correct_preference((clk_b, exp_b), (clk_w, exp_w), 50, 2000, rng)
    large = ab_correct_preference((clk_b, exp_b), (clk_w, exp_w), 3000, 2000, rng)
    assert 0.5 < small.correct < large.correct
    assert small.significant < large.significant
    assert large.users == 6000
    with pytest.raises(ValueError):
        ab_correct_preference((clk_b, exp_b), (clk_w, exp_w[:3]), 10, 10, rng)
    with pytest.raises(ValueError):
        ab_correct_preference((clk_b, exp_b), (clk_w, exp_w), 1, 10, rng)


def test_users_needed_requires_staying_above_the_level() -> None:
    pts = [
        CorrectPreference(n, c, s) for n, c, s in ((8, 0.96, 0.1), (16, 0.9, 0.5), (32, 0.97, 1))
    ]
    assert users_needed(pts, "correct") == 32
    assert users_needed(pts, "significant") == 32
    assert users_needed(pts[:2], "significant") is None


def test_paired_bootstrap_matches_enumeration_and_the_t_test() -> None:
    """Differences (+2, -1, 0) equally likely: enumerate all 3**n resamples for n = 4."""
    import itertools

    diff = np.array([2.0, -1.0, 0.0])
    n = 4
    correct = significant = 0.0
    for combo in itertools.product(diff, repeat=n):
        values = np.array(combo)
        total = values.sum()
        correct += (1.0 if total > 0 else 0.5 if total == 0 else 0.0) / 3**n
        if total > 0 and values.var() > 0:
            p = stats.ttest_1samp(values, 0.0).pvalue
            significant += (p < 0.05) / 3**n
    log = np.repeat(diff, 10)  # a log larger than n, so resamples have exactly n users
    got = paired_correct_preference(log, n, 200_000, np.random.default_rng(5))
    assert got.correct == pytest.approx(correct, abs=0.005)
    assert got.significant == pytest.approx(significant, abs=0.005)
    with pytest.raises(ValueError):
        paired_correct_preference(diff, 1, 10, np.random.default_rng(0))


def test_paired_test_keeps_its_false_positive_rate_on_heavy_tailed_aa_credit() -> None:
    """Identical rankers: each click is credited to a random team. Users see a heavy-tailed
    number of lists (1 to ~100) and click at different rates; the t-test on summed credit
    still rejects in the 'better' direction about alpha / 2 of the time."""
    rng = np.random.default_rng(0)
    users = 20_000
    lists = np.minimum(rng.zipf(1.8, users), 100)
    rate = rng.gamma(2.0, 0.5, users)
    rows = np.repeat(np.arange(users), lists)
    p = np.clip(0.3 * rate[rows, None] / np.arange(1, 11), 0, 1)
    clicks = rng.random(p.shape) < p
    team = rng.integers(0, 2, p.shape)
    per_list = (clicks & (team == 0)).sum(axis=1) - (clicks & (team == 1)).sum(axis=1)
    diff = np.bincount(rows, weights=per_list, minlength=users)
    for n in (30, 300):
        got = paired_correct_preference(diff, n, 6000, rng)
        assert 0.015 < got.significant < 0.035
        assert got.correct == pytest.approx(0.5, abs=0.03)
