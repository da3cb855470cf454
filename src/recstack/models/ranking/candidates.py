"""Candidates for the ranking stage: several retrievers' top lists, outer-joined per user.

Each retriever scores every item for a batch of histories; its top ``n`` unseen items per row
form its list, less the items at its floor (the row's lowest score, which a retriever gives
what it has no evidence for: ItemKNN's 0 for items unlike the history, every item for a user
it knows nothing about). Those were filler in whatever order ties fell; without them a user
no retriever knows has no candidates, and ``two_stage`` gives the popularity order.

The lists are merged by outer join on ``(row, item)``: one candidate per pair any retriever
proposed, with per-retriever features that mean the same thing whatever data the retriever was
fitted on (so a reranker trained on retrievers fitted on part of the data transfers to
retrievers refitted on all of it):

* ``rank``: position in that retriever's list, 0 best; ``n`` when absent;
* ``score``: the raw score min-max normalised within that row's list (1 best, 0 worst or
  absent) — raw scores of ALS and EASE drift with the amount of data, list-relative ones do not;
* ``present``: whether the retriever proposed the item;
* ``z`` (when asked for): the raw score standardised over all of that row's unseen items —
  known for every candidate, also where that retriever did not propose it, so a reranker sees
  each retriever's opinion of every candidate and not only of its own list.

A retriever whose scores are mostly 0 (``SparseScoring``: ItemKNN) is read as a sparse row:
its lists, floor and z-scores come from the stored entries and the count of the others, which
gives the same candidates and features without the 62K-wide passes of a dense row (and without
ordering thousands of tied zeros, the slowest rows to serve).

``candidate_recall`` says how many held-out positives the merged lists contain at all (the
ceiling of any reranker), counting those no retriever proposed instead of dropping them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache, partial

import numpy as np
import scipy.sparse as sp

from recstack.models.base import FactorRecommender, Recommender, top_k
from recstack.models.protocols import SparseScoring
from recstack.topk import tie_key

RRF_K = 60.0  # reciprocal-rank-fusion constant (Cormack et al., 2009)


@dataclass(frozen=True)
class Candidates:
    """Merged candidate lists of a batch of rows, sorted by row.

    Attributes:
        rows: ``(m,)`` row of the batch each candidate belongs to.
        items: ``(m,)`` item index.
        rank: ``(m, r)`` float32 rank per retriever (``n`` when absent).
        score: ``(m, r)`` float32 list-normalised score per retriever (0 when absent).
        present: ``(m, r)`` bool.
        n_rows: rows in the batch.
        depth: ``n``, the list length per retriever.
        z: ``(m, r)`` float32 per-row standardised score per retriever, or ``None``.
    """

    rows: np.ndarray
    items: np.ndarray
    rank: np.ndarray
    score: np.ndarray
    present: np.ndarray
    n_rows: int
    depth: int
    z: np.ndarray | None = None

    @property
    def fused(self) -> np.ndarray:
        """Reciprocal-rank fusion of the retrievers' lists (absent lists add nothing)."""
        return rrf(self.rank, self.present)

    @property
    def group_sizes(self) -> np.ndarray:
        """Candidates per row (the query groups of a learning-to-rank model)."""
        return np.bincount(self.rows, minlength=self.n_rows)


def rrf(rank: np.ndarray, present: np.ndarray, k: float = RRF_K) -> np.ndarray:
    """Reciprocal-rank fusion ``sum_r 1 / (k + rank_r + 1)`` over the lists holding the item.

    >>> present = np.array([[True, True], [True, False]])
    >>> [round(float(x), 4) for x in rrf(np.array([[0.0, 2.0], [5.0, 50.0]]), present, k=1)]
    [0.75, 0.1429]
    """
    return np.where(present, 1.0 / (k + rank + 1.0), 0.0).sum(axis=1).astype(np.float32)


