"""How the reranker is trained so that what it learns still holds at serving time.

The trap: a reranker trained on candidates from retrievers fitted on *less* data than the
retrievers it later reranks for sees other score scales, other rank distributions and other
user activity at serving time, and loses to its own best retriever (a first sketch here lost
5-7% NDCG@10 to ALS on ML-100K). What this protocol does about it:

1. **Out-of-fold lists.** Each fold holds out a share of every user's training interactions
   (random per user, like the evaluation split, each user's latest share, or — ``global`` —
   everything after one time cut, like a global temporal evaluation split), refits every
   retriever on the rest, and labels the retrievers' merged candidates with the held-out
   items. Several folds (different seeds) give the ranker more lists, not a different task.
2. **Transferable features only.** Ranks and list-normalised scores instead of raw scores;
   popularity and recency as percentiles; user activity relative to the median activity of
   the data the features were fitted on — all computed by the same code in training and in
   serving, from the data the retrievers saw.
3. **Refit for serving.** After training, retrievers and feature state are refitted on all
   training data; only the booster is carried over.

Lists without any positive carry no lambdarank gradient and are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recstack.data.dataset import Dataset
from recstack.data.splits import temporal_split
from recstack.models.base import Recommender
from recstack.models.ranking.candidates import (
    CandidateRecall,
    Candidates,
    candidate_labels,
    candidate_recall,
    generate,
)
from recstack.models.ranking.features import DAY, ItemSpace, pair_features

BATCH_CELLS = 1 << 24  # dense scores per retriever per batch of training users (64 MiB)


def temporal_holdout(dataset: Dataset, share: float) -> tuple[Dataset, Dataset]:
    """Each user's latest ``share`` of interactions (at least one, if they have two) to test.

    >>> from recstack.data.idmap import IdMap
    >>> ds = Dataset.from_arrays(IdMap(["a"]), IdMap(list("wxyz")), [0] * 4, [0, 1, 2, 3],
    ...     [1.0] * 4, [4, 3, 2, 1])
    >>> train, test = temporal_holdout(ds, 0.25)
    >>> test.item_idx.tolist(), sorted(train.item_idx.tolist())
    ([0], [1, 2, 3])
    """
    counts = np.bincount(dataset.user_idx, minlength=dataset.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(dataset.n_interactions) - starts[dataset.user_idx]
    n_test = np.where(counts > 1, np.maximum(1, np.floor(counts * share)), 0)
    test = position >= counts[dataset.user_idx] - n_test[dataset.user_idx]
    return dataset.subset(~test), dataset.subset(test)


def random_holdout(dataset: Dataset, share: float, seed: int) -> tuple[Dataset, Dataset]:
    """Per-user random ``share`` to test (the stratified split of the evaluation protocol)."""
    from recstack.data.splits import stratified_split

    return stratified_split(dataset, ratio=1.0 - share, seed=seed)


@dataclass
class TrainingLists:
    """Feature rows, labels and query groups gathered over the folds."""

    features: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    groups: list[np.ndarray] = field(default_factory=list)
    users: list[np.ndarray] = field(default_factory=list)
    recall: list[CandidateRecall] = field(default_factory=list)

    def add(
        self,
        cands: Candidates,
        labels: np.ndarray,
        features: np.ndarray,
        users: np.ndarray | None = None,
    ) -> None:
        """One fold's lists; ``users`` (the user of each row of the batch) labels each group."""
        positive_rows = np.bincount(cands.rows, weights=labels, minlength=cands.n_rows) > 0
        keep = positive_rows[cands.rows]
        sizes = cands.group_sizes[positive_rows]
        self.features.append(features[keep])
        self.labels.append(labels[keep])
        self.groups.append(sizes[sizes > 0])
        owners = np.arange(cands.n_rows) if users is None else np.asarray(users)
        self.users.append(owners[positive_rows][sizes > 0])

    def stacked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.concatenate(self.features),
            np.concatenate(self.labels),
            np.concatenate(self.groups),
        )

    def group_users(self) -> np.ndarray:
        """The user of each group of ``stacked()`` (a user has one group per fold)."""
        return np.concatenate(self.users) if self.users else np.empty(0, np.int64)

    def summary(self, names: Sequence[str]) -> dict[str, Any]:
        """Candidate recall over the folds: found / positives, misses, per retriever."""
        positives = sum(r.positives for r in self.recall)
        found = sum(r.found for r in self.recall)
        per = {n: sum(r.per_retriever[n] for r in self.recall) for n in names}
        return {
            "positives": positives,
            "found": found,
            "missed": positives - found,
            "recall": round(found / positives, 4) if positives else 0.0,
            "per_retriever": per,
        }


