"""Fixed-horizon statistics for experiments: Welch tests, lifts, ratio metrics, SRM, CUPED, Holm.

Every function is pure and works on numpy arrays of user-level values (one row per user), because
the user is the unit of randomisation: analysing exposure-level rows as if independent understates
the variance. Ratio metrics such as CTR (clicks / exposures, both summed per user) are handled with
the delta method, here through per-user linearisation so that one Welch test covers means and
ratios alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

SRM_ALPHA = 1e-3


@dataclass(frozen=True)
class WelchResult:
    """A two-sample comparison of ``treatment - control``.

    Attributes:
        diff: the difference of the two estimates.
        se: its standard error.
        t: ``diff / se``.
        df: Welch-Satterthwaite degrees of freedom.
        p_value: two-sided p-value.
    """

    diff: float
    se: float
    t: float
    df: float
    p_value: float


def welch_from_moments(
    est_t: float, var_t: float, n_t: int, est_c: float, var_c: float, n_c: int
) -> WelchResult:
    """Welch's unequal-variance t-test from two estimates and the variances *of the estimates*.

    ``var_t`` is the squared standard error (``s**2 / n`` for a mean). Taking moments rather than
    raw arrays lets the same test serve means, delta-method ratios and CUPED-adjusted means.

    >>> r = welch_from_moments(1.5, 0.5 / 4, 4, 0.5, 0.5 / 4, 4)  # two samples of 4, s**2 = 0.5
    >>> round(r.diff, 3), round(r.se, 3), round(r.t, 3), round(r.df, 1), round(r.p_value, 4)
    (1.0, 0.5, 2.0, 6.0, 0.0924)
    """
    se2 = var_t + var_c
    diff = est_t - est_c
    if se2 <= 0:
        return WelchResult(
            diff, 0.0, float("nan"), float("nan"), float("nan") if diff == 0 else 0.0
        )
    se = float(np.sqrt(se2))
    denom = (var_t**2 / max(n_t - 1, 1)) + (var_c**2 / max(n_c - 1, 1))
    df = se2**2 / denom if denom > 0 else float("inf")
    t = diff / se
    p = float(2 * special.stdtr(df, -abs(t)))
    return WelchResult(float(diff), se, float(t), float(df), p)


def welch_t_test(treatment: np.ndarray, control: np.ndarray) -> WelchResult:
    """Welch's t-test on two arrays of user-level values (agrees with ``scipy.stats.ttest_ind``).

    >>> r = welch_t_test(np.array([1.0, 2.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.0, 1.0]))
    >>> round(r.t, 3), round(r.df, 1), round(r.p_value, 4)
    (2.449, 6.0, 0.0498)
    """
    t_arr, c_arr = np.asarray(treatment, float), np.asarray(control, float)
    return welch_from_moments(
        float(t_arr.mean()),
        float(t_arr.var(ddof=1) / t_arr.size),
        t_arr.size,
        float(c_arr.mean()),
        float(c_arr.var(ddof=1) / c_arr.size),
        c_arr.size,
    )


def linearise_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Per-user values whose mean is ``sum(num) / sum(den)`` and whose variance of the mean is
    the delta-method variance of that ratio.

    The linearisation ``R + (x_i - R * y_i) / mean(y)`` turns a ratio metric (CTR = clicks per
    exposure, with both summed per user) into an ordinary mean, so Welch tests and CUPED apply.

    >>> lin = linearise_ratio(np.array([1.0, 0.0, 2.0]), np.array([2.0, 2.0, 4.0]))
    >>> round(float(lin.mean()), 4), np.round(lin, 4).tolist()
    (0.375, [0.4688, 0.0938, 0.5625])
    >>> round(float(lin.var(ddof=1) / lin.size), 5)  # = ratio_delta_variance of the same data
    0.02051
    """
    x, y = np.asarray(numerator, float), np.asarray(denominator, float)
    mean_y = y.mean()
    if mean_y <= 0:
        raise ValueError("a ratio metric needs a positive mean denominator (no exposures?)")
    ratio = x.sum() / y.sum()
    return ratio + (x - ratio * y) / mean_y


def ratio_delta_variance(numerator: np.ndarray, denominator: np.ndarray) -> float:
    """Delta-method variance of ``sum(num) / sum(den)`` over independent users.

    ``Var(R) ~ (var_x / mu_y**2 - 2 mu_x cov_xy / mu_y**3 + mu_x**2 var_y / mu_y**4) / n``.
    Here x = (1, 0, 2), y = (2, 2, 4): mu_x = 1, mu_y = 8/3, var_x = 1, var_y = 4/3, cov = 1,
    so Var = (9/64 - 54/512 + 108/4096) / 3 = 0.0205...

    >>> round(ratio_delta_variance(np.array([1.0, 0.0, 2.0]), np.array([2.0, 2.0, 4.0])), 5)
    0.02051
    """
    x, y = np.asarray(numerator, float), np.asarray(denominator, float)
    n = x.size
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(ddof=1), y.var(ddof=1)
    cxy = float(np.cov(x, y, ddof=1)[0, 1])
    return float((vx / my**2 - 2 * mx * cxy / my**3 + mx**2 * vy / my**4) / n)


