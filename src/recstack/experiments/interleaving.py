"""Team-draft interleaving: both rankers fill one list, clicks say which one the user prefers.

Every user sees items from both arms in the same list, so the comparison is within-user and
needs far fewer users than an A/B test of CTR (Chapelle et al., "Large-scale validation and
analysis of interleaved search evaluation", 2012). Team draft (Radlinski et al., 2008): the arm
that has contributed fewer items picks next (a fair coin breaks ties), each pick being its
highest-ranked item not yet in the list. A click is credited to the team of the item clicked; a
user prefers the arm with more credited clicks; the preference test is a two-sided sign test
over users with a preference.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

TEAM_A, TEAM_B = 0, 1


@dataclass(frozen=True)
class Interleaved:
    """The merged list and, per position, the team that contributed it (0 = A, 1 = B)."""

    items: list[Hashable]
    teams: np.ndarray


def team_draft(
    a: Sequence[Hashable], b: Sequence[Hashable], k: int, rng: np.random.Generator
) -> Interleaved:
    """Interleave rankings ``a`` and ``b`` into ``k`` items by team draft.

    With identical rankings every pick takes the next item, whoever picks:

    >>> team_draft([1, 2, 3], [1, 2, 3], 3, np.random.default_rng(0)).items
    [1, 2, 3]

    Disjoint lists alternate in pairs, each pair's order set by the coin:

    >>> out = team_draft(["a1", "a2"], ["b1", "b2"], 4, np.random.default_rng(0))
    >>> sorted(out.items[:2]), sorted(out.items[2:]), int(out.teams.sum())
    (['a1', 'b1'], ['a2', 'b2'], 2)
    """
    if k < 0:
        raise ValueError("k must be non-negative")
    chosen: list[Hashable] = []
    teams: list[int] = []
    seen: set[Hashable] = set()
    pos = [0, 0]
    lists = (list(a), list(b))
    counts = [0, 0]

    def next_item(team: int) -> Hashable | None:
        ranking = lists[team]
        while pos[team] < len(ranking) and ranking[pos[team]] in seen:
            pos[team] += 1
        return ranking[pos[team]] if pos[team] < len(ranking) else None

    while len(chosen) < k:
        if counts[TEAM_A] != counts[TEAM_B]:
            team = TEAM_A if counts[TEAM_A] < counts[TEAM_B] else TEAM_B
        else:
            team = int(rng.integers(2))
        item = next_item(team)
        if item is None:
            team = 1 - team
            item = next_item(team)
            if item is None:
                break
        chosen.append(item)
        teams.append(team)
        seen.add(item)
        counts[team] += 1
    return Interleaved(chosen, np.asarray(teams, dtype=np.int8))


def credit_clicks(teams: np.ndarray, clicked: np.ndarray) -> tuple[int, int]:
    """Clicks credited to (A, B) for one interleaved list; ``clicked`` is a bool per position.

    >>> credit_clicks(np.array([0, 1, 0, 1]), np.array([True, True, False, True]))
    (1, 2)
    """
    teams = np.asarray(teams)
    clicked = np.asarray(clicked, dtype=bool)
    return int(np.sum(clicked & (teams == TEAM_A))), int(np.sum(clicked & (teams == TEAM_B)))


@dataclass(frozen=True)
class PreferenceResult:
    """Users preferring A, B, neither (ties, including no clicks), delta and sign-test p-value.

    ``delta = (wins_b - wins_a) / (wins_a + wins_b + ties)`` (Chapelle et al.): positive when B wins.
    """

    wins_a: int
    wins_b: int
    ties: int
    delta: float
    p_value: float

    @property
    def winner(self) -> str | None:
        if self.wins_a == self.wins_b:
            return None
        return "a" if self.wins_a > self.wins_b else "b"


def preference_test(credit_a: np.ndarray, credit_b: np.ndarray) -> PreferenceResult:
    """Per-user credited clicks of A and B -> two-sided binomial sign test over users with a
    preference (ties carry no information about which arm is better and are set aside).

    8 users prefer B, 2 prefer A: p = 2 * (C(10,8) + C(10,9) + C(10,10)) / 2**10 = 0.1094.

    >>> r = preference_test(np.array([1] * 2 + [0] * 8 + [1]), np.array([0] * 2 + [1] * 8 + [1]))
    >>> r.wins_a, r.wins_b, r.ties, round(r.p_value, 4), round(r.delta, 3), r.winner
    (2, 8, 1, 0.1094, 0.545, 'b')
    """
    ca, cb = np.asarray(credit_a), np.asarray(credit_b)
    if ca.shape != cb.shape:
        raise ValueError("credit arrays must have one entry per user each")
    wins_a, wins_b = int(np.sum(ca > cb)), int(np.sum(cb > ca))
    ties = int(ca.size - wins_a - wins_b)
    n = wins_a + wins_b
    p = float(stats.binomtest(wins_b, n, 0.5).pvalue) if n else 1.0
    delta = (wins_b - wins_a) / ca.size if ca.size else 0.0
    return PreferenceResult(wins_a, wins_b, ties, float(delta), p)
