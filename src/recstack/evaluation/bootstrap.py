"""Paired bootstrap confidence interval of a mean per-user difference between two models.

Both models are scored on the same users, so the interval is of the *paired* differences:
resampling users (with replacement) keeps each user's two scores together, which is what makes
a 1% NDCG gap measurable on a thousand users.
"""

from __future__ import annotations

import numpy as np


def paired_bootstrap_ci(
    a: np.ndarray, b: np.ndarray, *, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """``(mean(a - b), low, high)``: percentile bootstrap interval of the mean difference.

    >>> d = paired_bootstrap_ci(np.array([1.0, 1.0, 1.0]), np.array([0.0, 0.0, 0.0]))
    >>> d
    (1.0, 1.0, 1.0)
    >>> mean, low, high = paired_bootstrap_ci(np.array([0.0, 1.0]), np.array([0.0, 0.0]))
    >>> mean, low, high
    (0.5, 0.0, 1.0)
    """
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.size == 0:
        raise ValueError("no paired values to compare")
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(resamples, diff.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(diff.mean()), float(low), float(high)
