"""The serving engine: everything a request needs, in memory, answered without the database.

An ``Engine`` holds the loaded model (arrays memory-mapped, shared by workers), the item
catalogue with filter columns, user histories and popularity. Item positions are the model's
item indices followed by catalogue items the model never saw (*cold* items, see ``blend``).

Scoring a user: a factor model (ALS, BPR, two-tower, content) gives a user vector — learned for
a known user whose history has not changed since loading, folded in from the history otherwise
— and the best items come from ``ItemVectorSearch`` (exact BLAS, or FAISS HNSW above
``ann_threshold`` items). Other models get ``model.recommend`` with the history row and the
item mask. Users with no history and no learned vector get popularity (``cold_start``).

Concurrency: reads never lock. Item upserts build a new ``ItemState`` and swap one reference;
history updates lock per change inside ``UserHistories``. A whole new engine (model reload) is
built off to the side and swapped by the app in one assignment.
"""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.data.weights import EventWeighting
from recstack.errors import NotFoundError
from recstack.models.base import FactorRecommender, Recommender, top_k
from recstack.serving.blend import interleave
from recstack.serving.catalogue import Catalogue, positions_of
from recstack.serving.errors import UnavailableError
from recstack.serving.filters import compile_filter
from recstack.serving.histories import UserHistories
from recstack.serving.vectors import ItemVectorSearch, LazyCosineSearch

log = logging.getLogger("recstack.serving")

PERSONALISATION_WEIGHT = 0.5  # weight of the user's standardised model score in search re-ranking
EXPLAIN_TOP = 3


@dataclass(frozen=True)
class ModelInfo:
    """What the engine serves: model family, registry version and registered name."""

    name: str
    version: int | None = None
    registered_name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "registered_name": self.registered_name}


FALLBACK = ModelInfo("popularity")


@dataclass
class ScoredItem:
    """One recommended item with its title and, on request, why it was picked."""

    item_id: str
    score: float
    title: str | None = None
    explanation: list[dict[str, Any]] | None = None


@dataclass
class Recommendations:
    items: list[ScoredItem]
    cold_start: bool
    source: str = "model"


@dataclass(frozen=True)
class ItemState:
    """The item side of the engine, replaced as a whole when the catalogue changes."""

    catalogue: Catalogue
    model: Recommender | None
    n_model: int
    model_search: ItemVectorSearch | None
    similar_search: ItemVectorSearch | LazyCosineSearch | None
    content: Any | None
    content_search: ItemVectorSearch | None
    to_content: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    from_content: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    model_users: dict[str, int] = field(default_factory=dict)


