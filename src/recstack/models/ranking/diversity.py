"""Maximal marginal relevance: trade a little relevance for lists that are not all alike.

``mmr_order`` re-orders each row's top candidates greedily: the next item maximises
``(1 - λ) · relevance − λ · max similarity to the items already picked``, with relevance
min-max scaled per row so λ means the same for every model. λ = 0 keeps the ranking as it is.
All rows advance together (one vectorised step per list position).
"""

from __future__ import annotations

import numpy as np


def mmr_order(relevance: np.ndarray, vectors: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Column order of the first ``k`` picks per row of ``relevance`` ``(n, m)``.

    ``vectors`` ``(n, m, d)`` are the candidates' unit vectors (cosine = dot product); ``-inf``
    relevance marks padding, picked last.

    >>> rel = np.array([[1.0, 0.9, 0.1]])
    >>> vec = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    >>> mmr_order(rel, vec, 3, 0.0).tolist(), mmr_order(rel, vec, 3, 0.7).tolist()
    ([[0, 1, 2]], [[0, 2, 1]])
    """
    n, m = relevance.shape
    k = min(k, m)
    finite = np.isfinite(relevance)
    hi = np.where(finite, relevance, -np.inf).max(axis=1, keepdims=True)
    lo = np.where(finite, relevance, np.inf).min(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    rel = np.where(finite, (relevance - lo) / span, -1e9)
    max_sim = np.zeros((n, m))
    picked = np.zeros((n, m), dtype=bool)
    order = np.empty((n, k), dtype=np.int64)
    rows = np.arange(n)
    for step in range(k):
        value = (1.0 - lam) * rel - lam * max_sim
        value[picked] = -np.inf
        choice = np.argmax(value, axis=1)
        order[:, step] = choice
        picked[rows, choice] = True
        sims = np.einsum("nmd,nd->nm", vectors, vectors[rows, choice])
        max_sim = np.maximum(max_sim, sims)
    return order
