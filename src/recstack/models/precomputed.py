"""Precomputed top-k lists served as a model: every known user's list, fixed in advance.

Batch scoring writes each user's best items once (``recstack spark score --into-store``); this
class serves them through the same ``recommend`` contract as trained models, so the engine
applies exclusions, attribute filters and k the same way: a stored list is filtered by the item
mask and the history (items seen since the lists were computed included), then cut to k.

The lists are three arrays (CSR layout: ``indptr`` over users, ``item_idx`` and ``scores``),
not a dict per user. There is nothing to fold in: a user without a stored list gets nothing
from this model (``fixed_lists``), and the engine serves them popularity as a cold start.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.data.idmap import IdMap
from recstack.errors import ConfigError
from recstack.models.base import Recommender, as_histories


class PrecomputedRecommender(Recommender):
    """Stored top-k lists per user as a ``Recommender`` (not trainable, not saved).

    >>> lists = PrecomputedRecommender.from_lists(
    ...     IdMap(["u1", "u2"]), IdMap(["a", "b", "c"]),
    ...     np.array([0, 3, 4]), np.array([2, 0, 1, 1]), np.array([0.9, 0.5, 0.2, 0.7]),
    ... )
    >>> seen = sp.csr_matrix(([1.0], ([0], [0])), shape=(1, 3))  # u1 has seen "a"
    >>> idx, val = lists.recommend(seen, 2, users=np.array([0]))
    >>> idx.tolist(), [round(float(v), 1) for v in val[0]]
    ([[2, 1]], [0.9, 0.2])
    >>> lists.recommend(seen, 2, users=np.array([-1]))[0].tolist()  # no list: nothing
    [[-1, -1]]
    """

    name: ClassVar[str] = "precomputed"
    defaults: ClassVar[dict[str, Any]] = {}
    # The lists do not change with the history and cannot be folded in for unknown users.
    fixed_lists: ClassVar[bool] = True
    uses_history_for_known_users: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.indptr = np.zeros(1, dtype=np.int64)
        self.item_idx = np.zeros(0, dtype=np.int32)
        self.list_scores = np.zeros(0, dtype=np.float32)

    @classmethod
    def from_lists(
        cls,
        users: IdMap,
        items: IdMap,
        indptr: np.ndarray,
        item_idx: np.ndarray,
        scores: np.ndarray,
    ) -> PrecomputedRecommender:
        """User ``u``'s list is ``items[item_idx[indptr[u]:indptr[u + 1]]]``, best first."""
        indptr = np.asarray(indptr, dtype=np.int64)
        if len(indptr) != len(users) + 1 or not len(item_idx) == len(scores) == indptr[-1]:
            raise ValueError("indptr must have one entry per user plus one, spanning the lists")
        model = cls()
        model.users, model.items = users, items
        model.indptr = indptr
        model.item_idx = np.asarray(item_idx, dtype=np.int32)
        model.list_scores = np.asarray(scores, dtype=np.float32)
        model.meta.n_users, model.meta.n_items = len(users), len(items)
        model.meta.n_interactions = len(model.item_idx)
        return model

    def over_items(self, items: IdMap) -> PrecomputedRecommender:
        """The same lists indexed over ``items`` followed by list items it lacks, so a
        catalogue's items are all the model's (none look *cold* to the engine)."""
        merged = items.extend(self.items.ids)
        remap = merged.indices(self.items.ids).astype(np.int32)
        out = PrecomputedRecommender.from_lists(
            self.users, merged, self.indptr, remap[self.item_idx], self.list_scores
        )
        out.meta = self.meta
        return out

    @property
    def k(self) -> int:
        """The longest stored list."""
        return int(np.diff(self.indptr).max()) if len(self.users) else 0

    def _fit(self, dataset: Dataset, progress: bool = False) -> None:
        raise ConfigError("precomputed lists are loaded from the store, not trained")

    def recommend(
        self,
        histories: sp.spmatrix | np.ndarray,
        k: int = 10,
        *,
        users: np.ndarray | None = None,
        exclude: sp.spmatrix | None = None,
        exclude_seen: bool = True,
        item_mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each row's stored list without masked, seen or excluded items, cut to ``k``;
        rows of users without a list (``users`` -1 or None) are all padding."""
        h = as_histories(histories, self.n_items)
        n = h.shape[0]
        rows = np.full(n, -1, dtype=np.int64) if users is None else np.asarray(users, np.int64)
        ex = as_histories(exclude, self.n_items) if exclude is not None else None
        mask = None if item_mask is None else np.asarray(item_mask, dtype=bool)
        out_idx = np.full((n, k), -1, dtype=np.int64)
        out_val = np.full((n, k), -np.inf, dtype=np.float32)
        for r, u in enumerate(rows.tolist()):
            if u < 0 or u >= len(self.users):
                continue
            lo, hi = self.indptr[u], self.indptr[u + 1]
            cand = self.item_idx[lo:hi]
            keep = np.ones(len(cand), dtype=bool)
            if mask is not None:
                keep &= mask[cand] if mask.ndim == 1 else mask[r, cand]
            if exclude_seen:
                keep &= ~np.isin(cand, h.indices[h.indptr[r] : h.indptr[r + 1]])
            if ex is not None:
                keep &= ~np.isin(cand, ex.indices[ex.indptr[r] : ex.indptr[r + 1]])
            chosen = np.flatnonzero(keep)[:k]
            out_idx[r, : len(chosen)] = cand[chosen]
            out_val[r, : len(chosen)] = self.list_scores[lo:hi][chosen]
        return out_idx, out_val

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """Stored scores where a user's list has the item, ``-inf`` elsewhere."""
        n = histories.shape[0]
        out = np.full((n, self.n_items), -np.inf, dtype=np.float32)
        if users is None:
            return out
        for r, u in enumerate(np.asarray(users, dtype=np.int64).tolist()):
            if 0 <= u < len(self.users):
                lo, hi = self.indptr[u], self.indptr[u + 1]
                out[r, self.item_idx[lo:hi]] = self.list_scores[lo:hi]
        return out

    def explain(self, history: sp.csr_matrix, item: int, top: int = 3) -> list[tuple[int, float]]:
        """Nothing: a stored list records no reasons."""
        return []

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        """No similarity is stored: every item scores ``-inf``."""
        return np.full((len(items), self.n_items), -np.inf, dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        return {"indptr": self.indptr, "item_idx": self.item_idx, "scores": self.list_scores}

    def _set_state(self, state: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        self.indptr = np.asarray(state["indptr"], dtype=np.int64)
        self.item_idx = np.asarray(state["item_idx"], dtype=np.int32)
        self.list_scores = np.asarray(state["scores"], dtype=np.float32)
