"""Per-user interaction histories in memory: a CSR from the snapshot plus live per-user rows.

The snapshot CSR may be a memory-mapped serving image shared by every worker, so it is only
ever read. Rows of users who posted events since the snapshot live in a dict. Every row is kept sorted by
item index, so adding a few events is a binary search and an insert into that user's row
(O(history), never O(all users)). Such users count as *changed*: their learned vectors no
longer match their history, so the engine folds them in. Purged users are
hidden: only a hash of their id is kept, which blanks their snapshot row and stops their
learned vector being used (the store deletes their events and the serving images).
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import scipy.sparse as sp

from recstack.data.idmap import IdMap
from recstack.serving.engine.catalogue import positions_of

EMPTY_ITEMS = np.empty(0, dtype=np.int32)
EMPTY_WEIGHTS = np.empty(0, dtype=np.float32)
SNAPSHOT = object()  # version token of every row still as loaded from the snapshot


def _digest(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


def _summed(items: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique items with their weights summed."""
    items = np.asarray(items, dtype=np.int32)
    weights = np.asarray(weights, dtype=np.float32)
    if len(items) <= 1:
        return items, weights
    unique, inverse = np.unique(items, return_inverse=True)
    summed = np.zeros(len(unique), dtype=np.float32)
    np.add.at(summed, inverse, weights)
    return unique, summed


