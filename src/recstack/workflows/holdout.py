"""Scoring any registered model on one recent temporal holdout, in the holdout's id space.

A champion trained weeks ago and a challenger fitted today index users and items differently,
and only the challenger knows the newest items. Both are scored here on the same users and
relevant items: histories are translated into each model's own indices (items it never saw are
dropped from its input and can never be recommended by it: the cost of being stale), and its
lists are translated back before the metrics of ``recstack.evaluation`` score them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.errors import DataError
from recstack.evaluation import metrics as m
from recstack.evaluation.protocol import HoldoutTarget, holdout_target
from recstack.models.base import Recommender


@dataclass(frozen=True)
class TemporalHoldout:
    """Events up to ``cut`` (train) and after it (test), sharing the snapshot's id maps."""

    train: Dataset
    test: Dataset
    target: HoldoutTarget
    cut: int

    def describe(self) -> dict[str, int]:
        return {
            "cut": int(self.cut),
            "train_interactions": self.train.n_interactions,
            "test_interactions": self.test.n_interactions,
            "users_scored": int(self.target.users.size),
        }


def temporal_holdout(dataset: Dataset, after: int | None, share: float) -> TemporalHoldout:
    """Hold out the latest ``share`` of the events after time ``after`` (all events when None).

    The cut is a timestamp: events at or before it train, later ones test, so one moment never
    lands on both sides.
    """
    ts = np.asarray(dataset.timestamp)
    newer = ts[ts > after] if after is not None else ts
    if newer.size < 2:
        raise DataError(
            f"{newer.size} event(s) after the champion's training window: nothing to judge a "
            "challenger on; wait for new events"
        )
    cut = int(np.quantile(newer, 1.0 - share, method="lower"))
    if after is not None:
        cut = max(cut, int(after))
    mask = ts <= cut
    if mask.all():
        cut = int(np.unique(newer)[-2]) if np.unique(newer).size > 1 else cut
        mask = ts <= cut
    if mask.all() or not mask.any():
        raise DataError("every new event shares one timestamp: no temporal holdout is possible")
    train, test = dataset.subset(mask), dataset.subset(~mask)
    return TemporalHoldout(train, test, holdout_target(train, test), cut)


def _to_model_space(
    model: Recommender, holdout: TemporalHoldout
) -> tuple[sp.csr_matrix, np.ndarray]:
    """The scored users' histories in ``model``'s item indices, and their model user indices."""
    train = holdout.train
    users = holdout.target.users
    item_in_model = model.items.indices(train.items.ids)
    hist = train.matrix[users].tocoo()
    cols = item_in_model[hist.col]
    keep = cols >= 0
    history = sp.csr_matrix(
        (hist.data[keep], (hist.row[keep], cols[keep])),
        shape=(len(users), model.n_items),
        dtype=np.float32,
    )
    user_in_model = model.users.indices(train.users.ids[users])
    known = user_in_model >= 0
    if model.users is train.users or model.users == train.users:
        # fitted on this train split: users seen only after the cut have no learned vector
        known &= np.diff(train.matrix.indptr)[users] > 0
    # a user the model learned keeps its vector; anyone else is folded in from the history
    return history, np.where(known, user_in_model, -1).astype(np.int64)


def score_model(model: Recommender, holdout: TemporalHoldout, k: int) -> dict[str, float]:
    """Ranking metrics at ``k``, ``precision_at_1``, ``coverage``, ``arp`` and scoring
    ``latency_ms`` (per user, best of three passes) of ``model`` on ``holdout``."""
    history, user_arg = _to_model_space(model, holdout)
    latencies = []
    idx = np.empty((0, k), dtype=np.int64)
    for _ in range(3):
        start = time.perf_counter()
        idx, _ = model.recommend(history, k, users=user_arg, exclude_seen=True)
        latencies.append((time.perf_counter() - start) / max(1, history.shape[0]) * 1000.0)
    back = holdout.train.items.indices(model.items.ids)  # model index -> holdout index
    recommended = np.where(idx >= 0, back[np.clip(idx, 0, None)], -1)
    hits = m.ranking_hits(recommended, holdout.target.relevant)
    out = {key: float(v) for key, v in m.ranking_metrics(hits, k).items()}
    out["precision_at_1"] = float(m.ranking_metrics(hits, 1)["precision"])
    out["coverage"] = m.catalogue_coverage(recommended, holdout.train.n_items)
    out["arp"] = m.average_recommended_popularity(recommended, holdout.train.item_popularity)
    out["latency_ms"] = float(min(latencies))
    return {key: round(value, 6) for key, value in out.items()}
