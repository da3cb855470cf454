"""Most-popular baseline: every user gets the items the most distinct users interacted with."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recstack.data.dataset import Dataset
from recstack.models.base import Recommender
from recstack.models.config import ModelConfig
from recstack.models.similarity import cosine_topk

SECONDS_PER_DAY = 86_400.0


def decayed_popularity(dataset: Dataset, half_life_days: float | None) -> np.ndarray:
    """Distinct users per item, each counted with weight ``0.5 ** (age / half_life)``.

    A user's age for an item is measured from their latest interaction with it to the latest
    timestamp in the data, so recent interest counts fully and old interest fades. Without a
    half-life every (user, item) pair counts 1.
    """
    if dataset.n_interactions == 0:
        return np.zeros(dataset.n_items, dtype=np.float32)
    pair = dataset.user_idx.astype(np.int64) * dataset.n_items + dataset.item_idx
    order = np.lexsort((dataset.timestamp, pair))
    pair_sorted = pair[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = pair_sorted[1:] != pair_sorted[:-1]
    latest = order[last]
    items = dataset.item_idx[latest]
    if half_life_days is None:
        weights = np.ones(len(latest), dtype=np.float64)
    else:
        if half_life_days <= 0:
            raise ValueError("popularity: half_life_days must be positive")
        age_days = (dataset.timestamp.max() - dataset.timestamp[latest]) / SECONDS_PER_DAY
        weights = 0.5 ** (age_days / float(half_life_days))
    return np.bincount(items, weights=weights, minlength=dataset.n_items).astype(np.float32)


class PopularityConfig(ModelConfig):
    """Parameters of ``PopularityRecommender``."""

    half_life_days: float | None = Field(
        None,
        gt=0.0,
        description="Exponential time decay of each user's interest, relative to the latest "
        "timestamp in the data (None: every user counts fully).",
    )
    similar_neighbors: int = Field(
        50, ge=0, description="Neighbours kept per item for similar_items (0: popularity order)."
    )


class PopularityRecommender(Recommender):
    """Scores every item by its (optionally time-decayed) count of distinct users.

    The score ignores the history, so every user gets the same ranking minus what they have
    seen. ``similar_items`` uses item-item cosine co-occurrence, keeping the
    ``similar_neighbors`` best neighbours per item (a sparse matrix, cheap to store); with
    ``similar_neighbors=0`` it falls back to the popularity ranking. Parameters:
    ``PopularityConfig``.
    """

    name: ClassVar[str] = "popularity"
    config_class: ClassVar[type[ModelConfig]] = PopularityConfig
    config: PopularityConfig

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.popularity = np.zeros(0, dtype=np.float32)
        self.cooccurrence = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, dataset: Dataset, progress: bool = False) -> None:
        self.popularity = decayed_popularity(dataset, self.config.half_life_days)
        neighbors = self.config.similar_neighbors
        if neighbors > 0:
            binary = dataset.matrix.copy()
            binary.data[:] = 1.0
            self.cooccurrence = cosine_topk(
                binary, neighbors, progress=progress, description="popularity: co-occurrence"
            )
        else:
            self.cooccurrence = sp.csr_matrix((self.n_items, self.n_items), dtype=np.float32)

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """The popularity vector for every row (histories are ignored)."""
        return np.broadcast_to(self.popularity, (histories.shape[0], self.n_items)).copy()

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Co-occurrence cosine rows; popularity when no neighbours were kept."""
        items = np.asarray(items, dtype=np.int64)
        if self.cooccurrence.nnz == 0:
            return np.broadcast_to(self.popularity, (len(items), self.n_items)).copy()
        return self.cooccurrence[items].toarray().astype(np.float32)

    def _state(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        return {"popularity": self.popularity, "cooccurrence": self.cooccurrence}

    def _set_state(self, state: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        self.popularity = state["popularity"]
        self.cooccurrence = state["cooccurrence"]
