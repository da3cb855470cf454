"""Drift signals: each compared aspect of two event windows, measured and judged.

``drift_signals`` turns two event frames (``user_id, item_id, event_type``) and, where lists
were served, two frames of shown items into signals with the rules of ``drift``: item
popularity, what people consume, new items, cold users, user activity, the event-type mix,
served scores and catalogue coverage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recstack.monitoring import drift as d
from recstack.monitoring.config import DriftConfig


@dataclass(frozen=True)
class Signal:
    """One compared aspect: how it was measured, its value, the threshold, and the verdict.

    ``kind`` is ``p_value`` (drift when value <= threshold) or ``distance`` / ``share``
    (drift when value >= threshold).
    """

    name: str
    method: str
    kind: str
    value: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def numeric_signal(
    name: str, reference: np.ndarray, current: np.ndarray, config: DriftConfig
) -> Signal:
    """KS up to ``small_sample_rows`` reference rows, normalised Wasserstein above.

    >>> s = numeric_signal("x", np.arange(10.0), np.arange(10.0) + 100, DriftConfig())
    >>> s.method, s.drifted
    ('ks', True)
    """
    if len(reference) <= config.small_sample_rows:
        _, p = d.ks_test(reference, current)
        return Signal(
            name,
            "ks",
            "p_value",
            p,
            config.p_value,
            p <= config.p_value,
            len(reference),
            len(current),
        )
    w = d.wasserstein_normed(reference, current)
    return Signal(
        name,
        "wasserstein",
        "distance",
        w,
        config.distance,
        w >= config.distance,
        len(reference),
        len(current),
    )


def categorical_signal(
    name: str,
    reference: pd.Series,
    current: pd.Series,
    config: DriftConfig,
    *,
    method: str | None = None,
) -> Signal:
    """Chi-squared up to ``small_sample_rows`` reference rows, Jensen-Shannon above (or the
    ``method`` given).

    >>> s = categorical_signal("t", pd.Series(["a"] * 50 + ["b"] * 50),
    ...                        pd.Series(["a"] * 90 + ["b"] * 10), DriftConfig())
    >>> s.method, s.drifted
    ('chi2', True)
    """
    a, b = d.aligned_counts(reference.value_counts().to_dict(), current.value_counts().to_dict())
    method = method or ("chi2" if len(reference) <= config.small_sample_rows else "jensen_shannon")
    detail = {"categories": int(len(a))}
    if method == "chi2":
        _, p = d.chi_square_test(a, b)
        return Signal(
            name,
            "chi2",
            "p_value",
            p,
            config.p_value,
            p <= config.p_value,
            len(reference),
            len(current),
            detail,
        )
    js = d.jensen_shannon(a, b)
    return Signal(
        name,
        "jensen_shannon",
        "distance",
        js,
        config.distance,
        js >= config.distance,
        len(reference),
        len(current),
        detail,
    )


def popularity_signal(reference: pd.Series, current: pd.Series, config: DriftConfig) -> Signal:
    """Item popularity: the debiased Jensen-Shannon distance of the two windows' item counts
    (over thousands of items the plain distance of two samples of one distribution already
    passes 0.1; see ``drift.jensen_shannon_debiased``)."""
    a, b = d.aligned_counts(reference.value_counts().to_dict(), current.value_counts().to_dict())
    js = d.jensen_shannon_debiased(a, b)
    return Signal(
        "item_popularity",
        "jensen_shannon_debiased",
        "distance",
        js,
        config.distance,
        js >= config.distance,
        len(reference),
        len(current),
        {"items": int(len(a))},
    )


def consumed_popularity(items: pd.Series, reference_items: pd.Series) -> np.ndarray:
    """For each event, the reference share of events on its item (0 for an item the reference
    never saw): how mainstream what people consume is, by yesterday's measure.

    >>> consumed_popularity(pd.Series(["a", "c"]), pd.Series(["a", "a", "b", "b"])).tolist()
    [0.5, 0.0]
    """
    shares = reference_items.value_counts(normalize=True)
    return items.map(shares).fillna(0.0).to_numpy(dtype=float)


def relative_activity(users: pd.Series) -> np.ndarray:
    """Events per user divided by the window's mean: the shape of activity (a few heavy users,
    or many alike), not its scale, so a week's window compares with a month's.

    >>> relative_activity(pd.Series(["a", "a", "a", "b"])).tolist()
    [1.5, 0.5]
    """
    counts = users.value_counts(sort=False).to_numpy(dtype=float)
    return counts / counts.mean() if counts.size else counts


def share_signal(
    name: str, current_keys: pd.Series, reference_keys: pd.Series, threshold: float
) -> Signal:
    """The share of current rows whose key the reference never saw, against ``threshold``."""
    share = d.unseen_share(current_keys.tolist(), reference_keys.unique().tolist())
    return Signal(
        name,
        "unseen_share",
        "share",
        share,
        threshold,
        share >= threshold,
        len(reference_keys),
        len(current_keys),
    )


def drift_signals(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig,
    *,
    reference_served: pd.DataFrame | None = None,
    current_served: pd.DataFrame | None = None,
    catalogue_size: int | None = None,
) -> tuple[list[Signal], list[str]]:
    """Every signal between two event windows; ``(signals, skipped reasons)``.

    Event frames need ``user_id, item_id, event_type``. Served frames (one row per item shown:
    ``item_id`` and ``score``, NaN where unknown) add the served-score and coverage signals
    when both windows have some.
    """
    if reference.empty or current.empty:
        raise ValueError("both windows need events")
    signals = [
        popularity_signal(reference["item_id"], current["item_id"], config),
        numeric_signal(
            "consumed_popularity",
            consumed_popularity(reference["item_id"], reference["item_id"]),
            consumed_popularity(current["item_id"], reference["item_id"]),
            config,
        ),
        share_signal("new_items", current["item_id"], reference["item_id"], config.new_items_share),
        share_signal(
            "cold_users", current["user_id"], reference["user_id"], config.cold_users_share
        ),
        numeric_signal(
            "user_activity",
            relative_activity(reference["user_id"]),
            relative_activity(current["user_id"]),
            config,
        ),
        categorical_signal("event_types", reference["event_type"], current["event_type"], config),
    ]
    skipped: list[str] = []
    if reference_served is None or current_served is None:
        skipped.append("served_scores, coverage: no exposures recorded")
        return signals, skipped
    if reference_served.empty or current_served.empty:
        skipped.append("served_scores, coverage: no exposures in one of the windows")
        return signals, skipped
    ref_scores = reference_served["score"].dropna().to_numpy(dtype=float)
    cur_scores = current_served["score"].dropna().to_numpy(dtype=float)
    if ref_scores.size and cur_scores.size:
        signals.append(numeric_signal("served_scores", ref_scores, cur_scores, config))
    else:
        skipped.append("served_scores: the exposures carry no scores")
    if catalogue_size:
        ref_cov = d.coverage(reference_served["item_id"].tolist(), catalogue_size)
        cur_cov = d.coverage(current_served["item_id"].tolist(), catalogue_size)
        change = abs(cur_cov - ref_cov)
        signals.append(
            Signal(
                "coverage",
                "absolute_change",
                "distance",
                change,
                config.coverage_change,
                change >= config.coverage_change,
                len(reference_served),
                len(current_served),
                {"reference": ref_cov, "current": cur_cov},
            )
        )
    return signals, skipped
