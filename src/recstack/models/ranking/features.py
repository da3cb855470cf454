"""Features of (user, candidate item) pairs for the reranker, computed over whole arrays.

``ItemSpace.fit(dataset)`` learns what is fixed at training time: item popularity (as a
percentile, so it means the same on 80% and on 100% of the data), time-decayed recent
popularity, mean weight (the rating under rating weighting) and count, age, attribute tokens
(genres, topic, level: every string or list attribute as ``key=value`` tokens) and numeric
attributes (difficulty, duration, year), each single-valued string attribute and each pair of
them (``paired_codes``) as a code with the item's share of its value's events, item-item
co-occurrence neighbours, and per training user their recency and last items.

``pair_features`` then builds one row per candidate from the *history passed in* — the live
row in serving — so an event posted a moment ago changes activity, rating mean and spread,
taste (token profile, numeric level, share of the history per topic or level), co-occurrence
with the history and mainstreamness on the next request. Nothing loops over candidates in
Python: per-pair values are gathered from sparse products restricted to the candidate pairs.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.models.ranking.attributes import attribute_codes, attribute_columns, paired_codes
from recstack.models.ranking.candidates import Candidates
from recstack.models.similarity import cosine_topk

DAY = 86_400.0
NEIGHBOURS = 50  # co-occurrence neighbours kept per item
LAST_ITEMS = 3
CONTEXT_BUCKETS = 1024
SHARE_PRIOR = 1.0  # pseudo-items smoothing a history's share of an attribute value


def percentile_rank(values: np.ndarray) -> np.ndarray:
    """Share of values strictly below each value (ties share the lower rank), in [0, 1).

    >>> percentile_rank(np.array([5.0, 1.0, 5.0, 3.0])).tolist()
    [0.5, 0.0, 0.5, 0.25]
    """
    ordered = np.sort(values)
    return (np.searchsorted(ordered, values, side="left") / max(len(values), 1)).astype(np.float32)


def decayed_counts(
    items: np.ndarray, timestamps: np.ndarray, n_items: int, half_life_days: float
) -> np.ndarray:
    """Events per item weighted ``0.5 ** (age / half_life)`` with age measured from the
    latest event.

    >>> decayed_counts(np.array([0, 0, 1]), np.array([0, 86400, 86400]), 2, 1.0).tolist()
    [1.5, 1.0]
    """
    if len(items) == 0:
        return np.zeros(n_items, dtype=np.float32)
    age = (timestamps.max() - timestamps) / DAY
    w = np.power(0.5, age / half_life_days)
    return np.bincount(items, weights=w, minlength=n_items).astype(np.float32)


def cooccurrence_neighbours(matrix: sp.csr_matrix, keep: int = NEIGHBOURS) -> sp.csr_matrix:
    """Cosine similarity of item columns of the binarised matrix, zero diagonal, top ``keep``
    (computed a block of items at a time: the full co-occurrence of a large catalogue would
    not fit in memory)."""
    binary = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    return cosine_topk(binary, keep)


@dataclass
class ItemSpace:
    """Training-time feature state: arrays only, so it saves as ``.npy`` and memory-maps."""

    item_dense: np.ndarray  # (n_items, 5): pop pct, recent pct, log count, mean weight, log age
    numeric: np.ndarray  # (n_items, n_numeric) numeric attributes, NaN when absent
    tokens: sp.csr_matrix  # (n_items, n_tokens) L2-normalised attribute tokens
    neighbours: sp.csr_matrix  # (n_items, n_items) pruned co-occurrence cosine
    user_recency: np.ndarray  # (n_users,) days from the user's last event to the data's end
    user_last: np.ndarray  # (n_users, LAST_ITEMS) last items by time, -1 padded
    activity_median: np.ndarray  # (1,) median training-history length
    key_codes: np.ndarray  # (n_items, n_keys) single-valued string attributes as codes, -1 absent
    key_popularity: np.ndarray  # (n_items, n_keys) the item's share of its value's events

    @classmethod
    def fit(cls, dataset: Dataset, half_life_days: float = 30.0) -> ItemSpace:
        n_items = dataset.n_items
        matrix = dataset.matrix
        pop = dataset.item_popularity.astype(np.float32)
        recent = decayed_counts(dataset.item_idx, dataset.timestamp, n_items, half_life_days)
        count = np.bincount(dataset.item_idx, minlength=n_items).astype(np.float32)
        wsum = np.bincount(dataset.item_idx, weights=dataset.weight, minlength=n_items)
        mean_w = np.where(count > 0, wsum / np.maximum(count, 1), np.nan).astype(np.float32)
        end = float(dataset.timestamp.max()) if dataset.n_interactions else 0.0
        first = np.full(n_items, end)
        np.minimum.at(first, dataset.item_idx, dataset.timestamp.astype(np.float64))
        age = np.log1p((end - first) / DAY).astype(np.float32)
        dense = np.column_stack(
            [percentile_rank(pop), percentile_rank(recent), np.log1p(count), mean_w, age]
        ).astype(np.float32)
        tokens, _, numeric, _ = attribute_columns(dataset)
        codes = paired_codes(attribute_codes(dataset)[0])
        last_ts = np.full(dataset.n_users, -np.inf)
        np.maximum.at(last_ts, dataset.user_idx, dataset.timestamp.astype(np.float64))
        last_ts = np.where(np.isfinite(last_ts), last_ts, end)
        # interactions are sorted by (user, time): a user's last entries are their last items
        counts = np.bincount(dataset.user_idx, minlength=dataset.n_users)
        ends = np.cumsum(counts)
        user_last = np.full((dataset.n_users, LAST_ITEMS), -1, dtype=np.int64)
        for j in range(LAST_ITEMS):
            pos = ends - 1 - j
            ok = counts > j
            user_last[ok, j] = dataset.item_idx[pos[ok]]
        activity = np.diff(matrix.indptr)
        return cls(
            item_dense=dense,
            numeric=numeric,
            tokens=tokens,
            neighbours=cooccurrence_neighbours(matrix),
            user_recency=((end - last_ts) / DAY).astype(np.float32),
            user_last=user_last,
            activity_median=np.array(
                [max(float(np.median(activity[activity > 0])) if activity.any() else 1.0, 1.0)],
                dtype=np.float32,
            ),
            key_codes=codes,
            key_popularity=value_popularity(codes, count),
        )

    def state(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        return {f"space_{k}": getattr(self, k) for k in self.__dataclass_fields__}

    def dense_tokens(self) -> np.ndarray:
        """The token matrix as a dense array (small: items x at most ``MAX_TOKENS``), kept."""
        dense = self.__dict__.get("_dense_tokens")
        if dense is None:
            dense = sp.csr_matrix(self.tokens).toarray().astype(np.float64)
            self.__dict__["_dense_tokens"] = dense
        return dense

    def key_widths(self) -> np.ndarray:
        """``code_widths`` of the attribute keys, kept (a served request would read every item)."""
        widths = self.__dict__.get("_key_widths")
        if widths is None:
            widths = code_widths(np.asarray(self.key_codes))
            self.__dict__["_key_widths"] = widths
        return widths

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ItemSpace:
        fields = cls.__dataclass_fields__
        given = {k: state[f"space_{k}"] for k in fields if f"space_{k}" in state}
        n_items = np.asarray(state["space_item_dense"]).shape[0]
        # saved before attribute keys were features: a booster that reads none
        given.setdefault("key_codes", np.zeros((n_items, 0), dtype=np.int32))
        given.setdefault("key_popularity", np.zeros((n_items, 0), dtype=np.float32))
        return cls(**given)


def feature_names(
    retrievers: Sequence[str],
    n_numeric: int,
    context_keys: Sequence[str],
    standardised: bool = False,
    n_keys: int = 0,
) -> list[str]:
    """Column names of ``pair_features`` in order (``{r}_z`` when the candidates carry
    standardised scores)."""
    names = []
    for r in retrievers:
        names += [f"{r}_rank", f"{r}_score", f"{r}_present"]
    names += ["rrf", "n_retrievers"]
    if standardised:
        names += [f"{r}_z" for r in retrievers]
    names += ["item_popularity", "item_recent", "item_log_count", "item_mean_weight", "item_age"]
    names += [f"item_attr{j}" for j in range(n_numeric)]
    names += ["user_activity", "user_mean_weight", "user_weight_spread", "user_mainstream"]
    names += ["user_recency"]
    names += [f"user_attr{j}" for j in range(n_numeric)]
    names += ["affinity", "cooc_sum", "cooc_max", "last_item_sim"]
    names += [f"attr{j}_gap" for j in range(n_numeric)]
    names += [f"key{j}_history_share" for j in range(n_keys)]
    names += [f"key{j}_item_share" for j in range(n_keys)]
    names += ["hour", "weekday"] + [f"ctx_{k}" for k in context_keys]
    return names


def context_codes(context: Mapping[str, Any] | None, keys: Sequence[str]) -> list[float]:
    """A stable integer bucket per context key (NaN when the request does not carry it).

    >>> context_codes({"device": "ios"}, ["device", "page"])[1] != context_codes({}, ["page"])[0]
    True
    >>> context_codes({"device": "ios"}, ["device"]) == context_codes({"device": "ios"}, ["device"])
    True
    """
    ctx = context or {}
    return [
        float(zlib.crc32(str(ctx[k]).encode()) % CONTEXT_BUCKETS) if k in ctx else np.nan
        for k in keys
    ]


def _csr(m: Any) -> sp.csr_matrix:
    """``m`` as CSR, without the copy and checks of the constructor when it already is."""
    return m if isinstance(m, sp.csr_matrix) else sp.csr_matrix(m)


def _row_of(h: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))


def _row_stats(h: sp.csr_matrix, row_of: np.ndarray) -> tuple[np.ndarray, ...]:
    n = np.diff(h.indptr).astype(np.float64)
    data = np.asarray(h.data, dtype=np.float64)
    s = np.bincount(row_of, weights=data, minlength=h.shape[0])
    sq = np.bincount(row_of, weights=data * data, minlength=h.shape[0])
    mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    var = np.where(n > 0, sq / np.maximum(n, 1) - mean**2, np.nan)
    return n, mean, np.sqrt(np.maximum(var, 0.0))


def neighbour_overlap(
    neighbours: sp.csr_matrix,
    items: np.ndarray,
    rows: np.ndarray,
    member_sets: Sequence[np.ndarray],
    width: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per candidate ``(rows[c], items[c])`` and per set of ``member_sets``: sum and max of
    ``neighbours[item, j]`` over the items ``j`` of its row's set (each set's keys sorted
    ``row * width + j``). The candidates' neighbour runs are gathered once for every set.

    >>> n = sp.csr_matrix(np.array([[0.0, 0.5, 0.2], [0.5, 0.0, 0.0], [0.2, 0.0, 0.0]]))
    >>> [(s, m)] = neighbour_overlap(n, np.array([0, 1]), np.array([0, 0]), [np.array([1, 2])], 3)
    >>> [round(float(x), 2) for x in s], [round(float(x), 2) for x in m]
    ([0.7, 0.0], [0.5, 0.0])
    """
    m = len(items)
    starts = neighbours.indptr[items]
    counts = neighbours.indptr[items + 1] - starts
    total = int(counts.sum())
    cand = np.repeat(np.arange(m), counts)
    # each candidate's run of neighbours: its start, less where its run begins in the output
    pos = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
    columns = neighbours.indices[pos]
    data = neighbours.data[pos]
    one_row = not rows.any()
    out = []
    for member_keys in member_sets:
        if total == 0 or len(member_keys) == 0:
            out.append((np.zeros(m, np.float32), np.zeros(m, np.float32)))
            continue
        if one_row and member_keys[-1] < width:  # one row (a served request): a mask
            members = np.zeros(width, dtype=bool)
            members[member_keys] = True
            hit = members[columns]
        else:
            keys = rows[cand].astype(np.int64) * width + columns
            at = np.minimum(np.searchsorted(member_keys, keys), len(member_keys) - 1)
            hit = member_keys[at] == keys
        out.append(_sum_and_peak(cand[hit], data[hit], m))
    return out