def fold_lists(
    train: Dataset,
    make_retrievers: Callable[[], list[Recommender]],
    names: Sequence[str],
    *,
    depth: int,
    share: float,
    folds: int,
    split: str,
    seed: int,
    half_life_days: float,
    context_features: bool,
    n_context: int,
    standardised: bool = False,
    max_users: int = 0,
    advance: Callable[[], None] = lambda: None,
) -> TrainingLists:
    """Out-of-fold candidate lists with labels, one fold per seed (of at most ``max_users``
    sampled users per fold when ``max_users`` > 0)."""
    out = TrainingLists()
    for fold in range(folds):
        if split == "temporal":
            inner, held = temporal_holdout(train, share)
        elif split == "global":
            inner, held = temporal_split(train, 1.0 - share)
        else:
            inner, held = random_holdout(train, share, seed + fold)
        retrievers = [model.fit(inner) for model in make_retrievers()]
        space = ItemSpace.fit(inner, half_life_days)
        truth = held.matrix
        has_truth = np.diff(truth.indptr) > 0
        has_history = np.diff(inner.matrix.indptr) > 0
        users = sample_users(np.flatnonzero(has_truth & has_history), max_users, seed + fold)
        first = _first_times(held) if context_features else None
        for batch in user_batches(users, train.n_items):
            h = inner.matrix[batch]
            cands = generate(retrievers, h, batch, depth, standardised=standardised)
            labels = candidate_labels(cands, truth[batch])
            out.recall.append(candidate_recall(cands, truth[batch], names))
            features = pair_features(
                space, cands, h, batch, hour=np.nan, weekday=np.nan, context=[np.nan] * n_context
            )
            if first is not None:  # the request time of a list: its first held-out event
                at = first[batch][cands.rows]
                base = features.shape[1] - 2 - n_context
                features[:, base] = (at % DAY) // 3600
                features[:, base + 1] = ((at // DAY) + 3) % 7  # 1970-01-01 was a Thursday
            out.add(cands, labels, features, batch)
        advance()
        if split in ("temporal", "global"):
            break  # one time-based fold: later folds would repeat it
    return out


def user_batches(users: np.ndarray, n_items: int, cells: int = BATCH_CELLS) -> list[np.ndarray]:
    """``users`` in consecutive batches whose dense ``(batch, n_items)`` score rows hold about
    ``cells`` values: every retriever scores a batch densely, so memory stays bounded.

    >>> [b.tolist() for b in user_batches(np.arange(5), 10, cells=20)]
    [[0, 1], [2, 3], [4]]
    """
    size = max(1, cells // max(1, n_items))
    return [users[i : i + size] for i in range(0, len(users), size)]


def sample_users(users: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """A sorted random sample of ``limit`` of ``users`` (all of them when ``limit`` is 0 or
    not smaller).

    >>> sample_users(np.arange(10), 0, 0).tolist() == list(range(10))
    True
    >>> picked = sample_users(np.arange(10), 3, 0)
    >>> len(picked), bool(np.all(np.diff(picked) > 0)), set(picked) <= set(range(10))
    (3, True, True)
    """
    if limit <= 0 or len(users) <= limit:
        return users
    return np.sort(np.random.default_rng(seed).choice(users, limit, replace=False))


def _first_times(held: Dataset) -> np.ndarray:
    first = np.full(held.n_users, np.inf)
    np.minimum.at(first, held.user_idx, held.timestamp.astype(np.float64))
    return np.where(np.isfinite(first), first, 0.0)


def retriever_params(
    names: Sequence[str], given: Mapping[str, Mapping[str, Any]], defaults: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each retriever's params: the given ones, with ``random_state`` set from the seed when
    the retriever has one and none is given (so a two-stage fit is repeatable)."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        params = dict(given.get(name, {}))
        if "random_state" in defaults.get(name, {}) and params.get("random_state") is None:
            params["random_state"] = 0
        out[name] = params
    return out