class Engine:
    """In-memory recommendation state and the operations the HTTP routes call."""

    def __init__(
        self,
        items: ItemState,
        histories: UserHistories,
        *,
        model_info: ModelInfo = FALLBACK,
        content_info: ModelInfo | None = None,
        weighting: EventWeighting | None = None,
        history_since: int | None = None,
    ) -> None:
        self._items = items
        self.histories = histories
        self.model_info = model_info if items.model is not None else FALLBACK
        self.content_info = content_info
        self.weighting = weighting or EventWeighting()
        self.history_since = history_since
        self._write_lock = threading.Lock()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_dataset(
        cls,
        dataset: Dataset,
        model: Recommender | None = None,
        *,
        content: Any | None = None,
        model_info: ModelInfo | None = None,
        content_info: ModelInfo | None = None,
        weighting: EventWeighting | None = None,
        ann_threshold: int = 20_000,
        history_since: int | None = None,
    ) -> Engine:
        """Build from a store snapshot, the served model and an optional content model.

        ``dataset`` gives histories, popularity and the catalogue (its ``item_meta``); item
        positions are ``model.items`` followed by catalogue items the model lacks.
        """
        if content is None and model is not None and model.name == "content":
            content = model  # a served content model also answers search and cold items
        base = model.items if model is not None else dataset.items
        ids = base.extend(dataset.items.ids)
        if model is not None and content is model:
            extra = ids.ids[len(model.items) :].tolist()
            if extra:
                content = model = _content_with(model, extra, _texts(dataset, extra))
                ids = model.items
        catalogue = _catalogue(ids, dataset)
        columns = ids.indices(dataset.items.ids)
        matrix = dataset.matrix.tocsr()
        matrix = sp.csr_matrix(
            (matrix.data, columns[matrix.indices], matrix.indptr), shape=(matrix.shape[0], len(ids))
        )
        histories = UserHistories(dataset.users, matrix)
        state = _item_state(catalogue, model, content, ann_threshold)
        info = model_info or (ModelInfo(model.name) if model is not None else FALLBACK)
        if content is not None and content_info is None:
            content_info = ModelInfo(content.name)
        return cls(
            state,
            histories,
            model_info=info,
            content_info=content_info,
            weighting=weighting,
            history_since=history_since,
        )

    # ---- introspection ------------------------------------------------------------------------
    @property
    def items(self) -> ItemState:
        return self._items

    @property
    def catalogue(self) -> Catalogue:
        return self._items.catalogue

    @property
    def model(self) -> Recommender | None:
        return self._items.model

    @property
    def has_content(self) -> bool:
        return self._items.content is not None

    @property
    def n_items(self) -> int:
        return self._items.catalogue.n_items

    def has_item(self, item_id: str) -> bool:
        return self._items.catalogue.position(item_id) >= 0

    def known_to_model(self, user_id: str) -> bool:
        """Whether the served model learned this user (and they were not purged since)."""
        model = self._items.model
        if model is None or self.histories.is_forgotten(user_id):
            return False
        return self._items.model_users.get(user_id, -1) >= 0

    def history(self, user_id: str) -> list[tuple[str, float]]:
        """The user's in-memory history as ``(item_id, weight)`` pairs."""
        items, weights = self.histories.row(user_id)
        ids = self._items.catalogue.ids.externals(items)
        return list(zip(ids, weights.astype(float).tolist(), strict=True))

    # ---- recommendations ----------------------------------------------------------------------
    def recommend(
        self,
        user_id: str,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        exclude: list[str] | tuple[str, ...] = (),
        filter: dict[str, Any] | None = None,
        explain: bool = False,
    ) -> Recommendations:
        """Top-k items for a user, filtered; unknown users get popularity (cold start)."""
        st = self._items
        cat = st.catalogue
        mask = compile_filter(filter, cat)
        hist_items, hist_weights = self.histories.row(user_id)
        if exclude_seen and len(hist_items):
            mask[hist_items] = False
        if exclude:
            rows = cat.ids.indices(exclude)
            mask[rows[rows >= 0]] = False
        model_user = self._model_user(user_id)
        cold_start = not self.known_to_model(user_id)
        warm_history = hist_items < st.n_model
        if st.model is None or (model_user < 0 and len(hist_items) == 0):
            idx, val = self._popular(cat, mask, k)
            items = self._scored(cat, idx, val)
            if explain:
                for item in items:
                    item.explanation = []
            return Recommendations(items, cold_start, "popularity")
        h = _row(hist_items[warm_history], hist_weights[warm_history], st.n_model)
        by_model = model_user >= 0 or bool(warm_history.any())
        if by_model:
            warm = self._model_top(st, h, model_user, mask, k)
        else:  # only items the model never saw: popular warm items, content-ranked cold ones
            warm = self._popular(cat, _warm_part(mask, st.n_model), k)
        cold = self._cold_top(st, hist_items, hist_weights, mask, k)
        idx, val, is_cold = interleave(warm, cold, k, int((cold[1] > 0).sum()))
        items = self._scored(cat, idx, val)
        if explain:
            for item, pos, from_cold in zip(items, idx, is_cold, strict=True):
                if from_cold:
                    item.explanation = self._explain_content(st, hist_items, hist_weights, int(pos))
                else:
                    item.explanation = self._explain_model(st, h, int(pos)) if by_model else []
        return Recommendations(items, cold_start, "model" if by_model else "popularity")

    def _model_user(self, user_id: str) -> int:
        model = self._items.model
        if model is None or self.histories.is_changed(user_id):
            return -1
        return self._items.model_users.get(user_id, -1)

    def _model_top(
        self, st: ItemState, h: sp.csr_matrix, model_user: int, mask: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        model = st.model
        assert model is not None
        model_mask = mask[: st.n_model]
        users = np.array([model_user], dtype=np.int64)
        if st.model_search is not None and isinstance(model, FactorRecommender):
            vector = model.user_vectors(h, users)[0]
            return st.model_search.search(vector, k, model_mask)
        idx, val = model.recommend(h, k, users=users, exclude_seen=False, item_mask=model_mask)
        keep = idx[0] >= 0
        return idx[0][keep], val[0][keep]

    def _cold_top(
        self, st: ItemState, hist_items: np.ndarray, hist_weights: np.ndarray, mask: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Eligible items the served model cannot score (added after training), best first;
        only those with a positive score earn a regular share of the list."""
        cold = np.flatnonzero(mask[st.n_model :]) + st.n_model
        if len(cold) == 0:
            return cold, np.empty(0, dtype=np.float32)
        vector = self._content_user_vector(st, hist_items, hist_weights)
        if vector is not None:
            positions = st.to_content[cold]
            has = positions >= 0
            cold = cold[has]
            scores = st.content_search.scores(vector, positions[has])
        else:
            scores = self.histories.popularity(st.catalogue.n_items)[cold].astype(np.float32)
        order = np.argsort(-scores, kind="stable")[:k]
        return cold[order], scores[order]

    def _content_user_vector(
        self, st: ItemState, hist_items: np.ndarray, hist_weights: np.ndarray
    ) -> np.ndarray | None:
        """Normalised weighted mean of the history's content vectors (None without any)."""
        if st.content_search is None or len(hist_items) == 0:
            return None
        positions = st.to_content[hist_items]
        has = positions >= 0
        if not has.any():
            return None
        vectors = np.stack([st.content_search.vector(int(p)) for p in positions[has]])
        vector = hist_weights[has].astype(np.float32) @ vectors
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else None

    def _explain_model(self, st: ItemState, h: sp.csr_matrix, position: int) -> list[dict[str, Any]]:
        assert st.model is not None
        pairs = st.model.explain(h, position, top=EXPLAIN_TOP)
        return [self._because(st.catalogue, i, w) for i, w in pairs]

    def _explain_content(
        self, st: ItemState, hist_items: np.ndarray, hist_weights: np.ndarray, position: int
    ) -> list[dict[str, Any]]:
        target = int(st.to_content[position]) if len(st.to_content) > position else -1
        if st.content_search is None or target < 0:
            return []
        positions = st.to_content[hist_items]
        has = positions >= 0
        sims = st.content_search.scores(st.content_search.vector(target), positions[has])
        votes = sims * hist_weights[has]
        order = np.argsort(-votes, kind="stable")[:EXPLAIN_TOP]
        items = hist_items[has]
        return [self._because(st.catalogue, int(items[j]), float(votes[j])) for j in order if votes[j] > 0]

    @staticmethod
    def _because(cat: Catalogue, position: int, weight: float) -> dict[str, Any]:
        return {"item_id": cat.ids.external(position), "title": cat.title(position), "weight": weight}

    # ---- popularity, similar items, search ---------------------------------------------------
    def popular(self, k: int = 10, filter: dict[str, Any] | None = None) -> list[ScoredItem]:
        """The most popular eligible items (distinct users, live)."""
        cat = self._items.catalogue
        idx, val = self._popular(cat, compile_filter(filter, cat), k)
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
                cold = self._content_similar(st, content_pos, _cold_part(mask, st.n_model), k)
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
        content_mask = _content_mask(st, mask)
        idx, val = st.content_search.search(st.content_search.vector(content_pos), k, content_mask)
        return st.from_content[idx], val

    def search(self, query: str, k: int = 10, user_id: str | None = None) -> tuple[list[ScoredItem], bool]:
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
        content_mask = _content_mask(st, cat.active)
        personal = user_id is not None and st.model is not None and self.histories.knows(user_id)
        fetch = max(50, 5 * k) if personal else k
        idx, val = st.content_search.search(query_vector, fetch, content_mask)
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
        h = _row(hist_items[warm], hist_weights[warm], st.n_model)
        users = np.array([self._model_user(user_id)], dtype=np.int64)
        out = np.full(len(positions), np.nan, dtype=np.float64)
        scorable = positions < st.n_model
        if isinstance(st.model, FactorRecommender) and st.model_search is not None:
            vector = st.model.user_vectors(h, users)[0]
            out[scorable] = st.model_search.scores(vector, positions[scorable])
        else:
            out[scorable] = np.asarray(st.model.score(h, users))[0][positions[scorable]]
        return out

    def _scored(self, cat: Catalogue, idx: np.ndarray, val: np.ndarray) -> list[ScoredItem]:
        ids = cat.ids.externals(idx)
        return [
            ScoredItem(item_id, float(score), cat.title(int(pos)))
            for item_id, score, pos in zip(ids, val.tolist(), idx, strict=True)
        ]

    # ---- live updates -------------------------------------------------------------------------
    def event_weights(self, event_types: list[str], values: list[float | None]) -> np.ndarray:
        """Weights of events under the server's ``EventWeighting`` (NaN = dropped)."""
        value = pd.Series([np.nan if v is None else v for v in values], dtype=np.float64)
        return self.weighting.weights(pd.Series(event_types, dtype=object), value)

    def apply_events(
        self,
        user_ids: list[str],
        item_ids: list[str],
        event_types: list[str],
        values: list[float | None],
    ) -> set[str]:
        """Add stored events to the users' live histories; returns the users touched."""
        weights = self.event_weights(event_types, values)
        positions = self._items.catalogue.ids.indices(item_ids)
        keep = (positions >= 0) & ~np.isnan(weights)
        users = np.asarray(user_ids, dtype=object)[keep]
        positions, weights = positions[keep], weights[keep]
        if len(users) == 0:
            return set()
        unique, inverse = np.unique(users.astype(str), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(unique) + 1))
        for u, user_id in enumerate(unique.tolist()):
            rows = order[bounds[u] : bounds[u + 1]]
            self.histories.add(user_id, positions[rows], weights[rows])
        return set(unique.tolist())

    def set_history(self, user_id: str, events: pd.DataFrame) -> None:
        """Replace a user's history with ``events`` (item_id, event_type, value, timestamp)."""
        if self.history_since is not None and len(events):
            events = events[events["timestamp"] >= self.history_since]
        if len(events) == 0:
            self.histories.replace(user_id, np.empty(0, np.int64), np.empty(0, np.float32))
            return
        weights = self.weighting.weights(events["event_type"].astype(object), events["value"].astype(float))
        positions = self._items.catalogue.ids.indices(events["item_id"].astype(str).tolist())
        keep = (positions >= 0) & ~np.isnan(weights)
        self.histories.replace(user_id, positions[keep], weights[keep])

    def forget_user(self, user_id: str) -> None:
        """Remove every trace of a user from memory (history, popularity, learned vector use)."""
        self.histories.forget(user_id)

    def upsert_item(
        self,
        item_id: str,
        *,
        title: str | None,
        text: str | None,
        attributes: dict[str, Any],
        active: bool,
    ) -> bool:
        """Add or update a catalogue item at once; returns True when it is new.

        The content model (when loaded) embeds the new text, so a new item is similar-able,
        searchable and recommendable (through the cold slots) immediately. Changing the text of
        an item already in an approximate (HNSW) index takes effect at the next reload.
        """
        with self._write_lock:
            st = self._items
            catalogue, position, is_new = st.catalogue.with_item(
                item_id, title=title, attributes=attributes, active=active
            )
            state = replace(st, catalogue=catalogue)
            if st.content is not None and st.content_search is not None:
                state = _with_content_item(state, item_id, position, _item_text(title, text, attributes))
            self._items = state
            return is_new


# ---- helpers ----------------------------------------------------------------------------------
def _row(items: np.ndarray, weights: np.ndarray, n_items: int) -> sp.csr_matrix:
    """One history as a ``(1, n_items)`` CSR."""
    return sp.csr_matrix(
        (np.asarray(weights, dtype=np.float32), np.asarray(items, dtype=np.int64), np.array([0, len(items)])),
        shape=(1, n_items),
    )


def _zscore(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    if finite.sum() < 2:
        return np.zeros(len(v))
    mean, std = v[finite].mean(), v[finite].std()
    z = (v - mean) / std if std > 0 else v - mean
    return np.where(finite, z, 0.0)


def _warm_part(mask: np.ndarray, n_model: int) -> np.ndarray:
    out = mask.copy()
    out[n_model:] = False
    return out


def _cold_part(mask: np.ndarray, n_model: int) -> np.ndarray:
    out = mask.copy()
    out[:n_model] = False
    return out


def _content_mask(st: ItemState, mask: np.ndarray) -> np.ndarray:
    """An engine-position mask carried over to content-model positions."""
    has = st.from_content >= 0
    out = np.zeros(len(st.from_content), dtype=bool)
    out[has] = mask[st.from_content[has]]
    return out


def _item_text(title: str | None, text: str | None, attributes: dict[str, Any]) -> str:
    from recstack.models.text_encoder import item_text

    return item_text(title, text, attributes)


def _texts(dataset: Dataset, item_ids: list[str]) -> list[str]:
    meta = dataset.item_meta
    if meta is None:
        return ["" for _ in item_ids]
    rows = dataset.items.indices(item_ids)
    out = []
    for r in rows:
        if r < 0:
            out.append("")
            continue
        row = meta.iloc[int(r)]
        out.append(_item_text(row["title"], row["text"], row["attributes"]))
    return out


def _content_with(content: Any, item_ids: list[str], texts: list[str]) -> Any:
    """A copy of the content model that also covers ``item_ids`` (the original is untouched)."""
    grown = copy.copy(content)
    grown.meta = copy.copy(content.meta)
    grown.add_items(list(item_ids), list(texts))
    return grown


def _catalogue(ids: Any, dataset: Dataset) -> Catalogue:
    """Catalogue over engine positions; items missing from the store's catalogue are inactive."""
    meta = dataset.item_meta
    n = len(ids)
    if meta is None:
        return Catalogue.build(ids, [None] * n, [{}] * n, [True] * n)
    rows = dataset.items.indices(ids.ids)
    present = rows >= 0
    safe = np.where(present, rows, 0)
    titles = np.asarray(meta["title"].to_numpy(dtype=object))[safe]
    attributes = np.asarray(meta["attributes"].to_numpy(dtype=object))[safe]
    active = np.asarray(meta["active"].to_numpy(dtype=bool))[safe] & present
    titles = np.where(present, titles, None)
    attributes = [a if p and isinstance(a, dict) else {} for a, p in zip(attributes, present, strict=True)]
    return Catalogue.build(ids, titles.tolist(), attributes, active.tolist())


def _item_state(catalogue: Catalogue, model: Recommender | None, content: Any | None, ann: int) -> ItemState:
    n_model = len(model.items) if model is not None else 0
    model_search = similar_search = None
    if isinstance(model, FactorRecommender):
        vectors = model.item_vectors()
        model_search = ItemVectorSearch.build(vectors, ann)
        if model is content:
            similar_search = model_search
        else:
            similar_search = LazyCosineSearch(vectors, ann)
    content_search = None
    to_content = np.full(catalogue.n_items, -1, dtype=np.int64)
    from_content = np.zeros(0, dtype=np.int64)
    if content is not None:
        content_search = model_search if content is model else ItemVectorSearch.build(content.item_vectors(), ann)
        to_content = content.items.indices(catalogue.ids.ids)
        from_content = catalogue.ids.indices(content.items.ids)
    model_users = positions_of(model.users) if model is not None else {}
    return ItemState(
        catalogue,
        model,
        n_model,
        model_search,
        similar_search,
        content,
        content_search,
        to_content,
        from_content,
        model_users,
    )


def _with_content_item(st: ItemState, item_id: str, position: int, text: str) -> ItemState:
    """``st`` with the content model (a copy) covering one added or re-described item."""
    assert st.content is not None and st.content_search is not None
    content = _content_with(st.content, [item_id], [text])
    content_pos = int(content.items.index(item_id))
    vector = np.asarray(content.item_vectors()[content_pos], dtype=np.float32)
    search = st.content_search
    if content_pos >= search.n_items:
        search = search.with_added(vector[None, :])
    elif not search.approximate:
        search = ItemVectorSearch(content.item_vectors(), None, search.tail[:0])
    else:
        search = search.with_replaced(content_pos, vector)
    n = st.catalogue.n_items
    to_content = np.concatenate([st.to_content, np.full(n - len(st.to_content), -1, dtype=np.int64)])
    to_content[position] = content_pos
    from_content = np.concatenate([st.from_content, np.full(len(content.items) - len(st.from_content), -1, dtype=np.int64)])
    from_content[content_pos] = position
    changes: dict[str, Any] = {
        "content": content,
        "content_search": search,
        "to_content": to_content,
        "from_content": from_content,
    }
    if st.model is st.content:
        changes.update(model=content, n_model=len(content.items), model_search=search, similar_search=search)
    return replace(st, **changes)
