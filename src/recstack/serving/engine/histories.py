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


def _ascending(keys: np.ndarray) -> bool:
    """Whether ``keys`` strictly ascend (no key twice)."""
    return bool((keys[1:] > keys[:-1]).all())


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

        The touched users' current rows, each sorted by item, are laid end to end so that
        ``(user label, item)`` keys ascend; the batch's keys are merged into them with one
        binary search and one insert, linear in the rows rather than a sort of them. A batch
        naming one (user, item) pair twice (or a row holding an item twice) takes the general
        path: everything sorted by (user, item) and summed per pair, so weights add up in the
        same order either way.
        Popularity moves for pairs whose weight crosses zero.
        """
        if len(user_ids) == 0:
            return
        with self._lock:
            users, old_user, old_items, old_weights = self._gather(list(dict.fromkeys(user_ids)))
            label = {u: i for i, u in enumerate(users)}
            new_user = np.fromiter((label[u] for u in user_ids), np.int64, len(user_ids))
            new_items = np.asarray(items, dtype=np.int64)
            new_weights = np.asarray(weights, dtype=np.float32)
            width = int(max(old_items.max(initial=0), new_items.max(initial=0))) + 1
            new_key = new_user * width + new_items
            order = np.argsort(new_key, kind="stable")
            new_key, old_key = new_key[order], old_user * width + old_items
            if _ascending(new_key) and _ascending(old_key):
                pair_user, pair_item, summed = self._merged_by_keys(
                    old_key, old_weights, new_key, new_weights[order], width
                )
            else:
                pair_user, pair_item, summed = self._merged_by_sort(
                    old_user, old_items, old_weights, new_user, new_items, new_weights
                )
            bounds = np.searchsorted(pair_user, np.arange(len(users) + 1)).tolist()
            pair_item32 = pair_item.astype(np.int32)
            live = self._live
            # each row gets arrays of its own: a view would keep the batch's arrays (every
            # touched user's whole row) alive as long as any one of those users' rows, which
            # after 500K random events held 3.5x the memory of the rows themselves
            for j, u in enumerate(users):
                lo, hi = bounds[j], bounds[j + 1]
                live[u] = (pair_item32[lo:hi].copy(), summed[lo:hi].copy())

    def _merged_by_keys(
        self,
        old_key: np.ndarray,
        old_weights: np.ndarray,
        new_key: np.ndarray,
        new_weights: np.ndarray,
        width: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ascending unique ``new_key`` merged into ascending unique ``old_key``: (user label,
        item, weight) per pair, weights of pairs in both added."""
        pos = np.searchsorted(old_key, new_key)
        hit = pos < len(old_key)
        hit[hit] = old_key[pos[hit]] == new_key[hit]
        before = np.zeros(len(new_key), dtype=np.float32)
        before[hit] = old_weights[pos[hit]]
        summed = np.array(old_weights, dtype=np.float32)
        summed[pos[hit]] += new_weights[hit]
        self._shift_popularity(new_key % width, before, before + new_weights)
        fresh = ~hit
        if fresh.any():
            key = np.insert(old_key, pos[fresh], new_key[fresh])
            summed = np.insert(summed, pos[fresh], new_weights[fresh])
        else:
            key = old_key
        return key // width, key % width, summed

    def _merged_by_sort(
        self,
        old_user: np.ndarray,
        old_items: np.ndarray,
        old_weights: np.ndarray,
        new_user: np.ndarray,
        new_items: np.ndarray,
        new_weights: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Old rows and new events sorted by (user label, item) and summed per pair."""
        n_old = len(old_items)
        user = np.concatenate([old_user, new_user])
        item = np.concatenate([old_items, new_items])
        weight = np.concatenate([old_weights, new_weights])
        is_new = np.arange(len(user)) >= n_old
        order = np.lexsort((item, user))
        user, item, weight, is_new = user[order], item[order], weight[order], is_new[order]
        start = np.flatnonzero(np.r_[True, (user[1:] != user[:-1]) | (item[1:] != item[:-1])])
        summed = np.add.reduceat(weight, start).astype(np.float32)
        before = np.add.reduceat(np.where(is_new, 0.0, weight), start)
        pair_user, pair_item = user[start], item[start]
        self._shift_popularity(pair_item, before, summed)
        return pair_user, pair_item, summed

    def _gather(self, users: list[str]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """The current rows of ``users``: the users reordered (those with a live row, then
        those with a snapshot row, then the rest) and (user label, item, weight) arrays of
        their rows end to end in that order, so (label, item) ascends. The snapshot rows are
        gathered in one step."""
        live_users, live_rows, snap_users, snap_rows, empty = [], [], [], [], []
        get_row, live, forgotten = self._rows.get, self._live, bool(self._forgotten)
        for u in users:
            row = live.get(u)
            if row is not None:
                live_users.append(u)
                live_rows.append(row)
                continue
            r = get_row(u, -1)
            if r >= 0 and not (forgotten and self.is_forgotten(u)):
                snap_users.append(u)
                snap_rows.append(r)
            else:
                empty.append(u)
        lengths_parts, parts_items, parts_weights = [], [], []
        if live_rows:
            lengths_parts.append(np.fromiter((len(r[0]) for r in live_rows), np.int64))
            parts_items.extend(r[0] for r in live_rows)
            parts_weights.extend(r[1] for r in live_rows)
        if snap_rows:
            rows = np.asarray(snap_rows, dtype=np.int64)
            starts = np.asarray(self._indptr[rows], dtype=np.int64)
            lengths = np.asarray(self._indptr[rows + 1], dtype=np.int64) - starts
            offsets = np.cumsum(lengths) - lengths
            take = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
            lengths_parts.append(lengths)
            parts_items.append(self._indices[take])
            parts_weights.append(self._data[take])
        ordered = live_users + snap_users + empty
        if not lengths_parts:
            return ordered, np.empty(0, np.int64), np.empty(0, np.int64), EMPTY_WEIGHTS
        lengths = np.concatenate(lengths_parts)
        return (
            ordered,
            np.repeat(np.arange(len(lengths), dtype=np.int64), lengths),
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
