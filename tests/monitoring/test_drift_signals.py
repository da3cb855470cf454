"""Drift signals on synthetic windows: a real shift is flagged, a steady stream is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recstack.monitoring.config import DriftConfig
from recstack.monitoring.drift import drift_share
from recstack.monitoring.report import DriftReport
from recstack.monitoring.signals import drift_signals
from recstack.testing.scenarios import World, window_frame

WORLD = World(n_users=300, n_items=150, n_new_items=40)
T0 = 1_700_000_000


def verdict(reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig | None = None):
    config = config or DriftConfig()
    signals, skipped = drift_signals(reference, current, config)
    share = drift_share([s.drifted for s in signals])
    return share >= config.share, share, {s.name: s for s in signals}, skipped


def test_popularity_shift_with_30_percent_new_items_is_flagged() -> None:
    reference = window_frame(WORLD, start=T0, seed=1)
    current = window_frame(WORLD, start=T0 + 86_400, seed=2, shift=True, new_item_share=0.3)
    drifted, share, signals, skipped = verdict(reference, current)
    assert drifted and share >= 0.5
    assert signals["item_popularity"].drifted and signals["item_popularity"].value > 0.3
    assert signals["new_items"].drifted and 0.25 < signals["new_items"].value < 0.35
    assert signals["consumed_popularity"].drifted
    assert not signals["cold_users"].drifted and not signals["event_types"].drifted
    assert skipped == ["served_scores, coverage: no exposures recorded"]


def test_an_unchanged_window_is_not_flagged() -> None:
    reference = window_frame(WORLD, start=T0, seed=1)
    current = window_frame(WORLD, start=T0 + 86_400, seed=2)
    drifted, share, signals, _ = verdict(reference, current)
    assert not drifted and share == 0.0
    assert signals["item_popularity"].value < 0.05  # the sampling floor is taken out


def test_resampled_references_of_one_window_rarely_false_alarm() -> None:
    window = window_frame(WORLD, start=T0, seed=3, events_per_user=20)
    rng = np.random.default_rng(0)
    alarms = 0
    trials = 40
    for _ in range(trials):
        order = rng.permutation(len(window))
        cut = int(0.7 * len(window))
        reference = window.iloc[rng.choice(order[:cut], size=cut, replace=True)]
        current = window.iloc[order[cut:]]
        alarms += verdict(reference, current)[0]
    assert alarms / trials <= 0.05


def test_small_windows_use_tests_and_large_ones_distances() -> None:
    reference = window_frame(World(n_users=40), start=T0, seed=1, events_per_user=10)
    current = window_frame(World(n_users=40), start=T0 + 1, seed=2, events_per_user=10)
    _, _, small, _ = verdict(reference, current)
    assert small["user_activity"].method == "ks" and small["event_types"].method == "chi2"
    assert small["user_activity"].kind == "p_value" and small["event_types"].threshold == 0.05
    _, _, large, _ = verdict(reference, current, DriftConfig(small_sample_rows=10))
    assert large["user_activity"].method == "wasserstein"
    assert large["event_types"].method == "jensen_shannon"


def test_served_scores_and_coverage_when_exposures_exist() -> None:
    reference = window_frame(WORLD, start=T0, seed=1)
    current = window_frame(WORLD, start=T0 + 86_400, seed=2)
    rng = np.random.default_rng(0)
    ref_served = pd.DataFrame(
        {"item_id": [f"i{i}" for i in rng.integers(0, 100, 3000)], "score": rng.normal(1, 1, 3000)}
    )
    cur_served = pd.DataFrame(
        {"item_id": [f"i{i}" for i in rng.integers(0, 20, 3000)], "score": rng.normal(3, 1, 3000)}
    )
    signals, skipped = drift_signals(
        reference,
        current,
        DriftConfig(),
        reference_served=ref_served,
        current_served=cur_served,
        catalogue_size=190,
    )
    by_name = {s.name: s for s in signals}
    assert not skipped
    assert by_name["served_scores"].drifted and by_name["served_scores"].method == "wasserstein"
    assert by_name["coverage"].drifted
    assert by_name["coverage"].detail["reference"] > by_name["coverage"].detail["current"]


def test_report_round_trips_and_renders() -> None:
    reference = window_frame(WORLD, start=T0, seed=1)
    current = window_frame(WORLD, start=T0 + 86_400, seed=2, shift=True, new_item_share=0.3)
    signals, skipped = drift_signals(reference, current, DriftConfig())
    report = DriftReport(
        "abc",
        "2026-01-01T00:00:00+00:00",
        True,
        0.5,
        signals,
        {"start": 1},
        {"start": 2},
        DriftConfig().model_dump(),
        skipped=skipped,
    )
    again = DriftReport.from_dict(report.to_dict())
    assert again.to_dict() == report.to_dict()
    page = report.to_html()
    assert "<table>" in page and "item_popularity" in page and "DRIFT" in page


def test_empty_window_is_an_error() -> None:
    reference = window_frame(WORLD, start=T0, seed=1)
    with pytest.raises(ValueError, match="both windows need events"):
        drift_signals(reference, reference.iloc[:0], DriftConfig())
