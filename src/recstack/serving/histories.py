"""Per-user interaction histories in memory: a CSR from the snapshot plus live per-user rows.

Rows of users who posted events since the snapshot live in a dict and are rebuilt from their
own row only (O(history), never O(all users)). Such users count as *changed*: their learned
vectors no longer match their history, so the engine folds them in. Purged users are blanked
in the CSR too and only a hash of their id is kept (so a learned vector for them is never used
again); nothing else about them remains.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import scipy.sparse as sp

from recstack.data.idmap import IdMap
from recstack.serving.catalogue import positions_of

EMPTY_ITEMS = np.empty(0, dtype=np.int64)
EMPTY_WEIGHTS = np.empty(0, dtype=np.float32)


def _digest(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


class UserHistories:
    """Item indices and weights per user, safe to read and update from many threads."""

    def __init__(self, users: IdMap, matrix: sp.csr_matrix) -> None:
        """``matrix`` rows follow ``users``; columns are engine item indices."""
        self._users = users
        self._rows = positions_of(users)
        self._indptr = np.asarray(matrix.indptr, dtype=np.int64)
        self._indices = np.array(matrix.indices, dtype=np.int64)
        self._data = np.array(matrix.data, dtype=np.float32)
        self._live: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._forgotten: set[str] = set()
        self._lock = threading.Lock()
        counts = np.bincount(self._indices[self._data > 0], minlength=matrix.shape[1])
        self._popularity = counts.astype(np.float64)

    @property
    def n_users(self) -> int:
        return len(self._rows) + sum(1 for u in self._live if u not in self._rows)

    def row(self, user_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(item indices, weights)`` of a user's history; empty for an unknown user."""
        live = self._live.get(user_id)
        if live is not None:
            return live
        r = self._rows.get(user_id, -1)
        if r < 0:
            return EMPTY_ITEMS, EMPTY_WEIGHTS
        lo, hi = self._indptr[r], self._indptr[r + 1]
        items, weights = self._indices[lo:hi], self._data[lo:hi]
        if self._forgotten:
            kept = weights > 0
            return items[kept], weights[kept]
        return items, weights

    def is_changed(self, user_id: str) -> bool:
        """Whether the user's history changed since the snapshot (or they were purged)."""
        return user_id in self._live or self.is_forgotten(user_id)

    def is_forgotten(self, user_id: str) -> bool:
        return bool(self._forgotten) and _digest(user_id) in self._forgotten

    def add(self, user_id: str, items: np.ndarray, weights: np.ndarray) -> None:
        """Add interactions to a user's history (repeated items sum their weights)."""
        with self._lock:
            old_items, old_weights = self.row(user_id)
            all_items = np.concatenate([old_items, np.asarray(items, dtype=np.int64)])
            all_weights = np.concatenate([old_weights, np.asarray(weights, dtype=np.float32)])
            merged, inverse = np.unique(all_items, return_inverse=True)
            summed = np.zeros(len(merged), dtype=np.float32)
            np.add.at(summed, inverse, all_weights)
            self._count_new(old_items[old_weights > 0], merged[summed > 0])
            self._live[user_id] = (merged, summed)

    def replace(self, user_id: str, items: np.ndarray, weights: np.ndarray) -> None:
        """Set a user's whole history (e.g. re-read from the store)."""
        items = np.asarray(items, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float32)
        merged, inverse = np.unique(items, return_inverse=True)
        summed = np.zeros(len(merged), dtype=np.float32)
        np.add.at(summed, inverse, weights)
        with self._lock:
            old_items, old_weights = self.row(user_id)
            self._count_new(old_items[old_weights > 0], merged[summed > 0])
            self._live[user_id] = (merged, summed)

    def forget(self, user_id: str) -> None:
        """Drop every trace of a user: live row, snapshot row, popularity contribution."""
        with self._lock:
            old_items, old_weights = self.row(user_id)
            self._count_new(old_items[old_weights > 0], EMPTY_ITEMS)
            self._live.pop(user_id, None)
            r = self._rows.get(user_id, -1)
            if r >= 0:
                lo, hi = self._indptr[r], self._indptr[r + 1]
                self._data[lo:hi] = 0.0
                self._indices[lo:hi] = 0
            self._forgotten.add(_digest(user_id))

    def knows(self, user_id: str) -> bool:
        """Whether the user has any history in memory."""
        return len(self.row(user_id)[0]) > 0

    def popularity(self, n_items: int) -> np.ndarray:
        """Distinct users per item (live), padded to ``n_items``."""
        pop = self._popularity
        if len(pop) < n_items:
            pop = np.concatenate([pop, np.zeros(n_items - len(pop))])
        return pop[:n_items]

    def _count_new(self, before: np.ndarray, after: np.ndarray) -> None:
        """Keep distinct-user popularity in step with one user's row changing."""
        added = np.setdiff1d(after, before, assume_unique=True)
        removed = np.setdiff1d(before, after, assume_unique=True)
        top = int(max(added.max(initial=-1), removed.max(initial=-1))) + 1
        if top > len(self._popularity):
            grown = np.zeros(top)
            grown[: len(self._popularity)] = self._popularity
            self._popularity = grown
        np.add.at(self._popularity, added, 1.0)
        np.subtract.at(self._popularity, removed, 1.0)
