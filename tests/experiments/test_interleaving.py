"""Team-draft interleaving: fair construction, unbiased credit, a preference test that detects."""

from __future__ import annotations

import numpy as np
import pytest

from recstack.experiments.interleaving import credit_clicks, preference_test, team_draft


def test_team_draft_respects_both_rankings() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = list(rng.permutation(20)[:10])
        b = list(rng.permutation(20)[:10])
        out = team_draft(a, b, 10, rng)
        assert len(out.items) == len(set(out.items)) == 10
        counts = np.bincount(out.teams, minlength=2)
        assert abs(int(counts[0]) - int(counts[1])) <= 1
        for team, ranking in ((0, a), (1, b)):
            picked = [it for it, t in zip(out.items, out.teams, strict=True) if t == team]
            positions = [ranking.index(it) for it in picked]
            assert positions == sorted(positions)  # each team adds items in its own order


def test_team_draft_is_seeded_and_handles_short_lists() -> None:
    one = team_draft([1, 2, 3], [4], 4, np.random.default_rng(5))
    two = team_draft([1, 2, 3], [4], 4, np.random.default_rng(5))
    assert one.items == two.items and sorted(one.items) == [1, 2, 3, 4]
    assert team_draft([1], [1], 5, np.random.default_rng(0)).items == [1]
    with pytest.raises(ValueError):
        team_draft([1], [2], -1, np.random.default_rng(0))


def test_random_clicks_give_no_preference_at_nominal_rate() -> None:
    """Clicks that ignore the items: each arm is credited equally often, so ~5% rejections."""
    rng = np.random.default_rng(1)
    rejections = 0
    for _ in range(300):
        credit_a, credit_b = np.zeros(50), np.zeros(50)
        for u in range(50):
            a, b = rng.permutation(12)[:6], rng.permutation(12)[:6]
            out = team_draft(a, b, 6, rng)
            clicked = rng.random(len(out.items)) < 0.2
            credit_a[u], credit_b[u] = credit_clicks(out.teams, clicked)
        rejections += preference_test(credit_a, credit_b).p_value < 0.05
    assert rejections / 300 <= 0.05 + 0.037


def test_better_ranker_wins() -> None:
    rng = np.random.default_rng(2)
    relevant = set(range(5))
    credit_a, credit_b = np.zeros(300), np.zeros(300)
    for u in range(300):
        good = list(rng.permutation(5)) + list(rng.permutation(np.arange(5, 30))[:5])
        bad = list(rng.permutation(np.arange(5, 30))[:8]) + list(rng.permutation(5)[:2])
        out = team_draft(bad, good, 10, rng)
        p = np.array([0.5 if it in relevant else 0.05 for it in out.items]) / np.arange(1, 11)
        credit_a[u], credit_b[u] = credit_clicks(out.teams, rng.random(10) < p)
    result = preference_test(credit_a, credit_b)
    assert result.winner == "b" and result.p_value < 1e-6 and result.delta > 0


def test_preference_test_input_shape() -> None:
    with pytest.raises(ValueError):
        preference_test(np.zeros(3), np.zeros(4))
    assert preference_test(np.zeros(3), np.zeros(3)).p_value == 1.0
