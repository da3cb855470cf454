"""ContentRecommender: items are sentence embeddings of their text; users are the mean of theirs.

It needs no interactions to place an item, so it covers the cold start that collaborative
models cannot: a catalogue item added a second ago (``add_items``) is recommendable and has
neighbours at once, and free text can be searched semantically (``encode_query``).

Text alone ranks poorly where what people choose depends on more than what an item says
(on MovieLens, titles and genres rank below plain popularity), so scores add a popularity
prior: ``cos(user, item) + popularity_weight * prior(item)``, where the prior is the item's
log user count scaled to [0, 1]. It rides in one extra vector column (the user side holds the
weight), so scores stay a dot product that the serving indexes search; search and similarity
use the text columns only.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recstack.data.dataset import Dataset
from recstack.errors import ConfigError
from recstack.models.base import FactorRecommender, as_histories
from recstack.models.config import ModelConfig
from recstack.models.text_encoder import TEXT_DIM, encode_texts, item_texts

SECONDS_PER_DAY = 86_400.0


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), as float32.

    >>> normalise_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    m = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return m / norms


def popularity_prior(dataset: Dataset) -> np.ndarray:
    """Per item ``log(1 + users) / log(1 + most users)``: 0 for unseen items, 1 for the top one.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"user_id": ["a", "b", "c", "a"], "item_id": ["x", "x", "x", "y"],
    ...                       "weight": 1.0, "timestamp": 0})
    >>> popularity_prior(Dataset.from_frame(frame)).round(3).tolist()
    [1.0, 0.5]
    """
    users = dataset.item_popularity.astype(np.float64)
    top = np.log1p(users.max()) if len(users) else 0.0
    return (np.log1p(users) / top if top > 0 else users).astype(np.float32)


class ContentConfig(ModelConfig):
    """Parameters of ``ContentRecommender``."""

    batch_size: int = Field(256, ge=1, description="Texts encoded per forward pass.")
    half_life_days: float | None = Field(
        None,
        gt=0.0,
        description="Age at which an interaction counts half in the fitted user profiles "
        "(None: no decay).",
    )
    popularity_weight: float = Field(
        0.25,
        ge=0.0,
        description="Weight of the popularity prior against the text cosine (0: text only); a "
        "user with no history is then ranked by popularity alone.",
    )


class ContentRecommender(FactorRecommender):
    """Text-embedding recommender (all-MiniLM-L6-v2 over title, text and category words).

    Item vectors are unit-length sentence embeddings, so scores and similarities are cosines.
    A user is the normalised weighted mean of their history's item vectors (weights are the
    history values). Known users with an empty history row fall back to the profile learned at
    fit time, where each interaction's weight decays with its age when ``half_life_days`` is set.
    It implements ``TextSearchable`` (free-text search and catalogue growth). Parameters:
    ``ContentConfig``.
    """

    name: ClassVar[str] = "content"
    config_class: ClassVar[type[ModelConfig]] = ContentConfig
    config: ContentConfig

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        # text embedding (TEXT_DIM columns) then the popularity prior (one column)
        self._item_vectors = np.zeros((0, TEXT_DIM + 1), dtype=np.float32)
        self._user_profiles = np.zeros((0, TEXT_DIM), dtype=np.float32)

    # ---- training ------------------------------------------------------------------------------
    def _fit(self, dataset: Dataset, progress: bool = False) -> None:
        texts = item_texts(dataset.item_meta)
        if texts is None:
            raise ConfigError(
                "the content model needs item text: give items a title, text or categorical "
                "attributes (item metadata) before fitting it"
            )
        text = encode_texts(texts, batch_size=self.config.batch_size, progress=progress)
        self._item_vectors = np.hstack([text, popularity_prior(dataset)[:, None]])
        weight = dataset.weight.astype(np.float64)
        half_life = self.config.half_life_days
        if half_life and dataset.n_interactions:
            last_seen = np.zeros(dataset.n_users, dtype=np.int64)
            np.maximum.at(last_seen, dataset.user_idx, dataset.timestamp)
            age_days = (last_seen[dataset.user_idx] - dataset.timestamp) / SECONDS_PER_DAY
            weight = weight * np.power(0.5, age_days / float(half_life))
        profile_weights = sp.csr_matrix(
            (weight, (dataset.user_idx, dataset.item_idx)),
            shape=(dataset.n_users, dataset.n_items),
        )
        self._user_profiles = normalise_rows(profile_weights @ text)

    # ---- vectors -------------------------------------------------------------------------------
    def item_vectors(self) -> np.ndarray:
        """``(n_items, 385)`` scoring vectors: the unit text embedding, then the prior."""
        return self._item_vectors

    def similarity_vectors(self) -> np.ndarray:
        """``(n_items, 384)`` unit-length text embeddings (a view: no copy of mapped arrays)."""
        return self._item_vectors[:, :TEXT_DIM]

    def user_vectors(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """Normalised weighted mean of each history's text vectors, then the prior's weight.

        A known user (``users[r] >= 0``) whose history row is empty gets the profile fitted on
        their training interactions; an unknown user with no history gets a zero text part.
        """
        h = as_histories(histories, self.n_items)
        text = normalise_rows(h @ self.similarity_vectors())
        if users is not None:
            users = np.asarray(users, dtype=np.int64)
            empty = np.diff(h.indptr) == 0
            known = (users >= 0) & (users < len(self._user_profiles))
            fallback = np.flatnonzero(empty & known)
            text[fallback] = self._user_profiles[users[fallback]]
        prior = np.full((len(text), 1), self.config.popularity_weight, np.float32)
        return np.hstack([text, prior])

    # ---- catalogue growth and search -----------------------------------------------------------
    def add_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Add (or re-describe) catalogue items from their text, in place; returns their indices.

        New ids are appended to ``items``; an id already known gets its vector replaced by the
        embedding of the new text. Both are scored and similar-able immediately. Arrays are
        replaced, never written into, so a copy made before the call (``with_items``) and
        memory-mapped arrays stay as they were.
        """
        item_ids, texts = list(item_ids), list(texts)
        if len(item_ids) != len(texts):
            raise ValueError(f"add_items got {len(item_ids)} ids but {len(texts)} texts")
        if not item_ids:
            return np.zeros(0, dtype=np.int64)
        new_vectors = encode_texts(texts, batch_size=self.config.batch_size)
        self.items = self.items.extend(item_ids)
        grown = np.zeros((len(self.items), TEXT_DIM + 1), dtype=np.float32)
        grown[: len(self._item_vectors)] = self._item_vectors
        indices = self.items.indices(item_ids)
        grown[indices, :TEXT_DIM] = new_vectors  # a repeated id keeps its last text; new: prior 0
        self._item_vectors = grown
        self.meta.n_items = len(self.items)
        return indices

    def with_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> Self:
        """A copy that also covers ``item_ids`` (see ``add_items``); this model is untouched.

        The copy shares the unchanged arrays (user profiles, a memory-mapped artifact), so
        growing a served model by one item costs one item vector array, not a reload.
        """
        grown = copy.copy(self)
        grown.meta = replace(self.meta)
        grown.add_items(item_ids, texts)
        return grown

    def encode_query(self, text: str) -> np.ndarray:
        """Unit-length ``(384,)`` query embedding; ``similarity_vectors() @ q`` ranks items."""
        return encode_texts([text], batch_size=1)[0]

    def search(self, text: str, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Indices and cosine scores of the ``k`` items closest to ``text``, best first."""
        scores = self.similarity_vectors() @ self.encode_query(text)
        k = max(0, min(k, len(scores)))
        order = np.argsort(-scores, kind="stable")[:k]
        return order.astype(np.int64), scores[order].astype(np.float32)

    # ---- persistence ---------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        return {"item_vectors": self._item_vectors, "user_profiles": self._user_profiles}

    def _set_state(self, state: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        vectors = np.asarray(state["item_vectors"])
        if vectors.shape[1] == TEXT_DIM:  # saved before the prior existed: no prior
            vectors = np.hstack([vectors, np.zeros((len(vectors), 1), dtype=vectors.dtype)])
        self._item_vectors = vectors
        self._user_profiles = np.asarray(state["user_profiles"])