@dataclass(frozen=True)
class Lift:
    """Relative lift ``treatment / control - 1`` with a delta-method standard error and CI."""

    lift: float
    se: float
    ci: tuple[float, float]


def relative_lift(
    est_t: float, var_t: float, est_c: float, var_c: float, alpha: float = 0.05
) -> Lift:
    """Relative lift and its normal CI by the delta method (no Fieller interval).

    ``Var(t / c) ~ var_t / c**2 + t**2 var_c / c**4`` for independent arms.

    >>> lift = relative_lift(0.12, 0.0001, 0.10, 0.0001)
    >>> round(lift.lift, 3), round(lift.se, 4), [round(v, 3) for v in lift.ci]
    (0.2, 0.1562, [-0.106, 0.506])
    """
    if est_c == 0:
        return Lift(float("nan"), float("nan"), (float("nan"), float("nan")))
    lift = est_t / est_c - 1
    se = float(np.sqrt(var_t / est_c**2 + est_t**2 * var_c / est_c**4))
    z = float(special.ndtri(1 - alpha / 2))
    return Lift(float(lift), se, (float(lift - z * se), float(lift + z * se)))


@dataclass(frozen=True)
class SrmResult:
    """Sample-ratio-mismatch check: chi-square statistic, p-value and whether it is flagged."""

    chi2: float
    p_value: float
    flag: bool


def srm_test(
    counts: Mapping[str, int], weights: Mapping[str, float], threshold: float = SRM_ALPHA
) -> SrmResult:
    """Chi-square goodness of fit of the users per arm against the configured weights.

    A mismatch (p < 0.001 by convention) means assignment or logging is broken and no lift can
    be trusted. 51,000 / 49,000 on a 50/50 split: chi2 = 2 * 1000**2 / 50000 = 40.

    >>> r = srm_test({"a": 51_000, "b": 49_000}, {"a": 0.5, "b": 0.5})
    >>> round(r.chi2, 2), r.p_value < 1e-9, r.flag
    (40.0, True, True)
    >>> srm_test({"a": 50_200, "b": 49_800}, {"a": 1, "b": 1}).flag
    False
    """
    names = list(counts)
    observed = np.array([counts[n] for n in names], dtype=float)
    w = np.array([weights[n] for n in names], dtype=float)
    if np.any(w <= 0):
        raise ValueError("arm weights must be positive")
    expected = observed.sum() * w / w.sum()
    if observed.sum() == 0:
        return SrmResult(0.0, 1.0, False)
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    p = float(special.chdtrc(observed.size - 1, chi2))
    return SrmResult(chi2, p, bool(p < threshold))


def cuped_theta(y: np.ndarray, x: np.ndarray) -> float:
    """CUPED coefficient ``cov(y, x) / var(x)``, pooled over arms so the adjustment is unbiased.

    >>> cuped_theta(np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0]))
    2.0
    """
    y, x = np.asarray(y, float), np.asarray(x, float)
    vx = x.var(ddof=1)
    if not np.isfinite(vx) or vx <= 0:
        return 0.0
    return float(np.cov(y, x, ddof=1)[0, 1] / vx)


def cuped_adjust(y: np.ndarray, x: np.ndarray, theta: float, x_mean: float) -> np.ndarray:
    """``y - theta * (x - E[x])``: same mean, less variance when pre-period activity predicts y.

    >>> cuped_adjust(np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0]), 2.0, 2.0).tolist()
    [4.0, 4.0, 4.0]
    """
    return np.asarray(y, float) - theta * (np.asarray(x, float) - x_mean)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error control, uniformly beats Bonferroni).

    Sorted p = (0.01, 0.03, 0.04) times (3, 2, 1) = (0.03, 0.06, 0.04), made monotone: 0.06.

    >>> [round(p, 3) for p in holm([0.04, 0.01, 0.03])]
    [0.06, 0.03, 0.06]
    """
    p = np.asarray(p_values, float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        value = p[idx] * (m - rank)
        running = max(running, value) if np.isfinite(value) else running
        adjusted[idx] = min(1.0, running) if not np.isnan(p[idx]) else np.nan
    return [float(v) for v in adjusted]
