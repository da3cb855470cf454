"""Top-k recommendation metrics as pure functions over arrays.

Every function takes ``recommended``, an ``(n_users, k)`` integer array of item indices, best
first, padded with ``-1`` where a list is shorter than k. Accuracy metrics also take
``relevant``: the test items of each row, either as a list of sets/iterables of item indices or
as a sparse ``(n_users, n_items)`` matrix whose nonzeros are the relevant items (the fast path).

Rows with no relevant items cannot be scored and are left out of the mean (an evaluation
protocol counts them as skipped). Definitions mirror Microsoft Recommenders'
``python_evaluation`` so numbers compare with their published tables:

* ``precision_at_k`` = hits in the top k / k (a short list still divides by k);
* ``recall_at_k`` = hits / |relevant|;
* ``ndcg_at_k`` = binary DCG / IDCG with IDCG over ``min(|relevant|, k)`` positions;
* ``map_at_k_all_relevant`` = sum over hits of precision-at-that-rank / |relevant| (their
  ``map_at_k`` up to 1.0.0, and ``map`` since);
* ``map_at_k`` = the same sum / ``min(|relevant|, k)`` (the common AP@k, reaching 1.0 for a
  perfect list even when a user has more than k relevant items).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

Relevant = sp.spmatrix | Sequence[Iterable[int]]


@dataclass(frozen=True)
class RankingHits:
    """Which recommended items are relevant, for the rows that have relevant items.

    Attributes:
        hits: ``(n, k)`` bool, true where the item at that rank is relevant.
        n_relevant: ``(n,)`` number of relevant items per row (all positive).
    """

    hits: np.ndarray
    n_relevant: np.ndarray

    @property
    def n_users(self) -> int:
        return int(self.hits.shape[0])


def relevance_matrix(relevant: Relevant, n_items: int | None = None) -> sp.csr_matrix:
    """Relevant items as a boolean CSR matrix (one row per user).

    >>> relevance_matrix([{2, 0}, set()], n_items=3).toarray().astype(int).tolist()
    [[1, 0, 1], [0, 0, 0]]
    """
    if sp.issparse(relevant):
        m = sp.csr_matrix(relevant, copy=True)
        m.data = np.ones_like(m.data, dtype=bool)
        m.sum_duplicates()
        m.eliminate_zeros()
        return m.astype(bool)
    rows: list[int] = []
    cols: list[int] = []
    for r, items in enumerate(relevant):
        uniq = sorted({int(i) for i in items})
        rows.extend([r] * len(uniq))
        cols.extend(uniq)
    width = max(n_items or 0, max(cols) + 1 if cols else 0)
    data = np.ones(len(rows), dtype=bool)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(relevant), width), dtype=bool)


def ranking_hits(recommended: np.ndarray, relevant: Relevant, k: int | None = None) -> RankingHits:
    """Mark each recommended item relevant or not, keeping rows that have relevant items.

    ``recommended`` is cut to its first ``k`` columns (all of them when ``k`` is None).

    >>> h = ranking_hits(np.array([[3, 1, -1], [0, 2, 1]]), [{1, 2}, set()])
    >>> h.hits.tolist(), h.n_relevant.tolist()
    ([[False, True, False]], [2])
    """
    rec = np.asarray(recommended, dtype=np.int64)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-D (n_users, k), got shape {rec.shape}")
    if k is not None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        rec = rec[:, :k]
    n_items = max(int(rec.max(initial=-1)) + 1, 0)
    if sp.issparse(relevant):
        n_items = max(n_items, relevant.shape[1])
    rel = relevance_matrix(relevant, n_items)
    if rel.shape[0] != rec.shape[0]:
        raise ValueError(f"recommended has {rec.shape[0]} rows but relevant has {rel.shape[0]}")
    width = max(n_items, rel.shape[1], 1)
    rel_rows = np.repeat(np.arange(rel.shape[0], dtype=np.int64), np.diff(rel.indptr))
    rel_keys = np.sort(rel_rows * width + rel.indices.astype(np.int64))
    rec_keys = np.arange(rec.shape[0], dtype=np.int64)[:, None] * width + rec
    pos = np.searchsorted(rel_keys, rec_keys)
    pos = np.minimum(pos, max(len(rel_keys) - 1, 0))
    hits = (rec >= 0) & (rel_keys[pos] == rec_keys) if len(rel_keys) else np.zeros(rec.shape, bool)
    n_rel = np.diff(rel.indptr).astype(np.int64)
    keep = n_rel > 0
    return RankingHits(hits=hits[keep], n_relevant=n_rel[keep])


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def precision_per_user(h: RankingHits, k: int) -> np.ndarray:
    """Per-row precision@k from precomputed hits."""
    return h.hits[:, :k].sum(axis=1) / float(k)


def recall_per_user(h: RankingHits, k: int) -> np.ndarray:
    """Per-row recall@k from precomputed hits."""
    return h.hits[:, :k].sum(axis=1) / h.n_relevant


def ndcg_per_user(h: RankingHits, k: int) -> np.ndarray:
    """Per-row binary NDCG@k from precomputed hits."""
    hits = h.hits[:, :k]
    disc = _discounts(k)
    dcg = (hits * disc[: hits.shape[1]]).sum(axis=1)
    ideal = np.cumsum(disc)[np.minimum(h.n_relevant, k) - 1]
    return dcg / ideal


def _precision_sum(h: RankingHits, k: int) -> np.ndarray:
    hits = h.hits[:, :k]
    ranks = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    return (np.cumsum(hits, axis=1) / ranks * hits).sum(axis=1)


def average_precision_per_user(h: RankingHits, k: int, all_relevant: bool = False) -> np.ndarray:
    """Per-row AP@k, normalised by ``min(|rel|, k)`` or, if ``all_relevant``, by ``|rel|``."""
    denom = h.n_relevant if all_relevant else np.minimum(h.n_relevant, k)
    return _precision_sum(h, k) / denom


def reciprocal_rank_per_user(h: RankingHits, k: int) -> np.ndarray:
    """Per-row 1 / rank of the first relevant item in the top k (0 when none)."""
    hits = h.hits[:, :k]
    first = np.argmax(hits, axis=1)
    found = hits.any(axis=1)
    return np.where(found, 1.0 / (first + 1.0), 0.0)


def precision_at_k(recommended: np.ndarray, relevant: Relevant, k: int) -> float:
    """Mean fraction of the top k that is relevant (short lists still divide by k).

    >>> precision_at_k(np.array([[1, 2, 3], [4, -1, -1]]), [{1, 3}, {4, 5}], k=3)
    0.5
    """
    return _mean(precision_per_user(ranking_hits(recommended, relevant, k), k))


def recall_at_k(recommended: np.ndarray, relevant: Relevant, k: int) -> float:
    """Mean fraction of each user's relevant items found in the top k.

    >>> recall_at_k(np.array([[1, 2, 3], [4, -1, -1]]), [{1, 3, 9, 8}, {4, 5}], k=3)
    0.5
    """
    return _mean(recall_per_user(ranking_hits(recommended, relevant, k), k))


def ndcg_at_k(recommended: np.ndarray, relevant: Relevant, k: int) -> float:
    """Mean binary NDCG@k; the ideal list puts ``min(|rel|, k)`` hits first.

    One user, hit at rank 2 of 2 relevant: DCG = 1/log2(3) = 0.6309,
    IDCG = 1 + 1/log2(3) = 1.6309, NDCG = 0.3869.

    >>> round(ndcg_at_k(np.array([[7, 1, 8]]), [{1, 2}], k=3), 4)
    0.3869
    """
    return _mean(ndcg_per_user(ranking_hits(recommended, relevant, k), k))


def map_at_k(recommended: np.ndarray, relevant: Relevant, k: int) -> float:
    """Mean AP@k normalised by ``min(|rel|, k)`` (1.0 for a perfect top-k list).

    Hits at ranks 1 and 3 with 5 relevant items and k=3: (1/1 + 2/3) / min(5, 3) = 0.5556.

    >>> round(map_at_k(np.array([[1, 9, 2]]), [{1, 2, 3, 4, 5}], k=3), 4)
    0.5556
    """
    return _mean(average_precision_per_user(ranking_hits(recommended, relevant, k), k))


def map_at_k_all_relevant(recommended: np.ndarray, relevant: Relevant, k: int) -> float:
    """Mean AP@k normalised by ``|rel|`` (Microsoft Recommenders' ``map_at_k`` up to 1.0.0).

    Same case as ``map_at_k``: (1/1 + 2/3) / 5 = 0.3333.

    >>> round(map_at_k_all_relevant(np.array([[1, 9, 2]]), [{1, 2, 3, 4, 5}], k=3), 4)
    0.3333
    """
    h = ranking_hits(recommended, relevant, k)
    return _mean(average_precision_per_user(h, k, all_relevant=True))


def mrr_at_k(recommended: np.ndarray, relevant: Relevant, k: int) -> float:
    """Mean reciprocal rank of the first relevant item within the top k.

    >>> mrr_at_k(np.array([[5, 1, 2], [3, 4, 6]]), [{1}, {9}], k=3)
    0.25
    """
    return _mean(reciprocal_rank_per_user(ranking_hits(recommended, relevant, k), k))


def hit_rate_at_k(recommended: np.ndarray, relevant: Relevant, k: int) -> float:
    """Fraction of users with at least one relevant item in the top k.

    >>> hit_rate_at_k(np.array([[5, 1], [3, 4]]), [{1}, {9}], k=2)
    0.5
    """
    return _mean(ranking_hits(recommended, relevant, k).hits.any(axis=1).astype(float))


def ranking_metrics(h: RankingHits, k: int) -> dict[str, float]:
    """Every accuracy metric at ``k`` from one precomputed ``RankingHits``.

    >>> m = ranking_metrics(ranking_hits(np.array([[1, 9]]), [{1, 2}]), k=2)
    >>> m["precision"], m["recall"], m["hit_rate"], m["mrr"]
    (0.5, 0.5, 1.0, 1.0)
    """
    return {
        "precision": _mean(precision_per_user(h, k)),
        "recall": _mean(recall_per_user(h, k)),
        "ndcg": _mean(ndcg_per_user(h, k)),
        "map": _mean(average_precision_per_user(h, k)),
        "map_all_relevant": _mean(average_precision_per_user(h, k, all_relevant=True)),
        "mrr": _mean(reciprocal_rank_per_user(h, k)),
        "hit_rate": _mean(h.hits[:, :k].any(axis=1).astype(float)),
    }


def catalogue_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list.

    >>> catalogue_coverage(np.array([[0, 1], [1, -1]]), n_items=4)
    0.5
    """
    if n_items <= 0:
        return 0.0
    rec = np.asarray(recommended)
    return float(np.unique(rec[rec >= 0]).size / n_items)


def intra_list_diversity(recommended: np.ndarray, item_vectors: np.ndarray | sp.spmatrix) -> float:
    """Mean over lists of 1 - the average pairwise cosine similarity of their items.

    ``item_vectors`` is ``(n_items, d)``, dense (factors) or sparse (genres one-hot, or the
    item columns of the interaction matrix for co-occurrence similarity). Lists with fewer than
    two items are left out; zero vectors have similarity 0 to everything.

    Items 0 and 1 share a genre (cosine 1), item 2 has another (cosine 0 to both):
    1 - (1 + 0 + 0) / 3 = 0.6667.

    >>> genres = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> round(intra_list_diversity(np.array([[0, 1, 2]]), genres), 4)
    0.6667
    """
    rec = np.asarray(recommended, dtype=np.int64)
    if rec.ndim != 2 or rec.shape[1] < 2:
        return 0.0
    unit = _unit_rows(item_vectors)
    valid = rec >= 0
    safe = np.where(valid, rec, 0)
    sim_sum = np.zeros(rec.shape[0])
    pair_count = np.zeros(rec.shape[0])
    for a in range(rec.shape[1]):
        for b in range(a + 1, rec.shape[1]):
            both = valid[:, a] & valid[:, b]
            if not both.any():
                continue
            sims = _row_dots(unit, safe[both, a], safe[both, b])
            sim_sum[both] += sims
            pair_count[both] += 1
    scored = pair_count > 0
    return _mean(1.0 - sim_sum[scored] / pair_count[scored])


def _unit_rows(vectors: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    if sp.issparse(vectors):
        v = sp.csr_matrix(vectors, dtype=np.float64)
        norms = np.sqrt(np.asarray(v.multiply(v).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ v)
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1)
    norms[norms == 0] = 1.0
    return v / norms[:, None]


def _row_dots(unit: np.ndarray | sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if sp.issparse(unit):
        return np.asarray(unit[a].multiply(unit[b]).sum(axis=1)).ravel()
    return np.einsum("ij,ij->i", unit[a], unit[b])


def novelty(recommended: np.ndarray, item_counts: np.ndarray) -> float:
    """Mean self-information ``-log2(count_i / sum(counts))`` of recommended items.

    ``item_counts`` are training interactions per item (Castells' item-choice model, as in
    Microsoft Recommenders); items never seen in training are left out.

    Counts (2, 1, 1): item 0 has share 1/2 (1 bit), item 1 share 1/4 (2 bits).

    >>> novelty(np.array([[0, 1], [1, -1]]), np.array([2, 1, 1]))
    1.6666666666666667
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    total = counts.sum()
    rec = np.asarray(recommended, dtype=np.int64).ravel()
    rec = rec[rec >= 0]
    rec = rec[counts[rec] > 0]
    if rec.size == 0 or total <= 0:
        return 0.0
    return float(np.mean(-np.log2(counts[rec] / total)))


def average_recommended_popularity(recommended: np.ndarray, item_popularity: np.ndarray) -> float:
    """ARP: mean over lists of the mean training popularity of the listed items.

    A high ARP means the model leans on popular items (popularity bias).

    >>> average_recommended_popularity(np.array([[0, 1], [2, -1]]), np.array([10, 2, 4]))
    5.0
    """
    pop = np.asarray(item_popularity, dtype=np.float64)
    rec = np.asarray(recommended, dtype=np.int64)
    valid = rec >= 0
    per_list = np.where(valid, pop[np.where(valid, rec, 0)], 0.0).sum(axis=1)
    sizes = valid.sum(axis=1)
    keep = sizes > 0
    return _mean(per_list[keep] / sizes[keep])


def recommended_popularity(recommended: np.ndarray, item_popularity: np.ndarray) -> np.ndarray:
    """Training popularity of every recommended item (flattened, padding dropped).

    >>> recommended_popularity(np.array([[0, 2], [1, -1]]), np.array([5, 3, 1])).tolist()
    [5.0, 1.0, 3.0]
    """
    rec = np.asarray(recommended, dtype=np.int64).ravel()
    return np.asarray(item_popularity, dtype=np.float64)[rec[rec >= 0]]


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error of rating predictions (nan when there is nothing to score).

    >>> rmse(np.array([3.0, 4.0, 5.0]), np.array([4.0, 4.0, 3.0]))  # sqrt((1 + 0 + 4) / 3)
    1.2909944487358056
    """
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return float(np.sqrt(np.mean(diff * diff))) if diff.size else float("nan")


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error of rating predictions (nan when there is nothing to score).

    >>> mae(np.array([3.0, 4.0, 5.0]), np.array([4.0, 4.0, 3.0]))  # (1 + 0 + 2) / 3
    1.0
    """
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return float(np.mean(np.abs(diff))) if diff.size else float("nan")