class UserHistories:
    """Item indices and weights per user, safe to read and update from many threads."""

    def __init__(self, users: IdMap, matrix: sp.csr_matrix, presorted: bool = False) -> None:
        """``matrix`` rows follow ``users``; columns are engine item indices.

        With ``presorted`` (every row sorted by column, float32 weights, int32 columns) the
        arrays are used as they are, so a memory-mapped serving image stays shared between
        workers; they are never written to.
        """
        self.users = users
        self._rows = positions_of(users)
        if presorted and matrix.data.dtype == np.float32 and matrix.indices.dtype == np.int32:
            own = matrix
        else:
            own = sp.csr_matrix(
                (
                    np.array(matrix.data, dtype=np.float32),
                    np.array(matrix.indices, dtype=np.int32),
                    np.array(matrix.indptr, dtype=np.int64 if matrix.nnz >= 2**31 else np.int32),
                ),
                shape=matrix.shape,
            )
            own.sort_indices()
        self._indptr, self._indices, self._data = own.indptr, own.indices, own.data
        self._live: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._forgotten: set[str] = set()
        self._lock = threading.Lock()
        counts = np.bincount(self._indices[self._data > 0], minlength=matrix.shape[1])
        self._popularity = counts.astype(np.float64)

    @property
    def rows(self) -> dict[str, int]:
        """Snapshot row of each user of ``users`` (read-only: shared with the model slots)."""
        return self._rows

    @property
    def n_users(self) -> int:
        return len(self._rows) + sum(1 for u in self._live if u not in self._rows)

    def row(self, user_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(item indices, weights)`` of a user's history, sorted by item; empty if unknown."""
        live = self._live.get(user_id)
        if live is not None:
            return live
        return self._snapshot_row(user_id)

    def versioned_row(self, user_id: str) -> tuple[np.ndarray, np.ndarray, object]:
        """``row`` plus a token that stays the same object exactly as long as the row does."""
        live = self._live.get(user_id)
        if live is not None:
            return live[0], live[1], live
        items, weights = self._snapshot_row(user_id)
        return items, weights, SNAPSHOT

    def _snapshot_row(self, user_id: str) -> tuple[np.ndarray, np.ndarray]:
        r = self._rows.get(user_id, -1)
        if r < 0 or self.is_forgotten(user_id):
            return EMPTY_ITEMS, EMPTY_WEIGHTS
        lo, hi = self._indptr[r], self._indptr[r + 1]
        return self._indices[lo:hi], self._data[lo:hi]

    def is_changed(self, user_id: str) -> bool:
        """Whether the user's history changed since the snapshot (or they were purged)."""
        return user_id in self._live or self.is_forgotten(user_id)

    def is_forgotten(self, user_id: str) -> bool:
        return bool(self._forgotten) and _digest(user_id) in self._forgotten

    def knows(self, user_id: str) -> bool:
        """Whether the user has any history in memory."""
        return len(self.row(user_id)[0]) > 0

    def add(self, user_id: str, items: np.ndarray, weights: np.ndarray) -> None:
        """Add interactions to a user's history (repeated items sum their weights)."""
        if len(items) == 1:
            self._add_one(user_id, int(items[0]), float(weights[0]))
            return
        new_items, new_weights = _summed(items, weights)
        with self._lock:
            old_items, old_weights = self.row(user_id)
            pos = np.searchsorted(old_items, new_items)
            hit = pos < len(old_items)
            hit[hit] = old_items[pos[hit]] == new_items[hit]
            before = np.zeros(len(new_items), dtype=np.float32)
            before[hit] = old_weights[pos[hit]]
            merged_weights = np.array(old_weights, dtype=np.float32)
            merged_weights[pos[hit]] += new_weights[hit]
            fresh = ~hit
            if fresh.sum() == 1:  # the common live case: one new item, two slices and a join
                p, item, weight = int(pos[fresh][0]), new_items[fresh], new_weights[fresh]
                merged_items = np.concatenate([old_items[:p], item, old_items[p:]])
                merged_weights = np.concatenate([merged_weights[:p], weight, merged_weights[p:]])
            elif fresh.any():
                merged_items = np.insert(old_items, pos[fresh], new_items[fresh])
                merged_weights = np.insert(merged_weights, pos[fresh], new_weights[fresh])
            else:
                merged_items = np.array(old_items)
            self._shift_popularity(new_items, before, before + new_weights)
            self._live[user_id] = (merged_items, merged_weights)

    def add_many(self, user_ids: list[str], items: np.ndarray, weights: np.ndarray) -> None:
        """``add`` for a batch of events of many users at once, with a fixed number of numpy
        operations for the whole batch instead of several per user (a 1,000-event post touches
        about 1,000 users).

        The touched users' current rows and the new events are concatenated, sorted by (user,
        item), and summed per pair; popularity moves for pairs whose weight crosses zero.
        """
        if len(user_ids) == 0:
            return
        users = list(dict.fromkeys(user_ids))
        label = {u: i for i, u in enumerate(users)}
        new_user = np.fromiter((label[u] for u in user_ids), np.int64, len(user_ids))
        with self._lock:
            old_user, old_items, old_weights = self._gather(users)
            n_old = len(old_items)
            user = np.concatenate([old_user, new_user])
            item = np.concatenate([old_items, np.asarray(items, dtype=np.int64)])
            weight = np.concatenate([old_weights, np.asarray(weights, dtype=np.float32)])
            is_new = np.arange(len(user)) >= n_old
            order = np.lexsort((item, user))
            user, item, weight, is_new = user[order], item[order], weight[order], is_new[order]
            start = np.flatnonzero(np.r_[True, (user[1:] != user[:-1]) | (item[1:] != item[:-1])])
            summed = np.add.reduceat(weight, start).astype(np.float32)
            before = np.add.reduceat(np.where(is_new, 0.0, weight), start)
            pair_user, pair_item = user[start], item[start]
            self._shift_popularity(pair_item, before, summed)
            bounds = np.searchsorted(pair_user, np.arange(len(users) + 1)).tolist()
            pair_item32 = pair_item.astype(np.int32)
            live = self._live
            for j, u in enumerate(users):
                lo, hi = bounds[j], bounds[j + 1]
                live[u] = (pair_item32[lo:hi], summed[lo:hi])

    def _gather(self, users: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The current rows of ``users`` concatenated: (user label, item, weight) arrays, the
        snapshot rows gathered in one step."""
        labels, parts_items, parts_weights = [], [], []
        snap_labels, snap_rows = [], []
        get_row, live, forgotten = self._rows.get, self._live, bool(self._forgotten)
        for j, u in enumerate(users):
            row = live.get(u)
            if row is not None:
                labels.append(np.full(len(row[0]), j, dtype=np.int64))
                parts_items.append(row[0])
                parts_weights.append(row[1])
                continue
            r = get_row(u, -1)
            if r >= 0 and not (forgotten and self.is_forgotten(u)):
                snap_labels.append(j)
                snap_rows.append(r)
        if snap_rows:
            rows = np.asarray(snap_rows, dtype=np.int64)
            starts = np.asarray(self._indptr[rows], dtype=np.int64)
            lengths = np.asarray(self._indptr[rows + 1], dtype=np.int64) - starts
            offsets = np.cumsum(lengths) - lengths
            take = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
            labels.append(np.repeat(np.asarray(snap_labels, dtype=np.int64), lengths))
            parts_items.append(self._indices[take])
            parts_weights.append(self._data[take])
        if not labels:
            return np.empty(0, np.int64), np.empty(0, np.int64), EMPTY_WEIGHTS
        return (
            np.concatenate(labels),
            np.concatenate(parts_items).astype(np.int64),
            np.concatenate(parts_weights).astype(np.float32),
        )

    def _add_one(self, user_id: str, item: int, weight: float) -> None:
        """``add`` for one interaction, the usual live event: a binary search, two slices and
        a join, and popularity moved by at most one user (no temporary arrays)."""
        with self._lock:
            old_items, old_weights = self.row(user_id)
            p = int(np.searchsorted(old_items, item))
            if p < len(old_items) and int(old_items[p]) == item:
                before = float(old_weights[p])
                merged_items = old_items.copy()
                merged_weights = old_weights.astype(np.float32)  # a copy
                merged_weights[p] += weight
                after = float(merged_weights[p])
            else:
                before, after = 0.0, weight
                merged_items = np.concatenate(
                    [old_items[:p], np.array([item], dtype=np.int32), old_items[p:]]
                )
                merged_weights = np.concatenate(
                    [old_weights[:p], np.array([weight], dtype=np.float32), old_weights[p:]]
                )
            if (before > 0) != (after > 0):
                if item >= len(self._popularity):
                    grown = np.zeros(item + 1)
                    grown[: len(self._popularity)] = self._popularity
                    self._popularity = grown
                self._popularity[item] += 1 if after > 0 else -1
            self._live[user_id] = (merged_items, merged_weights)

    def replace(self, user_id: str, items: np.ndarray, weights: np.ndarray) -> None:
        """Set a user's whole history (e.g. re-read from the store)."""
        merged, summed = _summed(items, weights)
        with self._lock:
            old_items, old_weights = self.row(user_id)
            self._shift_rows(old_items, old_weights, merged, summed)
            self._live[user_id] = (merged, summed)

    def forget(self, user_id: str) -> None:
        """Drop every trace of a user: live row, snapshot row, popularity contribution."""
        with self._lock:
            old_items, old_weights = self.row(user_id)
            self._shift_rows(old_items, old_weights, EMPTY_ITEMS, EMPTY_WEIGHTS)
            self._live.pop(user_id, None)
            self._forgotten.add(_digest(user_id))

    def popularity(self, n_items: int) -> np.ndarray:
        """Distinct users per item (live), padded to ``n_items``."""
        pop = self._popularity
        if len(pop) < n_items:
            pop = np.concatenate([pop, np.zeros(n_items - len(pop))])
        return pop[:n_items]

    def _shift_rows(
        self, old_items: np.ndarray, old_weights: np.ndarray, items: np.ndarray, weights: np.ndarray
    ) -> None:
        touched = np.union1d(old_items, items).astype(np.int32)
        before = np.zeros(len(touched), dtype=np.float32)
        after = np.zeros(len(touched), dtype=np.float32)
        before[np.searchsorted(touched, old_items)] = old_weights
        after[np.searchsorted(touched, items)] = weights
        self._shift_popularity(touched, before, after)

    def _shift_popularity(self, items: np.ndarray, before: np.ndarray, after: np.ndarray) -> None:
        """Keep distinct-user popularity in step with one user's weights changing."""
        change = (after > 0).astype(np.int8) - (before > 0)
        moved = np.flatnonzero(change)
        if len(moved) == 0:
            return
        top = int(items[moved].max()) + 1
        if top > len(self._popularity):
            grown = np.zeros(top)
            grown[: len(self._popularity)] = self._popularity
            self._popularity = grown
        if len(moved) <= 8:
            for j in moved.tolist():
                self._popularity[items[j]] += change[j]
        else:
            np.add.at(self._popularity, items[moved], change[moved])
