"""Who sees which arm: a deterministic hash of the user id, so no assignment is ever stored.

Two independent hashes (BLAKE2b, stdlib, the same in every process and Python version):

- the *namespace bucket* ``bucket(namespace, user)`` in [0, 10,000) decides whether a user is
  in an experiment at all. Each running experiment of a namespace holds its own range
  ``[bucket_start, bucket_start + traffic * 10,000)`` of those buckets, allocated at start
  next to the others' ranges, so experiments in one namespace never share a user. Raising
  traffic only extends the range at its end: every user already in stays in.
- the *arm bucket* ``bucket(salt, user)`` picks the arm by cumulative weights; it does not
  depend on traffic, so a ramp from 10% to 50% moves nobody between arms.

Forced users (QA) get their arm whatever the hashes say.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from recstack.errors import ConfigError
from recstack.experiments.config import Experiment

BUCKETS = 10_000


def bucket(salt: str, user_id: str) -> int:
    """The user's bucket in [0, 10,000) under ``salt``: the same everywhere, always.

    >>> bucket("exp-1", "alice")
    9021
    >>> bucket("exp-1", "alice") == bucket("exp-1", "alice")
    True
    """
    digest = hashlib.blake2b(f"{salt}\x00{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def arm_index(weights: Sequence[float], position: int) -> int:
    """The arm whose cumulative-weight interval holds bucket ``position``.

    >>> [arm_index([0.5, 0.5], b) for b in (0, 4999, 5000, 9999)]
    [0, 0, 1, 1]
    >>> arm_index([0.2, 0.3, 0.5], 2500)
    1
    """
    edge = 0.0
    for index, weight in enumerate(weights):
        edge += weight * BUCKETS
        if position < round(edge):
            return index
    return len(weights) - 1


def in_range(experiment: Experiment, user_id: str) -> bool:
    """Whether the user's namespace bucket lies in the experiment's range."""
    if experiment.bucket_start is None:
        return False
    position = bucket(experiment.namespace, user_id)
    return experiment.bucket_start <= position < experiment.bucket_start + experiment.buckets


def assign(experiment: Experiment, user_id: str) -> str | None:
    """The arm ``user_id`` gets in ``experiment``, or None when outside its traffic."""
    forced = experiment.forced.get(user_id)
    if forced is not None:
        return forced
    if not in_range(experiment, user_id):
        return None
    return experiment.arms[arm_index(experiment.weights, bucket(experiment.salt, user_id))].name


@dataclass(frozen=True)
class Assignment:
    """The experiment and arm a request is served by."""

    experiment: Experiment
    arm: str

    def tag(self) -> dict[str, str]:
        return {"key": self.experiment.key, "arm": self.arm}


def assign_any(experiments: Iterable[Experiment], user_id: str) -> Assignment | None:
    """The first running experiment (in the order given) that holds the user, and their arm."""
    for experiment in experiments:
        arm = assign(experiment, user_id)
        if arm is not None:
            return Assignment(experiment, arm)
    return None


def allocate(experiment: Experiment, others: Iterable[Experiment]) -> int:
    """The first bucket of a free range of ``experiment.buckets`` in its namespace.

    ``others`` are the running experiments; those of the same namespace hold ranges.
    Raises ConfigError when no gap is wide enough.

    >>> from recstack.experiments.config import Experiment
    >>> arms = [{"name": "a", "model": "popularity", "weight": 0.5},
    ...         {"name": "b", "model": "champion", "weight": 0.5}]
    >>> first = Experiment(key="one", arms=arms, traffic=0.3, bucket_start=0)
    >>> allocate(Experiment(key="two", arms=arms, traffic=0.5), [first])
    3000
    """
    taken = sorted(
        (other.bucket_start, other.bucket_start + other.buckets)
        for other in others
        if other.namespace == experiment.namespace
        and other.key != experiment.key
        and other.bucket_start is not None
    )
    start = 0
    for low, high in taken:
        if low - start >= experiment.buckets:
            return start
        start = max(start, high)
    if BUCKETS - start >= experiment.buckets:
        return start
    raise ConfigError(
        f"namespace {experiment.namespace!r} has no free {experiment.traffic:.2%} of users: "
        "running experiments there hold the rest (stop one, lower the traffic, or use "
        "another namespace)"
    )


def check_ramp(experiment: Experiment, traffic: float, others: Iterable[Experiment]) -> None:
    """Refuse a traffic change that would shrink the range or overlap another experiment."""
    if traffic < experiment.traffic:
        raise ConfigError(
            "lowering traffic of a running experiment would move assigned users out of it; "
            "stop it instead"
        )
    if experiment.bucket_start is None:
        return
    end = experiment.bucket_start + max(1, round(traffic * BUCKETS))
    if end > BUCKETS:
        raise ConfigError("the ramp would run past the end of the namespace's users")
    for other in others:
        if other.namespace != experiment.namespace or other.key == experiment.key:
            continue
        if other.bucket_start is not None and experiment.bucket_start < other.bucket_start < end:
            raise ConfigError(
                f"the ramp would overlap running experiment {other.key!r} in namespace "
                f"{experiment.namespace!r}"
            )
