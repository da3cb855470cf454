"""Drift statistics between a reference window and a current window, as pure functions.

Each function compares two samples (or two count vectors) and returns a number; the decision
rules follow Evidently's defaults so a team that knows Evidently reads the report the same way:
up to 1,000 reference rows a two-sample test (KS for numbers, chi-squared for categories) drifts
when its p-value is at most 0.05; above that, tests call every small difference significant, so a
distance decides instead (normalised Wasserstein for numbers, Jensen-Shannon for categories),
drifting at 0.1 or more. The dataset drifts when at least half of the signals do.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np


def jensen_shannon(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence, natural log) of two histograms.

    ``p`` and ``q`` are counts or probabilities over the same categories; each is normalised.
    0 for identical distributions, ``sqrt(ln 2)`` (0.8326) for disjoint ones. Same convention
    as ``scipy.spatial.distance.jensenshannon`` and Evidently.

    >>> round(jensen_shannon([1, 0], [0, 1]), 4)  # disjoint: sqrt(ln 2)
    0.8326
    >>> jensen_shannon([2, 2], [5, 5])
    0.0
    >>> round(jensen_shannon([1, 1], [1, 0]), 4)  # m = (.75, .25): sqrt((.1438 + .2877) / 2)
    0.4645
    """
    a = np.asarray(p, dtype=float)
    b = np.asarray(q, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"histograms differ in length: {a.shape} and {b.shape}")
    if a.sum() <= 0 or b.sum() <= 0:
        raise ValueError("a histogram is empty")
    a = a / a.sum()
    b = b / b.sum()
    m = (a + b) / 2
    divergence = (_kl(a, m) + _kl(b, m)) / 2
    return float(np.sqrt(max(divergence, 0.0)))


def jensen_shannon_debiased(
    reference_counts: Sequence[float], current_counts: Sequence[float]
) -> float:
    """Jensen-Shannon distance of two *count* vectors, less what sampling alone would give.

    Two samples of one distribution over K categories still differ: the plug-in divergence
    then averages about ``(K - 1) (1/n1 + 1/n2) / 8`` (the chi-squared approximation of the
    divergence). Over thousands of items that floor alone passes Evidently's 0.1 (two samples
    of 20,000 events over 1,682 items sit at about 0.115), so the item-popularity signal
    subtracts it before taking the square root; K counts the categories seen in either window.

    >>> round(jensen_shannon_debiased([50, 50], [50, 50]), 4)  # identical: floored at 0
    0.0
    >>> # plug-in divergence 0.21576 (see jensen_shannon); floor (2-1)(1/2 + 1/1)/8 = 0.1875
    >>> round(jensen_shannon_debiased([1, 1], [1, 0]), 4)  # sqrt(0.21576 - 0.1875)
    0.1681
    """
    a = np.asarray(reference_counts, dtype=float)
    b = np.asarray(current_counts, dtype=float)
    n1, n2 = a.sum(), b.sum()
    if n1 <= 0 or n2 <= 0:
        raise ValueError("a histogram is empty")
    divergence = jensen_shannon(a, b) ** 2
    k = int(((a + b) > 0).sum())
    floor = (k - 1) * (1.0 / n1 + 1.0 / n2) / 8.0
    return float(np.sqrt(max(divergence - floor, 0.0)))


def _kl(a: np.ndarray, m: np.ndarray) -> float:
    nz = a > 0
    return float(np.sum(a[nz] * np.log(a[nz] / m[nz])))


def ks_test(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test: ``(statistic, p_value)``.

    The statistic is the largest gap between the two empirical CDFs; the p-value is exact for
    small samples (SciPy's ``ks_2samp``, two-sided).

    >>> stat, p = ks_test([1, 2, 3], [4, 5, 6])  # fully separated: 2 of C(6,3)=20 orderings
    >>> float(stat), round(float(p), 4)
    (1.0, 0.1)
    >>> float(ks_test([1, 2, 3], [1, 2, 3])[0])
    0.0
    """
    from scipy.stats import ks_2samp

    a, b = _nonempty(reference, current)
    result = ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


def wasserstein_normed(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray
) -> float:
    """Wasserstein-1 (earth mover's) distance divided by the reference's standard deviation.

    Normalising makes one threshold (0.1 of a standard deviation) fit any scale; a constant
    reference divides by 0.001 instead of 0, as Evidently does.

    >>> wasserstein_normed([0, 2], [1, 3])  # every unit of mass moves by 1; std of [0, 2] is 1
    1.0
    >>> wasserstein_normed([0, 2, 4], [0, 2, 4])
    0.0
    """
    from scipy.stats import wasserstein_distance

    a, b = _nonempty(reference, current)
    scale = max(float(np.std(a)), 0.001)
    return float(wasserstein_distance(a, b) / scale)


def chi_square_test(
    reference_counts: Sequence[float], current_counts: Sequence[float]
) -> tuple[float, float]:
    """Chi-squared test that two count vectors come from one distribution: ``(chi2, p_value)``.

    A 2 x K contingency test (no continuity correction): categories seen in only one window are
    fine, unlike a goodness-of-fit test against the reference's shares. Categories empty in
    both windows are dropped.

    >>> chi_square_test([10, 10], [10, 10])
    (0.0, 1.0)
    >>> chi2, p = chi_square_test([30, 10], [10, 30])  # every expected count is 20
    >>> chi2, p < 1e-5
    (20.0, True)
    """
    from scipy.stats import chi2_contingency

    table = np.vstack([np.asarray(reference_counts, float), np.asarray(current_counts, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    if (table.sum(axis=1) <= 0).any():
        raise ValueError("a window has no counts")
    result = chi2_contingency(table, correction=False)
    return round(float(result.statistic), 10), float(result.pvalue)


def aligned_counts(
    reference: Mapping[Hashable, float], current: Mapping[Hashable, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Two count dicts as two vectors over the union of their keys (missing keys count 0).

    >>> a, b = aligned_counts({"x": 2, "y": 1}, {"y": 3, "z": 1})
    >>> a.tolist(), b.tolist()
    ([2.0, 1.0, 0.0], [0.0, 3.0, 1.0])
    """
    keys = list(dict.fromkeys([*reference.keys(), *current.keys()]))
    a = np.asarray([float(reference.get(k, 0)) for k in keys])
    b = np.asarray([float(current.get(k, 0)) for k in keys])
    return a, b


def unseen_share(current: Iterable[Hashable], reference: Iterable[Hashable]) -> float:
    """Share of the current rows whose key never occurs in the reference (new items, cold users).

    >>> unseen_share(["a", "b", "c", "c"], ["a", "b"])
    0.5
    >>> unseen_share([], ["a"])
    0.0
    """
    seen = set(reference)
    rows = list(current)
    if not rows:
        return 0.0
    return sum(1 for key in rows if key not in seen) / len(rows)


def coverage(shown: Iterable[Hashable], catalogue_size: int) -> float:
    """Share of a catalogue of ``catalogue_size`` items shown at least once.

    >>> coverage(["a", "b", "a"], 4)
    0.5
    """
    if catalogue_size <= 0:
        return 0.0
    return min(1.0, len(set(shown)) / catalogue_size)


def drift_share(drifted: Sequence[bool]) -> float:
    """Share of signals that drifted (0 when there are none).

    >>> drift_share([True, False, False, True])
    0.5
    """
    return float(sum(bool(d) for d in drifted) / len(drifted)) if len(drifted) else 0.0


def _nonempty(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if not x.size or not y.size:
        raise ValueError("a sample is empty")
    return x, y