def minmax_rows(values: np.ndarray) -> np.ndarray:
    """Each row scaled to [0, 1] by its finite min and max (a constant row becomes 1).

    >>> minmax_rows(np.array([[3.0, 2.0, 1.0], [5.0, 5.0, -np.inf]])).tolist()
    [[1.0, 0.5, 0.0], [1.0, 1.0, 0.0]]
    """
    finite = np.isfinite(values)
    hi = np.where(finite, values, -np.inf).max(axis=1, keepdims=True)
    lo = np.where(finite, values, np.inf).min(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    out = np.where(hi > lo, (values - lo) / span, 1.0)
    return np.where(finite, out, 0.0).astype(np.float32)


def unseen_scores(
    model: Recommender, histories: sp.csr_matrix, users: np.ndarray | None
) -> np.ndarray:
    """The model's dense scores with each row's history items set to ``-inf``."""
    scores = np.array(model.score(histories, users), dtype=np.float32)
    rows = np.repeat(np.arange(histories.shape[0]), np.diff(histories.indptr))
    scores[rows, histories.indices] = -np.inf
    return scores


def standardise_rows(scores: np.ndarray, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``scores[rows, items]`` as z-scores of their row's finite entries (0 where the row is
    constant or the entry is not finite): a scale that means the same on more or less data.

    >>> s = np.array([[1.0, 2.0, 3.0, -np.inf], [4.0, 4.0, 4.0, 4.0]], dtype=np.float32)
    >>> z = standardise_rows(s, np.array([0, 0, 1]), np.array([2, 3, 0]))
    >>> [round(float(x), 4) for x in z]  # (3 - 2) / sqrt(2 / 3); -inf; a constant row
    [1.2247, 0.0, 0.0]
    """
    n_rows, width = scores.shape
    # zeros in place of the few non-finite entries (the seen items), then plain reductions:
    # masked (``where=``) reductions, row-wise counts and ``np.where`` over the whole row take
    # numpy's slow paths, about 4x the cost of this on a served row of 62K items
    bad = np.flatnonzero(~np.isfinite(scores))
    clean = scores.astype(np.float64, order="C")
    clean.ravel()[bad] = 0.0
    n = width - np.bincount(bad // width, minlength=n_rows)
    total = clean.sum(axis=1)
    return z_scores(scores[rows, items], rows, n, total, np.einsum("ij,ij->i", clean, clean))


def z_scores(
    picked: np.ndarray, rows: np.ndarray, n: np.ndarray, total: np.ndarray, squares: np.ndarray
) -> np.ndarray:
    """``picked`` (entries of rows ``rows``) as z-scores of rows with ``n`` finite entries
    summing to ``total`` and to ``squares`` squared; 0 where not finite or the row is constant.

    >>> z = z_scores(np.array([3.0, -np.inf]), np.array([0, 0]), np.array([3]), np.array([6.0]),
    ...              np.array([14.0]))
    >>> [round(float(x), 4) for x in z]  # 1, 2, 3: mean 2, spread sqrt(2 / 3)
    [1.2247, 0.0]
    """
    n = np.maximum(n, 1)
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
    picked = np.asarray(picked, dtype=np.float64)
    ok = np.isfinite(picked) & (std[rows] > 1e-12)
    z = np.where(ok, (np.where(ok, picked, 0.0) - mean[rows]) / np.where(ok, std[rows], 1.0), 0.0)
    return z.astype(np.float32)


def retriever_lists(
    model: Recommender,
    histories: sp.csr_matrix,
    users: np.ndarray | None,
    depth: int,
    scores: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One retriever's top ``depth`` unseen items per row and their list-normalised scores
    (from ``scores`` = ``unseen_scores(...)`` when already computed); items scored at the
    row's floor are left out (index -1).

    >>> class Flat:  # a retriever that knows one item for row 0 and nothing for row 1
    ...     def score(self, h, users): return np.array([[0.0, 2.0, 0.0, 0.0], [1.0] * 4])
    >>> idx, val = retriever_lists(Flat(), sp.csr_matrix((2, 4)), None, 3)
    >>> idx.tolist(), val.tolist()
    ([[1, -1, -1], [-1, -1, -1]], [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    """
    if scores is None:
        scores = unseen_scores(model, histories, users)
    idx, val = top_k(scores, depth)
    filler = (val <= row_floor(scores, val)[:, None]) & (idx >= 0)
    idx = np.where(filler, -1, idx)
    val = np.where(filler, -np.inf, val).astype(np.float32)
    return idx, minmax_rows(val)


@dataclass(frozen=True)
class SparseRows:
    """A batch of sparse score rows without each row's seen items: the stored entries (keys
    ``row * n_items + item``, sorted) and how many unseen items each row has in all; an unseen
    item not stored scores 0."""

    keys: np.ndarray
    values: np.ndarray
    seen: np.ndarray
    n_unseen: np.ndarray
    n_items: int

    @classmethod
    def of(cls, scores: sp.csr_matrix, seen: np.ndarray) -> SparseRows:
        """``scores`` less the ``seen`` keys (``seen_keys`` of the histories)."""
        s = sp.csr_matrix(scores, dtype=np.float32)
        s.sum_duplicates()  # sorted indices: keys ascend
        n_rows, n_items = s.shape
        keys = _keys(s)
        hit = _find(seen, keys) >= 0
        n_seen = np.bincount(seen // n_items, minlength=n_rows)
        return cls(keys[~hit], s.data[~hit], seen, n_items - n_seen, n_items)

    def lists(self, depth: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``retriever_lists`` of these rows, or None when a stored score is negative (0 is
        then not the floor, and the dense rule applies)."""
        if (self.values < 0).any():
            return None
        n_rows, width = len(self.n_unseen), min(depth, self.n_items)
        rows, cols = self.keys // self.n_items, self.keys % self.n_items
        stored = np.bincount(rows, minlength=n_rows)
        least = np.full(n_rows, np.inf, dtype=np.float32)
        np.minimum.at(least, rows, self.values)
        floor = np.where(stored < self.n_unseen, np.float32(0), least)  # 0 if one is unstored
        keep = self.values > floor[rows]
        rows, cols, values = rows[keep], cols[keep], self.values[keep]
        idx = np.full((n_rows, width), -1, dtype=np.int64)
        val = np.full((n_rows, width), -np.inf, dtype=np.float32)
        bounds = np.searchsorted(rows, np.arange(n_rows + 1))
        for r in np.flatnonzero(np.diff(bounds)):
            v, c = values[bounds[r] : bounds[r + 1]], cols[bounds[r] : bounds[r + 1]]
            if len(v) > width:  # only the entries at or above the width-th value are ordered
                at_least = v >= np.partition(v, len(v) - width)[len(v) - width]
                v, c = v[at_least], c[at_least]
            order = np.lexsort((tie_key(c), -v))[:width]  # ``top_k``'s order and tie rule
            idx[r, : len(order)], val[r, : len(order)] = c[order], v[order]
        return idx, minmax_rows(val)

    def standardised(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``standardise_rows`` of these rows: moments over every unseen item, the unstored
        ones as 0."""
        n_rows = len(self.n_unseen)
        owner = self.keys // self.n_items
        values = self.values.astype(np.float64)
        total = np.bincount(owner, weights=values, minlength=n_rows)
        squares = np.bincount(owner, weights=values * values, minlength=n_rows)
        want = np.asarray(rows, dtype=np.int64) * self.n_items + np.asarray(items, dtype=np.int64)
        at = _find(self.keys, want)
        stored = values[np.maximum(at, 0)] if len(values) else np.zeros(len(want))
        picked = np.where(_find(self.seen, want) >= 0, -np.inf, np.where(at >= 0, stored, 0.0))
        return z_scores(picked, rows, self.n_unseen, total, squares)


def seen_keys(histories: sp.csr_matrix) -> np.ndarray:
    """The sorted distinct ``row * n_items + item`` of every history entry."""
    return np.unique(_keys(sp.csr_matrix(histories)))


def _keys(m: sp.csr_matrix) -> np.ndarray:
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return rows * m.shape[1] + m.indices


def _find(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of each of ``keys`` in ``sorted_keys``, -1 where absent."""
    if len(sorted_keys) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == keys, at, -1)


Opinion = tuple[tuple[np.ndarray, np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]


def opinion(
    model: Recommender,
    histories: sp.csr_matrix,
    users: np.ndarray | None,
    depth: int,
    seen: np.ndarray | None = None,
) -> Opinion:
    """One retriever's ``retriever_lists`` and a function of ``(rows, items)`` giving its
    standardised scores of those pairs; from a sparse row when the model scores sparsely."""
    seen = seen_keys(histories) if seen is None else seen
    if _scores_sparsely(type(model)):
        sparse = SparseRows.of(model.score_sparse(histories, users), seen)
        lists = sparse.lists(depth)
        if lists is not None:
            return lists, sparse.standardised
    if isinstance(model, FactorRecommender):
        return factor_opinion(model, histories, users, depth, seen)
    scores = unseen_scores(model, histories, users)
    return retriever_lists(model, histories, users, depth, scores), partial(
        standardise_rows, scores
    )


@cache
def _scores_sparsely(cls: type) -> bool:
    """Whether ``cls`` implements ``SparseScoring``, once per class: an ``isinstance`` check
    against a protocol walks its members on every call (about 10 µs, per retriever per request)."""
    return issubclass(cls, SparseScoring)


def factor_opinion(
    model: FactorRecommender,
    histories: sp.csr_matrix,
    users: np.ndarray | None,
    depth: int,
    seen: np.ndarray,
) -> Opinion:
    """``opinion`` of a factor model: the dense row for its list, but the moments of the
    z-scores from the Gram matrix less the seen items (no pass over the row for them)."""
    vectors = model.user_vectors(histories, users)
    scores = np.asarray(model.score_vectors(vectors), dtype=np.float32)
    n_rows, n_items = scores.shape
    seen_rows, seen_items = seen // n_items, seen % n_items
    seen_values = scores[seen_rows, seen_items].astype(np.float64)
    scores[seen_rows, seen_items] = -np.inf
    total, squares = model.score_moments(vectors)
    total = total - np.bincount(seen_rows, weights=seen_values, minlength=n_rows)
    squares = squares - np.bincount(seen_rows, weights=seen_values**2, minlength=n_rows)
    n = n_items - np.bincount(seen_rows, minlength=n_rows)

    def z_of(rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return z_scores(scores[rows, items], rows, n, total, squares)

    return retriever_lists(model, histories, users, depth, scores), z_of


def row_floor(scores: np.ndarray, listed: np.ndarray) -> np.ndarray:
    """Each row's least finite score where it could reach the row's ``listed`` values, else
    ``-inf``: a strided sample below every listed value settles most rows (a row of distinct
    scores) without a masked pass over all of it.

    >>> s = np.array([[5.0, 1.0, 3.0], [2.0, 2.0, -np.inf]])
    >>> row_floor(s, np.array([[5.0, 3.0], [2.0, 2.0]])).tolist()
    [-inf, 2.0]
    """
    lowest = np.min(listed, axis=1, initial=np.inf)
    sample = scores[:, :: max(1, scores.shape[1] // 64)]
    sampled = np.min(sample, axis=1, where=np.isfinite(sample), initial=np.inf)
    floor = np.full(scores.shape[0], -np.inf)
    open_rows = np.flatnonzero(~(sampled < lowest))
    if len(open_rows):
        rows = scores[open_rows]
        floor[open_rows] = np.min(rows, axis=1, where=np.isfinite(rows), initial=np.inf)
    return floor


def merge_lists(lists: Sequence[tuple[np.ndarray, np.ndarray]], n_items: int) -> Candidates:
    """Outer join of per-retriever ``(idx, normalised score)`` lists on ``(row, item)``.

    >>> a = (np.array([[3, 1]]), np.array([[1.0, 0.0]], dtype=np.float32))
    >>> b = (np.array([[1, 2]]), np.array([[1.0, 0.0]], dtype=np.float32))
    >>> c = merge_lists([a, b], n_items=5)
    >>> c.items.tolist(), c.rank.tolist(), c.present.tolist()
    ([1, 2, 3], [[1.0, 0.0], [2.0, 1.0], [0.0, 2.0]], [[True, True], [False, True], [True, False]])
    """
    n_rows, depth = lists[0][0].shape
    keys, rank_parts, score_parts, which = [], [], [], []
    for r, (idx, val) in enumerate(lists):
        ok = idx >= 0
        row_of = np.broadcast_to(np.arange(n_rows)[:, None], idx.shape)[ok]
        keys.append(row_of.astype(np.int64) * n_items + idx[ok])
        rank_parts.append(np.broadcast_to(np.arange(idx.shape[1]), idx.shape)[ok])
        score_parts.append(val[ok])
        which.append(np.full(int(ok.sum()), r))
    all_keys = np.concatenate(keys)
    unique, inverse = np.unique(all_keys, return_inverse=True)
    m, n_lists = len(unique), len(lists)
    rank = np.full((m, n_lists), float(depth), dtype=np.float32)
    score = np.zeros((m, n_lists), dtype=np.float32)
    present = np.zeros((m, n_lists), dtype=bool)
    col = np.concatenate(which)
    rank[inverse, col] = np.concatenate(rank_parts)
    score[inverse, col] = np.concatenate(score_parts)
    present[inverse, col] = True
    return Candidates(
        rows=(unique // n_items).astype(np.int64),
        items=(unique % n_items).astype(np.int64),
        rank=rank,
        score=score,
        present=present,
        n_rows=n_rows,
        depth=depth,
    )


def generate(
    retrievers: Sequence[Recommender],
    histories: sp.csr_matrix,
    users: np.ndarray | None,
    depth: int,
    *,
    standardised: bool = False,
    extra: np.ndarray | None = None,
) -> Candidates:
    """Merged top-``depth`` lists of every retriever for each history row, with each
    retriever's standardised score of every candidate when ``standardised``.

    ``extra`` (``(n_rows, e)`` item indices, -1 padded) asks for exactly those items: the
    result then holds only them, with the retrievers' features where they proposed them."""
    n_items = retrievers[0].n_items
    seen = seen_keys(histories)
    opinions = [opinion(model, histories, users, depth, seen) for model in retrievers]
    lists = [lists for lists, _ in opinions]
    if extra is not None:
        ask = (np.asarray(extra, dtype=np.int64), np.zeros(np.shape(extra), np.float32))
        merged = merge_lists([*lists, ask], n_items)
        keep = merged.present[:, -1]
        cands = Candidates(
            rows=merged.rows[keep],
            items=merged.items[keep],
            rank=merged.rank[keep, :-1],
            score=merged.score[keep, :-1],
            present=merged.present[keep, :-1],
            n_rows=merged.n_rows,
            depth=depth,
        )
    else:
        cands = merge_lists(lists, n_items)
    if not standardised:
        return cands
    z = np.column_stack([z_of(cands.rows, cands.items) for _, z_of in opinions]).reshape(
        len(cands.rows), len(opinions)
    )
    return replace(cands, z=z)


def candidate_top(
    cands: Candidates,
    pred: np.ndarray,
    k: int,
    *,
    exclude: Sequence[sp.csr_matrix] = (),
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Each row's ``k`` best candidates by ``pred`` in ``top_k``'s order (ties by
    ``tie_key``), leaving out the items of every matrix in ``exclude`` and those ``mask`` (1-D
    or per row) leaves out; None when a row has fewer than ``k`` left.

    >>> c = merge_lists([(np.array([[2, 0, 1]]), np.zeros((1, 3), np.float32))], n_items=4)
    >>> candidate_top(c, np.array([0.5, 0.9, 0.1], np.float32), 2)[0].tolist()
    [[1, 0]]
    >>> candidate_top(c, np.array([0.5, 0.9, 0.1], np.float32), 2,
    ...     mask=np.array([True, False, True, True]))[0].tolist()
    [[0, 2]]
    >>> candidate_top(c, np.zeros(3, np.float32), 3, exclude=[sp.csr_matrix([[0, 1, 0, 0]])])
    """
    rows, items = cands.rows, cands.items
    ok = np.ones(len(items), dtype=bool)
    for matrix in exclude:
        ok &= _find(seen_keys(matrix), rows * matrix.shape[1] + items) < 0
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        ok &= m[items] if m.ndim == 1 else m[rows, items]
    rows, items, values = rows[ok], items[ok], np.asarray(pred)[ok]
    counts = np.bincount(rows, minlength=cands.n_rows)
    if len(counts) and counts.min() < k:
        return None
    order = np.lexsort((tie_key(items), -values, rows))
    starts = np.cumsum(counts) - counts
    pick = order[(starts[:, None] + np.arange(k)).ravel()]
    shape = (cands.n_rows, k)
    return items[pick].reshape(shape), values[pick].reshape(shape).astype(np.float32)


def candidate_labels(cands: Candidates, truth: sp.csr_matrix) -> np.ndarray:
    """1 where a candidate is a positive of its row in ``truth`` (rows aligned), else 0."""
    truth = sp.csr_matrix(truth)
    hit = np.asarray(truth[cands.rows, cands.items]).ravel() > 0
    return hit.astype(np.float32)


@dataclass(frozen=True)
class CandidateRecall:
    """How many held-out positives the candidates contain."""

    positives: int
    found: int
    missed: int
    per_retriever: dict[str, int]

    @property
    def recall(self) -> float:
        return self.found / self.positives if self.positives else 0.0


def candidate_recall(
    cands: Candidates, truth: sp.csr_matrix, names: Sequence[str]
) -> CandidateRecall:
    """Positives of ``truth`` (rows aligned with the candidates) found among the candidates,
    overall and per retriever; positives no retriever proposed are counted as ``missed``.

    >>> a = (np.array([[0, 1]]), np.ones((1, 2), np.float32))
    >>> c = merge_lists([a], n_items=4)
    >>> r = candidate_recall(c, sp.csr_matrix(np.array([[0, 1, 1, 0]])), ["x"])
    >>> (r.positives, r.found, r.missed, r.per_retriever)
    (2, 1, 1, {'x': 1})
    """
    truth = sp.csr_matrix(truth)
    labels = candidate_labels(cands, truth) > 0
    positives = int(truth.nnz)
    found = int(labels.sum())
    per = {name: int((labels & cands.present[:, r]).sum()) for r, name in enumerate(names)}
    return CandidateRecall(positives, found, positives - found, per)
