"""How many users an experiment needs to name the truly better ranker: "correct preference".

Chapelle, Joachims, Radlinski & Yue ("Large-scale validation and analysis of interleaved search
evaluation", 2012) and Netflix ("Innovating faster on personalization algorithms at Netflix using
interleaving", 2017) compare interleaving with A/B metrics the same way: take a large experiment
whose winner is known, bootstrap-subsample N users from it, and plot against N the probability
that the metric computed on the subsample prefers the truly better ranker. The N where that
probability reaches 95% is the size each method needs; their ratio is the sensitivity gain.

Two probabilities are given for each N:

* ``correct`` - the subsample's metric points the right way (a tie counts one half, as a coin
  would settle it); this is the agreement measure of Chapelle et al.;
* ``significant`` - the subsample's test is also significant at ``alpha`` (power in the right
  direction), the stricter reading.

For interleaving the per-user outcome is a preference for the better arm (+1), none (0) or the
worse arm (-1), so a bootstrap sample of n users is multinomial and both probabilities are exact
sums (``interleaving_correct_preference``). An A/B ratio metric such as CTR has no such closed
form, so ``ab_correct_preference`` bootstraps it, with the delta-method Welch test of
``recstack.experiments.stats``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats


@dataclass(frozen=True)
class CorrectPreference:
    """Probability that a subsample of the given size prefers the truly better arm.

    Attributes:
        users: users in the subsample (both arms together for an A/B test).
        correct: the metric points the right way (ties count one half).
        significant: it points the right way and its test has p < alpha.
    """

    users: int
    correct: float
    significant: float


def interleaving_correct_preference(
    preference: np.ndarray, n: int, alpha: float = 0.05
) -> CorrectPreference:
    """Exact bootstrap probabilities for ``n`` users resampled from per-user ``preference``
    (+1: prefers the truly better arm, 0: no preference, -1: prefers the worse one).

    The better arm is preferred when more resampled users prefer it than the other arm (Chapelle
    et al.'s delta > 0); ``significant`` adds a two-sided sign test over users with a preference
    (``preference_test``) at ``alpha``.

    Users: two prefer the better arm, one has no preference, one prefers the worse arm, so
    (w, t, l) = (1/2, 1/4, 1/4). With n = 1: P(W > L) + P(W = L) / 2 = 1/2 + 1/8 = 0.625. With
    n = 2: W > L for (w,w) 1/4, (w,t) 2/8; W = L for (t,t) 1/16, (w,l) 2/8, so
    1/4 + 1/4 + (1/16 + 1/4) / 2 = 0.65625. No sign test over at most 2 users has p < 0.05.

    >>> pref = np.array([1, 1, 0, -1])
    >>> r1, r2 = (interleaving_correct_preference(pref, n) for n in (1, 2))
    >>> r1.correct, r2.correct, r2.significant
    (0.625, 0.65625, 0.0)

    Six users who all prefer the better arm: p = 2 / 2**6 = 0.031 < 0.05, five: p = 0.0625.

    >>> [interleaving_correct_preference(np.ones(3), n).significant for n in (5, 6)]
    [0.0, 1.0]
    """
    pref = np.sign(np.asarray(preference, dtype=float))
    if pref.ndim != 1 or pref.size == 0:
        raise ValueError("preference needs one value per logged user")
    if n < 1:
        raise ValueError("n must be at least 1")
    w, loss = float(np.mean(pref > 0)), float(np.mean(pref < 0))
    q = w + loss
    if q == 0:
        return CorrectPreference(n, 0.5, 0.0)
    r = w / q
    m = np.arange(n + 1)
    p_m = stats.binom.pmf(m, n, q)  # users with a preference among the n
    half = m // 2
    more = stats.binom.sf(half, m, r)  # P(W > m / 2): W >= floor(m/2) + 1
    equal = np.where(m % 2 == 0, stats.binom.pmf(half, m, r), 0.0)
    correct = float(np.sum(p_m * (more + equal / 2)))
    # smallest w > m/2 whose two-sided sign-test p-value 2 * P(X >= w) is below alpha
    w_grid = np.minimum(half + 1, m)
    crit = np.maximum(stats.binom.isf(alpha / 2, m, 0.5) + 1, w_grid)
    p_at_crit = np.minimum(1.0, 2 * stats.binom.sf(crit - 1, m, 0.5))
    crit = np.where(p_at_crit < alpha, crit, crit + 1)
    reach = np.where((m > 0) & (crit <= m), stats.binom.sf(crit - 1, m, r), 0.0)
    significant = float(np.sum(p_m * reach))
    return CorrectPreference(n, min(correct, 1.0), min(significant, 1.0))


def _resampled_sums(
    columns: np.ndarray, n: int, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Column sums of ``draws`` bootstrap samples of ``n`` rows and each sample's size.

    Up to the log's size rows are gathered. Beyond it each row is taken a Poisson(n / size)
    number of times (the Poisson bootstrap of Chamandy et al., 2012, Google's tool for large
    experiments), which costs the log's size per draw instead of n; the sample size is then
    random with mean n, and the tests use the realised size.
    """
    size = columns.shape[0]
    out = np.empty((draws, columns.shape[1]))
    sizes = np.full(draws, float(n))
    if n <= size:
        chunk = max(1, 4_000_000 // n)
        for start in range(0, draws, chunk):
            stop = min(draws, start + chunk)
            idx = rng.integers(0, size, (stop - start, n))
            out[start:stop] = columns[idx].sum(axis=1)
    else:
        chunk = max(1, 4_000_000 // size)
        for start in range(0, draws, chunk):
            stop = min(draws, start + chunk)
            counts = rng.poisson(n / size, size=(stop - start, size)).astype(float)
            out[start:stop] = counts @ columns
            sizes[start:stop] = counts.sum(axis=1)
    return out, sizes


def _ratio_moments(sums: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ratio sum(x) / sum(y) and its delta-method variance from (Sx, Sy, Sxx, Syy, Sxy) sums."""
    sx, sy, sxx, syy, sxy = sums.T
    n = np.maximum(n, 1.0)
    mx, my = sx / n, sy / n
    dof = np.maximum(n - 1, 1.0)
    vx = np.maximum(sxx - n * mx**2, 0.0) / dof
    vy = np.maximum(syy - n * my**2, 0.0) / dof
    cxy = (sxy - n * mx * my) / dof
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(sy > 0, sx / sy, 0.0)
        var = (vx / my**2 - 2 * mx * cxy / my**3 + mx**2 * vy / my**4) / n
    return ratio, np.where(np.isfinite(var), np.maximum(var, 0.0), 0.0)


def ab_correct_preference(
    better: tuple[np.ndarray, np.ndarray],
    worse: tuple[np.ndarray, np.ndarray],
    n_per_arm: int,
    draws: int,
    rng: np.random.Generator,
    alpha: float = 0.05,
) -> CorrectPreference:
    """Bootstrap probabilities that an A/B test with ``n_per_arm`` users in each arm, resampled
    from each arm's logged users, prefers the truly better arm on a ratio metric.

    Each arm is ``(numerator, denominator)`` per user: (clicks, exposures) for CTR, (clicks,
    ones) for clicks per user. ``significant`` uses the delta-method Welch test that
    ``analyse_experiment`` applies (``linearise_ratio`` + ``welch_from_moments``).

    Every user of the better arm clicks 1 of 2 shown items and every user of the worse arm 0 of
    2, so every resample prefers the better arm; identical arms tie every time (one half):

    >>> rng = np.random.default_rng(0)
    >>> good = (np.ones(5), np.full(5, 2.0))
    >>> bad = (np.zeros(5), np.full(5, 2.0))
    >>> ab_correct_preference(good, bad, 3, 100, rng).correct
    1.0
    >>> ab_correct_preference(good, good, 3, 100, rng).correct
    0.5
    """
    if n_per_arm < 2:
        raise ValueError("an A/B test needs at least 2 users per arm")
    if draws < 1:
        raise ValueError("draws must be at least 1")
    moments = []
    for name, (num, den) in (("better", better), ("worse", worse)):
        x, y = np.asarray(num, float), np.asarray(den, float)
        if x.shape != y.shape or x.ndim != 1 or x.size == 0:
            raise ValueError(f"{name}: numerator and denominator need one value per logged user")
        columns = np.column_stack([x, y, x * x, y * y, x * y])
        sums, sizes = _resampled_sums(columns, n_per_arm, draws, rng)
        moments.append((*_ratio_moments(sums, sizes), sizes))
    (r_b, v_b, n_b), (r_w, v_w, n_w) = moments
    diff = r_b - r_w
    correct = float(np.mean(np.where(diff > 0, 1.0, np.where(diff == 0, 0.5, 0.0))))
    se2 = v_b + v_w
    with np.errstate(divide="ignore", invalid="ignore"):
        df = se2**2 / (v_b**2 / np.maximum(n_b - 1, 1) + v_w**2 / np.maximum(n_w - 1, 1))
        t = diff / np.sqrt(se2)
        p = np.where(
            se2 > 0, 2 * special.stdtr(np.where(np.isfinite(df), df, 1e9), -np.abs(t)), 1.0
        )
    significant = float(np.mean((diff > 0) & (p < alpha)))
    return CorrectPreference(2 * n_per_arm, correct, significant)


def paired_correct_preference(
    difference: np.ndarray, n: int, draws: int, rng: np.random.Generator, alpha: float = 0.05
) -> CorrectPreference:
    """Bootstrap probabilities for a within-user difference (an interleaving user's credited
    clicks of the better minus the worse arm): the resample's total is positive (ties one half),
    and a one-sample t-test of the mean has p < alpha as well.

    Unlike the per-user sign, a user with many lists weighs more, as they do in CTR.

    All users favour the better arm by one click: every resample is right; no user differs: a
    tie every time (one half):

    >>> rng = np.random.default_rng(0)
    >>> paired_correct_preference(np.ones(4), 3, 50, rng).correct
    1.0
    >>> paired_correct_preference(np.zeros(4), 3, 50, rng).correct
    0.5
    """
    d = np.asarray(difference, dtype=float)
    if d.ndim != 1 or d.size == 0:
        raise ValueError("difference needs one value per logged user")
    if n < 2:
        raise ValueError("n must be at least 2")
    if draws < 1:
        raise ValueError("draws must be at least 1")
    sums, sizes = _resampled_sums(np.column_stack([d, d * d]), n, draws, rng)
    total, squares = sums.T
    correct = float(np.mean(np.where(total > 0, 1.0, np.where(total == 0, 0.5, 0.0))))
    m = np.maximum(sizes, 2.0)
    mean = total / m
    var = np.maximum(squares - m * mean**2, 0.0) / (m - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / np.sqrt(var / m)
        p = np.where(var > 0, 2 * special.stdtr(m - 1, -np.abs(t)), 1.0)
    significant = float(np.mean((total > 0) & (p < alpha)))
    return CorrectPreference(n, correct, significant)


def users_needed(curve: Sequence[CorrectPreference], field: str, level: float = 0.95) -> int | None:
    """Smallest size on the curve from which ``field`` stays at or above ``level``.

    >>> pts = [CorrectPreference(n, c, 0.0) for n, c in ((10, 0.9), (20, 0.96), (40, 0.94), (80, 0.99))]
    >>> users_needed(pts, "correct")
    80
    """
    need = None
    for point in sorted(curve, key=lambda c: c.users):
        if getattr(point, field) >= level:
            need = point.users if need is None else need
        else:
            need = None
    return need
