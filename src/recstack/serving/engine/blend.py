"""Merging the collaborative model's picks with picks for items it has never seen.

A collaborative model has no vector for a catalogue item added after training. Such *cold*
items are ranked separately (by the content model's similarity to the user's history, or by
live popularity without one) and given a share of the list: ``COLD_SHARE`` of k (at least one
slot when any cold item qualifies), spread evenly through the list instead of appended, so a
new item is recommendable at once without swamping the model's ranking. Scores of the two
kinds are not on one scale, so positions, not scores, decide the merge.
"""

from __future__ import annotations

import numpy as np

COLD_SHARE = 0.2


def cold_slots(k: int, n_warm: int, n_cold: int, n_promising: int | None = None) -> int:
    """How many of the k positions go to cold items.

    ``n_promising`` of the ``n_cold`` candidates have a positive score; only they earn the
    regular share, the rest only fill positions the model cannot.

    >>> cold_slots(10, 50, 5), cold_slots(10, 3, 50), cold_slots(10, 50, 0), cold_slots(1, 9, 9)
    (2, 7, 0, 1)
    >>> cold_slots(10, 50, 5, n_promising=0), cold_slots(10, 4, 5, n_promising=0)
    (0, 5)
    """
    promising = n_cold if n_promising is None else min(n_promising, n_cold)
    share = min(promising, max(1, int(k * COLD_SHARE))) if promising else 0
    return min(n_cold, max(share, k - n_warm))


def interleave(
    warm: tuple[np.ndarray, np.ndarray],
    cold: tuple[np.ndarray, np.ndarray],
    k: int,
    n_promising: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions, scores and an is-cold flag of the merged top-k list.

    >>> idx, _, is_cold = interleave((np.arange(10), np.ones(10)), (np.array([99]), np.ones(1)), 5)
    >>> idx.tolist(), is_cold.tolist()
    ([0, 1, 99, 2, 3], [False, False, True, False, False])
    >>> interleave((np.arange(10), np.ones(10)), (np.array([98, 99]), np.ones(2)), 10)[0].tolist()
    [0, 1, 98, 2, 3, 4, 5, 99, 6, 7]
    """
    n_cold = cold_slots(k, len(warm[0]), len(cold[0]), n_promising)
    n_warm = min(len(warm[0]), k - n_cold)
    total = n_warm + n_cold
    is_cold = np.zeros(total, dtype=bool)
    if n_cold:
        step = total / n_cold
        slots = np.minimum(total - 1, ((np.arange(n_cold) + 0.5) * step).astype(np.int64))
        is_cold[np.unique(slots)] = True
        short = n_cold - int(is_cold.sum())
        if short:
            is_cold[np.flatnonzero(~is_cold)[-short:]] = True
    idx = np.empty(total, dtype=np.int64)
    val = np.empty(total, dtype=np.float32)
    idx[~is_cold], val[~is_cold] = warm[0][:n_warm], warm[1][:n_warm]
    idx[is_cold], val[is_cold] = cold[0][:n_cold], cold[1][:n_cold]
    return idx, val, is_cold
