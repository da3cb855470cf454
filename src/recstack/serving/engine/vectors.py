"""Top-k inner-product search over item vectors, exact or approximate, with an item mask.

Up to ``ann_threshold`` items the scores are one BLAS matrix-vector product over the (memory
mapped) vectors. Above it a FAISS HNSW index answers, the mask applied inside the graph walk;
if the approximate answer holds fewer than k eligible items while k exist, the eligible items
are scored exactly, so a filter never shortens the list. ``VectorBackend`` names the
approximate index: FAISS (the default) or a Qdrant collection. Items added after the index was built
(new catalogue items) sit in a small exact *tail* searched alongside. Searches never mutate
shared state; ``with_added`` returns a new search object.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from recstack.index.faiss_index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M
from recstack.topk import best, exclusion


@dataclass(frozen=True)
class VectorBackend:
    """Which approximate index serves catalogues above ``ann_threshold`` items.

    ``kind`` is ``"faiss"`` (an HNSW graph in each process) or ``"qdrant"`` (a collection at
    ``qdrant_location``: a server URL, a local directory or ``":memory:"``). With
    ``index_cache`` (a directory) FAISS graphs are saved there and memory-mapped by every
    process that needs the same one (``recstack.index.stored``) instead of built in each.
    """

    ann_threshold: int = 20_000
    kind: str = "faiss"
    qdrant_location: str = ":memory:"
    index_cache: str | None = None

    @classmethod
    def of(cls, settings: Any) -> VectorBackend:
        """The backend a ``Settings`` object names (``ann_threshold_items``, ``vector_backend``,
        ``qdrant_url``)."""
        return cls(
            int(settings.ann_threshold_items),
            str(settings.vector_backend),
            settings.qdrant_url or ":memory:",
        )


def as_backend(ann: int | VectorBackend) -> VectorBackend:
    """A bare threshold means FAISS above it."""
    return ann if isinstance(ann, VectorBackend) else VectorBackend(int(ann))


@dataclass(frozen=True)
class ItemVectorSearch:
    """Inner-product search over ``vectors`` (rows = item positions) plus an exact tail."""

    vectors: np.ndarray
    index: Any = None
    tail: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))

    @classmethod
    def build(cls, vectors: np.ndarray, ann_threshold: int | VectorBackend) -> ItemVectorSearch:
        """Exact search up to the backend's threshold, its approximate index above it."""
        backend = as_backend(ann_threshold)
        index = None
        if len(vectors) > backend.ann_threshold and backend.kind == "faiss" and backend.index_cache:
            from recstack.index.stored import load_or_build_hnsw

            index = load_or_build_hnsw(
                backend.index_cache,
                vectors,
                M=HNSW_M,
                ef_construction=HNSW_EF_CONSTRUCTION,
                ef_search=HNSW_EF_SEARCH,
            )
        elif len(vectors) > backend.ann_threshold:
            from recstack.index import make_index

            index = make_index(
                np.ascontiguousarray(vectors, dtype=np.float32),
                backend.ann_threshold,
                M=HNSW_M,
                ef_construction=HNSW_EF_CONSTRUCTION,
                ef_search=HNSW_EF_SEARCH,
                backend=backend.kind,
                qdrant_location=backend.qdrant_location,
            )
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        return cls(vectors, index, np.zeros((0, dim), dtype=np.float32))

    @property
    def n_items(self) -> int:
        return len(self.vectors) + len(self.tail)

    @property
    def approximate(self) -> bool:
        return self.index is not None

    def with_added(self, vectors: np.ndarray) -> ItemVectorSearch:
        """A search that also covers ``vectors`` (appended at the next positions)."""
        added = np.asarray(vectors, dtype=np.float32).reshape(-1, self.vectors.shape[1])
        return replace(self, tail=np.vstack([self.tail, added]))

    def with_replaced(self, position: int, vector: np.ndarray) -> ItemVectorSearch:
        """A search where the item at ``position`` (a tail item) has a new vector."""
        base = len(self.vectors)
        if position < base:
            return self
        tail = self.tail.copy()
        tail[position - base] = vector
        return replace(self, tail=tail)

    def vector(self, position: int) -> np.ndarray:
        base = len(self.vectors)
        return self.vectors[position] if position < base else self.tail[position - base]

    def vectors_at(self, positions: np.ndarray) -> np.ndarray:
        """The vectors of several item positions, stacked ``(len(positions), d)``."""
        positions = np.asarray(positions, dtype=np.int64)
        base = len(self.vectors)
        head = positions < base
        if head.all():
            return np.asarray(self.vectors[positions], dtype=np.float32)
        out = np.empty((len(positions), self.vectors.shape[1]), dtype=np.float32)
        out[head] = self.vectors[positions[head]]
        out[~head] = self.tail[positions[~head] - base]
        return out

    def scores(self, query: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Exact scores of ``query`` for some item positions."""
        positions = np.asarray(positions, dtype=np.int64)
        base = len(self.vectors)
        out = np.empty(len(positions), dtype=np.float32)
        head = positions < base
        out[head] = np.asarray(self.vectors[positions[head]]) @ query
        if (~head).any():
            out[~head] = self.tail[positions[~head] - base] @ query
        return out

    def search(
        self, query: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` positions and scores for one query; only ``mask``-true positions."""
        query = np.asarray(query, dtype=np.float32).ravel()
        n = self.n_items
        if mask is not None and len(mask) < n:
            mask = np.concatenate([mask, np.zeros(n - len(mask), dtype=bool)])
        eligible = n if mask is None else int(np.count_nonzero(mask[:n]))
        want = min(k, eligible)
        if want == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        if self.index is None:
            scores = np.asarray(self.vectors) @ query
            if len(self.tail):
                scores = np.concatenate([scores, self.tail @ query])
            if mask is not None and eligible < n:
                scores = np.asarray(scores, dtype=np.float32) + exclusion(mask[:n])
            return _best(scores, want)
        idx, val = self._approximate(query, want, mask)
        if len(idx) < want:
            positions = np.arange(n) if mask is None else np.flatnonzero(mask[:n])
            exact = self.scores(query, positions)
            order, val = _best(exact, want)
            idx = positions[order]
        return idx, val

    def _approximate(
        self, query: np.ndarray, want: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        base = len(self.vectors)
        head_mask = None if mask is None else mask[:base]
        idx, val = self.index.search(query[None, :], want, mask=head_mask)
        idx, val = np.asarray(idx[0], dtype=np.int64), np.asarray(val[0], dtype=np.float32)
        keep = idx >= 0
        if head_mask is not None:
            keep &= head_mask[np.where(keep, idx, 0)]
        idx, val = idx[keep], val[keep]
        if len(self.tail):
            tail_pos = np.arange(base, self.n_items)
            if mask is not None:
                tail_pos = tail_pos[mask[base:]]
            idx = np.concatenate([idx, tail_pos])
            val = np.concatenate([val, self.tail[tail_pos - base] @ query])
        order = np.argsort(-val, kind="stable")[:want]
        return idx[order], val[order]


def _best(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of one score vector, best first (ties in ``tie_key`` order), ``-inf`` dropped."""
    scores = np.asarray(scores, dtype=np.float32)
    order = best(scores, k)
    values = scores[order]
    keep = np.isfinite(values) | (values > 0)
    return order[keep], values[keep]


class LazyCosineSearch:
    """Cosine search over item vectors, built on first use (similar-items only).

    Normalising and indexing a large catalogue costs seconds, and many deployments never ask
    for similar items, so the engine defers it to the first request that needs it.
    """

    def __init__(self, vectors: np.ndarray, ann_threshold: int | VectorBackend) -> None:
        self._vectors = vectors
        self._ann_threshold = ann_threshold
        self._search: ItemVectorSearch | None = None
        self._lock = threading.Lock()

    def get(self) -> ItemVectorSearch:
        if self._search is None:
            with self._lock:
                if self._search is None:
                    v = np.asarray(self._vectors, dtype=np.float32)
                    norms = np.linalg.norm(v, axis=1, keepdims=True)
                    norms[norms == 0] = 1.0
                    self._search = ItemVectorSearch.build(v / norms, self._ann_threshold)
        return self._search
