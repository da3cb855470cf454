"""Popular items, similar items and semantic search: the engine's non-personal lookups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recstack.errors import NotFoundError
from recstack.models.base import FactorRecommender, top_k
from recstack.serving.blend import interleave
from recstack.serving.catalogue import Catalogue
from recstack.serving.errors import UnavailableError
from recstack.serving.filters import filter_mask
from recstack.serving.item_state import ItemState, cold_part, content_mask, history_row
from recstack.serving.results import ScoredItem
from recstack.serving.vectors import LazyCosineSearch

if TYPE_CHECKING:
    from recstack.serving.histories import UserHistories

PERSONALISATION_WEIGHT = 0.5  # weight of the user's standardised model score in search re-ranking


class DiscoveryMixin:
    """Popular items, similar items, search and the scoring helpers ``Engine`` shares.

    ``Engine`` sets ``_items`` (the current ``ItemState``) and ``histories``.
    """

    _items: ItemState
    histories: UserHistories

    def _model_user(self, user_id: str) -> int:
        model = self._items.model
        if model is None or self.histories.is_changed(user_id):
            return -1
        return self._items.model_users.get(user_id, -1)

    def _scored(self, cat: Catalogue, idx: np.ndarray, val: np.ndarray) -> list[ScoredItem]:
        ids = cat.ids.externals(idx)
        return [
            ScoredItem(item_id, float(score), cat.title(int(pos)))
            for item_id, score, pos in zip(ids, val.tolist(), idx, strict=True)
        ]

    def popular(self, k: int = 10, filter: dict[str, Any] | None = None) -> list[ScoredItem]:
        """The most popular eligible items (distinct users, live)."""
        cat = self._items.catalogue
        idx, val = self._popular(cat, filter_mask(filter, cat), k)
        return self._scored(cat, idx, val)

    def _popular(self, cat: Catalogue, mask: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.histories.popularity(cat.n_items).astype(np.float32)
        scores = np.where(mask, scores, -np.inf)
        idx, val = top_k(scores[None, :], k)
        keep = idx[0] >= 0
        return idx[0][keep], val[0][keep]

    def similar(self, item_id: str, k: int = 10) -> tuple[list[ScoredItem], str]:
        """Items most similar to ``item_id`` (active ones) and what produced them."""
        st = self._items
        cat = st.catalogue
        position = cat.position(item_id)
        if position < 0:
            raise NotFoundError(f"unknown item {item_id!r}")
        mask = cat.active.copy()
        mask[position] = False
        content_pos = int(st.to_content[position]) if st.content_search is not None else -1
        if st.model is not None and position < st.n_model:
            warm = self._model_similar(st, position, mask, k)
            cold = (np.empty(0, np.int64), np.empty(0, np.float32))
            if content_pos >= 0:
                cold = self._content_similar(st, content_pos, cold_part(mask, st.n_model), k)
            idx, val, _ = interleave(warm, cold, k, int((cold[1] > 0).sum()))
            return self._scored(cat, idx, val), "model"
        if content_pos >= 0:
            idx, val = self._content_similar(st, content_pos, mask, k)
            return self._scored(cat, idx, val), "content"
        idx, val = self._popular(cat, mask, k)
        return self._scored(cat, idx, val), "popularity"

    def _model_similar(
        self, st: ItemState, position: int, mask: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        model_mask = mask[: st.n_model]
        if st.similar_search is not None:
            search = st.similar_search
            if isinstance(search, LazyCosineSearch):
                search = search.get()
            return search.search(search.vector(position), k, model_mask)
        assert st.model is not None
        sims = np.asarray(st.model.item_similarity(np.array([position]))[0], dtype=np.float32)
        sims = np.where(model_mask, sims[: st.n_model], -np.inf)
        idx, val = top_k(sims[None, :], k)
        keep = idx[0] >= 0
        return idx[0][keep], val[0][keep]

    def _content_similar(
        self, st: ItemState, content_pos: int, mask: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        assert st.content_search is not None
        allowed = content_mask(st, mask)
        idx, val = st.content_search.search(st.content_search.vector(content_pos), k, allowed)
        return st.from_content[idx], val

    def search(
        self, query: str, k: int = 10, user_id: str | None = None
    ) -> tuple[list[ScoredItem], bool]:
        """Semantic search over item text; with ``user_id`` re-ranked by the user's model scores.

        Personalised: the best ``max(50, 5k)`` text matches are re-ranked by
        ``z(text score) + PERSONALISATION_WEIGHT * z(user score)`` (z = standardised within
        the candidates; items the model cannot score count as average). Returns the items and
        whether the ranking was personalised.
        """
        st = self._items
        if st.content is None or st.content_search is None:
            raise UnavailableError(
                "semantic search needs a content model: train one (model 'content') and register "
                "it as the served model or under '<model_name>-content', then reload"
            )
        cat = st.catalogue
        query_vector = np.asarray(st.content.encode_query(query), dtype=np.float32)
        allowed = content_mask(st, cat.active)
        personal = user_id is not None and st.model is not None and self.histories.knows(user_id)
        fetch = max(50, 5 * k) if personal else k
        idx, val = st.content_search.search(query_vector, fetch, allowed)
        positions = st.from_content[idx]
        if personal and len(positions) > 1:
            assert user_id is not None
            user_scores = self._user_scores(st, user_id, positions)
            combined = _zscore(val) + PERSONALISATION_WEIGHT * _zscore(user_scores)
            order = np.argsort(-combined, kind="stable")[:k]
            positions, val = positions[order], combined[order].astype(np.float32)
        return self._scored(cat, positions[:k], val[:k]), personal

    def _user_scores(self, st: ItemState, user_id: str, positions: np.ndarray) -> np.ndarray:
        """The served model's scores of ``positions`` for the user (NaN where it has none)."""
        assert st.model is not None
        hist_items, hist_weights = self.histories.row(user_id)
        warm = hist_items < st.n_model
        h = history_row(hist_items[warm], hist_weights[warm], st.n_model)
        users = np.array([self._model_user(user_id)], dtype=np.int64)
        out = np.full(len(positions), np.nan, dtype=np.float64)
        scorable = positions < st.n_model
        if isinstance(st.model, FactorRecommender) and st.model_search is not None:
            vector = st.model.user_vectors(h, users)[0]
            out[scorable] = st.model_search.scores(vector, positions[scorable])
        else:
            out[scorable] = np.asarray(st.model.score(h, users))[0][positions[scorable]]
        return out


def _zscore(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    if finite.sum() < 2:
        return np.zeros(len(v))
    mean, std = v[finite].mean(), v[finite].std()
    z = (v - mean) / std if std > 0 else v - mean
    return np.where(finite, z, 0.0)
