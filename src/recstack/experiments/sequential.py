"""Sequential testing that stays valid however often the results are looked at.

A fixed-horizon p-value checked after every batch of traffic, stopping at the first p < 0.05,
rejects a true null far more often than 5%. The mixture sequential probability ratio test (mSPRT,
Johari et al., "Always valid inference", 2017) with a normal mixture over the effect gives an
always-valid p-value ``min(1, 1 / Lambda)`` and a confidence sequence: at any data-dependent
stopping time the false-positive rate stays below alpha (Ville's inequality).

For an estimate ``d ~ N(theta, V)`` and a mixing prior ``theta ~ N(0, tau**2)``::

    Lambda = sqrt(V / (V + tau**2)) * exp(d**2 tau**2 / (2 V (V + tau**2)))

``tau`` is on the scale of the effect (here: a relative lift, default 0.1 for +-10% effects); any
fixed choice keeps validity, a good one only buys power.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_TAU = 0.1


@dataclass(frozen=True)
class SequentialResult:
    """Always-valid p-value and confidence interval of one estimate at one look."""

    p_value: float
    ci: tuple[float, float]
    significant: bool


def msprt_likelihood_ratio(estimate: float, variance: float, tau2: float) -> float:
    """The normal-mixture likelihood ratio Lambda of H1 (theta ~ N(0, tau2)) against theta = 0.

    With d = 2, V = 1, tau2 = 1: sqrt(1/2) * exp(4 / 4) = 1.922.

    >>> round(msprt_likelihood_ratio(2.0, 1.0, 1.0), 3)
    1.922
    """
    if variance <= 0 or tau2 <= 0:
        raise ValueError("variance and tau2 must be positive")
    log_lr = 0.5 * np.log(variance / (variance + tau2)) + estimate**2 * tau2 / (
        2 * variance * (variance + tau2)
    )
    return float(np.exp(min(log_lr, 700.0)))


def msprt_p_value(estimate: float, variance: float, tau2: float) -> float:
    """Always-valid p-value ``min(1, 1 / Lambda)`` at a single look.

    >>> round(msprt_p_value(2.0, 1.0, 1.0), 4)
    0.5203
    >>> msprt_p_value(0.0, 1.0, 1.0)
    1.0
    """
    return float(min(1.0, 1.0 / msprt_likelihood_ratio(estimate, variance, tau2)))


def msprt_p_values(estimates: np.ndarray, variances: np.ndarray, tau2: float) -> np.ndarray:
    """Always-valid p-values along a sequence of looks (running minimum, so never increasing).

    >>> msprt_p_values(np.array([2.0, 0.0]), np.array([1.0, 1.0]), 1.0).round(4).tolist()
    [0.5203, 0.5203]
    """
    ps = [
        msprt_p_value(float(d), float(v), tau2) for d, v in zip(estimates, variances, strict=True)
    ]
    return np.minimum.accumulate(np.asarray(ps, dtype=float))


def confidence_sequence_halfwidth(variance: float, tau2: float, alpha: float = 0.05) -> float:
    """Half-width of the always-valid confidence interval of the mixture test at one look.

    ``sqrt(V (V + tau2) / tau2 * (2 log(1/alpha) + log((V + tau2) / V)))``; with V = tau2 = 1,
    alpha = 0.05: sqrt(2 * (5.9915 + 0.6931)) = 3.656.

    >>> round(confidence_sequence_halfwidth(1.0, 1.0, 0.05), 3)
    3.656
    """
    if variance <= 0 or tau2 <= 0:
        raise ValueError("variance and tau2 must be positive")
    return float(
        np.sqrt(
            variance
            * (variance + tau2)
            / tau2
            * (2 * np.log(1 / alpha) + np.log((variance + tau2) / variance))
        )
    )


def sequential_test(
    estimate: float, variance: float, alpha: float = 0.05, tau: float = DEFAULT_TAU
) -> SequentialResult:
    """Always-valid p-value and CI for an estimate (e.g. a relative lift and its delta variance).

    >>> r = sequential_test(2.0, 1.0, alpha=0.05, tau=1.0)
    >>> round(r.p_value, 4), [round(v, 3) for v in r.ci], r.significant
    (0.5203, [-1.656, 5.656], False)
    """
    if not np.isfinite(estimate) or not np.isfinite(variance) or variance <= 0:
        return SequentialResult(float("nan"), (float("nan"), float("nan")), False)
    tau2 = tau**2
    p = msprt_p_value(estimate, variance, tau2)
    half = confidence_sequence_halfwidth(variance, tau2, alpha)
    return SequentialResult(p, (estimate - half, estimate + half), bool(p < alpha))
