"""Assignment: sticky, ramp-safe, disjoint within a namespace, balanced by weight."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recstack.errors import ConfigError
from recstack.experiments.assignment import allocate, assign, assign_any, bucket, check_ramp
from recstack.experiments.config import Experiment

ARMS = [
    {"name": "a", "model": "popularity", "weight": 0.5},
    {"name": "b", "model": "champion", "weight": 0.5},
]
USERS = [f"user-{i}" for i in range(100_000)]


def started(key: str, traffic: float, others=(), **extra) -> Experiment:
    experiment = Experiment(key=key, arms=extra.pop("arms", ARMS), traffic=traffic, **extra)
    start = allocate(experiment, others)
    return experiment.model_copy(update={"bucket_start": start, "status": "running"})


def test_buckets_are_fixed_values_independent_of_the_process():
    # pinned: a change of hash would move every running experiment's users
    assert [bucket("exp-1", "alice"), bucket("exp-1", "bob"), bucket("exp-2", "alice")] == [
        9021,
        1707,
        1632,
    ]
    counts = np.bincount([bucket("salt", u) for u in USERS[:50_000]], minlength=10_000)
    assert counts.sum() == 50_000 and counts.max() < 20  # spread over all buckets


def test_ramp_from_10_to_50_percent_moves_nobody():
    small = started("ramp", 0.1)
    before = {u: assign(small, u) for u in USERS}
    check_ramp(small, 0.5, [])
    large = small.model_copy(update={"traffic": 0.5})
    moved = [u for u, arm in before.items() if arm is not None and assign(large, u) != arm]
    assert moved == []
    inside_before = sum(arm is not None for arm in before.values())
    inside_after = sum(assign(large, u) is not None for u in USERS)
    assert 9_500 < inside_before < 10_500 and 49_000 < inside_after < 51_000


def test_arms_split_by_weight_and_pass_a_chi_square_test():
    experiment = started(
        "split",
        1.0,
        arms=[
            {"name": "a", "model": "popularity", "weight": 0.2},
            {"name": "b", "model": "champion", "weight": 0.8},
        ],
    )
    arms = [assign(experiment, u) for u in USERS]
    observed = [arms.count("a"), arms.count("b")]
    assert stats.chisquare(observed, [20_000, 80_000]).pvalue > 0.001


def test_experiments_in_one_namespace_never_share_a_user():
    first = started("first", 0.3)
    second = started("second", 0.5, [first])
    assert second.bucket_start == 3000
    both = [u for u in USERS if assign(first, u) and assign(second, u)]
    assert both == []
    with pytest.raises(ConfigError, match="no free"):
        started("third", 0.3, [first, second])
    with pytest.raises(ConfigError, match="overlap running experiment 'second'"):
        check_ramp(first, 0.4, [second])
    other_ns = started("elsewhere", 1.0, [first, second], namespace="search")
    assert other_ns.bucket_start == 0  # other namespaces overlap freely


def test_lowering_traffic_is_refused():
    with pytest.raises(ConfigError, match="stop it instead"):
        check_ramp(started("down", 0.5), 0.2, [])


def test_forced_users_get_their_arm_even_outside_traffic():
    experiment = started("qa", 0.0001, forced={"tester": "b"})
    assert assign(experiment, "tester") == "b"
    assert sum(assign(experiment, u) is not None for u in USERS[:10_000]) < 10


def test_a_draft_assigns_nobody_and_assign_any_takes_the_first_holder():
    draft = Experiment(key="draft", arms=ARMS)
    assert all(assign(draft, u) is None for u in USERS[:1000])
    live = started("live", 1.0)
    found = assign_any([draft, live], "user-1")
    assert found is not None and found.experiment.key == "live"
    assert found.tag() == {"key": "live", "arm": assign(live, "user-1")}
