"""Popular items, similar items and semantic search: the engine's non-personal lookups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recstack.errors import NotFoundError, UnavailableError
from recstack.models.base import FactorRecommender, top_k
from recstack.serving.engine.blend import interleave
from recstack.serving.engine.catalogue import Catalogue
from recstack.serving.engine.filters import filter_mask
from recstack.serving.engine.item_state import ItemState, content_mask, history_row
from recstack.serving.engine.results import ScoredItem
from recstack.serving.engine.vectors import LazyCosineSearch
from recstack.topk import exclusion

if TYPE_CHECKING:
    from recstack.serving.engine.histories import UserHistories

PERSONALISATION_WEIGHT = 0.5  # weight of the user's standardised model score in search re-ranking


def fixed_lists(model: object) -> bool:
    """Whether a model serves lists fixed in advance (``models.precomputed``): no fold-in,
    no item similarity; users without a list are cold starts."""
    return bool(getattr(model, "fixed_lists", False))


class DiscoveryMixin:
    """Popular items, similar items, search and the scoring helpers ``Engine`` shares.

    ``Engine`` sets ``_items`` (the current ``ItemState``) and ``histories``.
    """

    histories: UserHistories

    def _state(self, slot: str | None) -> ItemState: ...

    def _model_user(self, user_id: str, st: ItemState) -> int:
        """The model's row of the user, -1 to fold the history in instead; stored lists
        (``fixed_lists``) stay the user's after new events, not after a purge."""
        if st.model is None or self.histories.is_forgotten(user_id):
            return -1
        if self.histories.is_changed(user_id) and not fixed_lists(st.model):
            return -1
        return st.model_user(user_id)

    def _scored(self, cat: Catalogue, idx: np.ndarray, val: np.ndarray) -> list[ScoredItem]:
        ids = cat.ids.externals(idx)
        return [
            ScoredItem(item_id, float(score), cat.title(int(pos)))
            for item_id, score, pos in zip(ids, val.tolist(), idx, strict=True)
        ]

    def popular(self, k: int = 10, filter: dict[str, Any] | None = None) -> list[ScoredItem]:
        """The most popular eligible items (distinct users, live)."""
        cat = self._state(None).catalogue
        idx, val = self._popular(cat, filter_mask(filter, cat), k)
        return self._scored(cat, idx, val)

    def _popular(self, cat: Catalogue, mask: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.histories.popularity(cat.n_items).astype(np.float32)
        scores = scores + exclusion(mask)
        idx, val = top_k(scores[None, :], k)
        keep = idx[0] >= 0
        return idx[0][keep], val[0][keep]

    def similar(
        self, item_id: str, k: int = 10, slot: str | None = None
    ) -> tuple[list[ScoredItem], str]:
        """Items most similar to ``item_id`` (active ones) by a slot's model, and what
        produced them."""
        st = self._state(slot)
        cat = st.catalogue
        position = cat.position(item_id)
        if position < 0:
            raise NotFoundError(f"unknown item {item_id!r}")
        mask = cat.active.copy()
        mask[position] = False
        content_pos = int(st.to_content[position]) if st.content_search is not None else -1
        has_similar = st.model is not None and not fixed_lists(st.model)
        model_pos = st.positions.model_index(position) if has_similar else -1
        if model_pos >= 0:
            warm = self._model_similar(st, model_pos, mask, k)
            cold = (np.empty(0, np.int64), np.empty(0, np.float32))
            if content_pos >= 0:
                cold = self._content_similar(st, content_pos, st.positions.cold_part(mask), k)
            idx, val, _ = interleave(warm, cold, k, int((cold[1] > 0).sum()))
            return self._scored(cat, idx, val), "model"
        if content_pos >= 0:
            idx, val = self._content_similar(st, content_pos, mask, k)
            return self._scored(cat, idx, val), "content"
        idx, val = self._popular(cat, mask, k)
        return self._scored(cat, idx, val), "popularity"

    def _model_similar(
        self, st: ItemState, model_pos: int, mask: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Engine positions most similar to the model's item ``model_pos``."""
        model_mask = st.positions.model_mask(mask)
        if st.similar_search is not None:
            search = st.similar_search
            if isinstance(search, LazyCosineSearch):
                search = search.get()
            idx, val = search.search(search.vector(model_pos), k, model_mask)
            return st.positions.to_engine(idx), val
        assert st.model is not None
        sims = np.asarray(st.model.item_similarity(np.array([model_pos]))[0], dtype=np.float32)
        sims = sims[: st.n_model] + exclusion(model_mask)
        idx, val = top_k(sims[None, :], k)
        keep = idx[0] >= 0
        return st.positions.to_engine(idx[0][keep]), val[0][keep]

    def _content_similar(
        self, st: ItemState, content_pos: int, mask: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        assert st.content_search is not None
        allowed = content_mask(st, mask)
        idx, val = st.content_search.search(st.content_search.vector(content_pos), k, allowed)
        return st.from_content[idx], val

    def search(
        self, query: str, k: int = 10, user_id: str | None = None, slot: str | None = None
    ) -> tuple[list[ScoredItem], bool]:
        """Semantic search over item text; with ``user_id`` re-ranked by the user's model scores.

        Personalised: the best ``max(50, 5k)`` text matches are re-ranked by
        ``z(text score) + PERSONALISATION_WEIGHT * z(user score)`` (z = standardised within
        the candidates; items the model cannot score count as average). Returns the items and
        whether the ranking was personalised.
        """
        st = self._state(slot)
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
        hist_items, hist_weights = st.positions.warm(*self.histories.row(user_id))
        h = history_row(hist_items, hist_weights, st.n_model)
        users = np.array([self._model_user(user_id, st)], dtype=np.int64)
        out = np.full(len(positions), np.nan, dtype=np.float64)
        indices = st.positions.model_indices(positions)
        scorable = indices >= 0
        if isinstance(st.model, FactorRecommender) and st.model_search is not None:
            vector = st.model.user_vectors(h, users)[0]
            out[scorable] = st.model_search.scores(vector, indices[scorable])
        else:
            out[scorable] = np.asarray(st.model.score(h, users))[0][indices[scorable]]
        return out


def _zscore(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    if finite.sum() < 2:
        return np.zeros(len(v))
    mean, std = v[finite].mean(), v[finite].std()
    z = (v - mean) / std if std > 0 else v - mean
    return np.where(finite, z, 0.0)