def _sum_and_peak(owners: np.ndarray, values: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate (``owners`` sorted, as neighbour runs are laid out): sum and max."""
    values = np.asarray(values, dtype=np.float32)
    sums = np.bincount(owners, weights=values, minlength=m).astype(np.float32)
    peaks = np.zeros(m, dtype=np.float32)
    if len(owners):
        first = np.concatenate([[0], np.flatnonzero(owners[1:] != owners[:-1]) + 1])
        peaks[owners[first]] = np.maximum.reduceat(values, first)
    return sums, peaks


def code_widths(codes: np.ndarray) -> np.ndarray:
    """Each attribute key's number of codes (largest code + 1; 0 for a key no item has).

    >>> code_widths(np.array([[0, -1], [2, -1]])).tolist()
    [3, 0]
    """
    return (codes.max(axis=0, initial=-1) + 1).astype(np.int64)


def value_shares(
    codes: np.ndarray,
    hist: np.ndarray,
    row_of: np.ndarray,
    activity: np.ndarray,
    rows: np.ndarray,
    items: np.ndarray,
    widths: np.ndarray | None = None,
    prior: float = SHARE_PRIOR,
) -> np.ndarray:
    """Per candidate and attribute key: the share of its row's history whose value of the key
    is the candidate's (NaN when the candidate has no value), smoothed by ``prior`` pseudo-items
    spread evenly over the key's values: ``(same + prior / values) / (history + prior)``.

    The smoothing tells one item in a topic out of one (0.5 below) from ten out of ten (0.95),
    and an empty history gets the even share, not 0. On the synthetic data it gave 1.105x the
    best retriever on seed 42 against 1.098x unsmoothed (1.162 / 1.134 against 1.165 / 1.135 on
    seeds 43 / 44; 3 pseudo-items: 1.088).

    >>> codes = np.array([[0], [1], [0], [-1]])  # items 0 and 2 share a value, 3 has none
    >>> args = (codes, np.array([0, 1, 0]), np.array([0, 0, 1]), np.array([2.0, 1.0]),
    ...         np.array([0, 0, 1, 1]), np.array([2, 3, 2, 1]))
    >>> value_shares(*args, prior=0.0)[:, 0].round(2).tolist()
    [0.5, nan, 1.0, 0.0]
    >>> value_shares(*args)[:, 0].round(2).tolist()  # (1 + 1/2) / (2 + 1), ..., (0 + 1/2) / 2
    [0.5, nan, 0.75, 0.25]

    ``widths`` (each key's largest code + 1) may be passed in: finding it reads every item.
    """
    if widths is None:
        widths = code_widths(codes)
    out = np.zeros((len(items), codes.shape[1]), dtype=np.float32)
    denom = np.asarray(activity, dtype=np.float64)[rows] + prior
    denom = np.where(denom > 0, denom, 1.0)
    one_row = len(activity) == 1  # a served request: a count per value, no keys to sort
    for j in range(codes.shape[1]):
        col = codes[:, j]
        held = col[hist]
        mine = col[items]
        width = int(widths[j])
        if one_row:
            counts = np.bincount(held[held >= 0], minlength=width)
            same = counts[np.maximum(mine, 0)] if len(counts) else np.zeros(len(items))
        else:
            ok = held >= 0
            keys, counts = np.unique(
                row_of[ok].astype(np.int64) * width + held[ok], return_counts=True
            )
            wanted = rows.astype(np.int64) * width + mine
            same = np.zeros(len(items))
            if len(keys):
                at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
                same = np.where(keys[at] == wanted, counts[at], 0)
        even = prior / max(width, 1)
        out[:, j] = np.where(mine >= 0, (same + even) / denom, np.nan)
    return out


def value_popularity(codes: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per item and attribute key: the item's share of the events of every item with its value
    (how popular it is within its topic or level; NaN when it has no value).

    >>> value_popularity(np.array([[0], [0], [1], [-1]]), np.array([3.0, 1.0, 2.0, 5.0]))[:, 0]
    array([0.75, 0.25, 1.  ,  nan], dtype=float32)
    """
    out = np.full(codes.shape, np.nan, dtype=np.float32)
    for j in range(codes.shape[1]):
        col = codes[:, j]
        ok = col >= 0
        totals = np.bincount(col[ok], weights=count[ok])
        out[ok, j] = count[ok] / np.maximum(totals[col[ok]], 1.0)
    return out


def pair_features(
    space: ItemSpace,
    cands: Candidates,
    histories: sp.csr_matrix,
    users: np.ndarray | None,
    *,
    hour: float = np.nan,
    weekday: float = np.nan,
    context: Sequence[float] = (),
) -> np.ndarray:
    """``(n_candidates, n_features)`` float32 in ``feature_names`` order."""
    rows, items = cands.rows, cands.items
    n_rows = histories.shape[0]
    h = _csr(histories)
    row_of = _row_of(h)
    hist = np.asarray(h.indices, dtype=np.int64)
    activity, mean_w, spread = _row_stats(h, row_of)
    denom = np.maximum(activity, 1.0)
    pop_hist = np.asarray(space.item_dense[hist, 0], dtype=np.float64)
    pop_sum = np.bincount(row_of, weights=pop_hist, minlength=n_rows)
    mainstream = np.where(activity > 0, pop_sum / denom, np.nan)
    raw_numeric = np.asarray(space.numeric)
    n_numeric = raw_numeric.shape[1]
    user_num = np.full((n_rows, n_numeric), np.nan)
    for j in range(n_numeric):
        col = raw_numeric[hist, j]
        ok = np.isfinite(col)
        count = np.bincount(row_of[ok], minlength=n_rows)
        total = np.bincount(row_of[ok], weights=col[ok], minlength=n_rows)
        user_num[:, j] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    tokens = space.dense_tokens()
    profile = np.zeros((n_rows, tokens.shape[1]), dtype=np.float64)
    filled = np.diff(h.indptr) > 0
    if filled.any():  # rows' runs of history are contiguous: one reduceat sums each run
        profile[filled] = np.add.reduceat(tokens[hist], h.indptr[:-1][filled], axis=0)
    pnorm = np.linalg.norm(profile, axis=1, keepdims=True)
    profile /= np.where(pnorm > 0, pnorm, 1.0)
    affinity = np.einsum("ij,ij->i", tokens[items], profile[rows])
    width = int(space.neighbours.shape[1])
    neighbours = _csr(space.neighbours)
    history_keys = np.sort(row_of.astype(np.int64) * width + hist)
    known = (
        np.zeros(n_rows, dtype=bool)
        if users is None
        else (np.asarray(users) >= 0) & (np.asarray(users) < len(space.user_recency))
    )
    uidx = np.where(known, users if users is not None else 0, 0)
    recency = np.where(known, np.asarray(space.user_recency)[uidx], np.nan).astype(np.float32)
    last = np.asarray(space.user_last)[uidx]
    last = np.where(known[:, None], last, -1)
    lr, lc = np.nonzero(last >= 0)
    last_keys = np.unique(lr.astype(np.int64) * width + last[lr, lc])
    (cooc_sum, cooc_max), (_, last_sim) = neighbour_overlap(
        neighbours, items, rows, [history_keys, last_keys], width
    )
    user_block = np.column_stack(
        [np.log(np.maximum(activity, 1.0) / float(space.activity_median[0])), mean_w, spread]
    )[rows]
    item_num = raw_numeric[items]
    n_cands = len(rows)
    ctx = np.asarray([hour, weekday, *context], dtype=np.float32)
    ctx = np.broadcast_to(ctx, (n_cands, len(ctx)))
    z = np.empty((n_cands, 0), np.float32) if cands.z is None else cands.z
    return np.column_stack(
        [
            np.stack([cands.rank, cands.score, cands.present.astype(np.float32)], axis=2).reshape(
                n_cands, 3 * cands.rank.shape[1]
            ),
            cands.fused,
            cands.present.sum(axis=1),
            z,
            np.asarray(space.item_dense)[items],
            item_num,
            user_block,
            mainstream[rows],
            recency[rows],
            user_num[rows],
            affinity,
            cooc_sum / denom[rows],
            cooc_max,
            last_sim,
            item_num - user_num[rows],
            value_shares(
                np.asarray(space.key_codes), hist, row_of, activity, rows, items, space.key_widths()
            ),
            np.asarray(space.key_popularity)[items],
            ctx,
        ]
    ).astype(np.float32)
