"""The serving engine: everything a request needs, in memory, answered without the database.

An ``Engine`` holds the loaded model (arrays memory-mapped, shared by workers), the item
catalogue with filter columns, user histories and popularity. Item positions are the model's
item indices followed by catalogue items the model never saw (*cold* items, see ``blend``).

Scoring a user: a factor model (ALS, BPR, two-tower, content) gives a user vector — learned for
a known user whose history has not changed since loading, folded in from the history otherwise
— and the best items come from ``ItemVectorSearch`` (exact BLAS, or FAISS HNSW above
``ann_threshold`` items). Other models get ``model.recommend`` with the history row and the
item mask. Users with no history and no learned vector get popularity (``cold_start``).

The per-request path stays lean: filter masks come from the catalogue's mask cache, the
history CSR is only built when something reads it (a fold-in, a non-factor model, an
explanation; models whose learned vectors ignore the history say so with
``uses_history_for_known_users = False``), and without cold items there is nothing to blend.

Concurrency: reads never lock. Item upserts build a new ``ItemState`` and swap one reference;
history updates lock per change inside ``UserHistories``. A whole new engine (model reload) is
built off to the side and swapped by the app in one assignment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.data.weights import EventWeighting
from recstack.errors import NotFoundError
from recstack.models.base import FactorRecommender, Recommender
from recstack.models.protocols import TextSearchable
from recstack.serving.engine.batch import (
    Prefetched,
    PrefetchedTops,
    batches_well,
    exclusion_rows,
    stacked_rows,
)
from recstack.serving.engine.blend import interleave
from recstack.serving.engine.catalogue import Catalogue
from recstack.serving.engine.discovery import DiscoveryMixin, fixed_lists
from recstack.serving.engine.filters import canonical_filter, filter_mask
from recstack.serving.engine.histories import UserHistories
from recstack.serving.engine.item_state import (
    ItemState,
    WarmHistory,
    build_item_state,
    catalogue_from,
    content_with,
    item_text_of,
    with_catalogue,
    with_content_items,
    with_content_of,
)
from recstack.serving.engine.results import FALLBACK, ModelInfo, Recommendations, ScoredItem
from recstack.serving.engine.snapshot import ServingSnapshot
from recstack.serving.engine.vectors import VectorBackend

__all__ = ["Engine", "ModelInfo", "Recommendations", "ScoredItem"]

log = logging.getLogger("recstack.serving")

EXPLAIN_TOP = 3
DEFAULT_SLOT = "champion"
FOLDED_CACHE_SIZE = (
    20_000  # folded-in vectors remembered (cleared when full): ~10 MiB at 64 factors
)
NO_HISTORY = sp.csr_matrix((1, 0), dtype=np.float32)  # for models that ignore it (known users)


def unscorable(model: Recommender, model_user: int, history_length: int) -> bool:
    """Whether the model cannot rank for this user: it never learned them and there is no
    history to fold in, or its lists are fixed per learned user (``fixed_lists``)."""
    return model_user < 0 and (history_length == 0 or fixed_lists(model))


class Engine(DiscoveryMixin):
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
        slot: str = DEFAULT_SLOT,
    ) -> None:
        self.primary = slot
        self._states: dict[str, ItemState] = {slot: items}
        self._infos: dict[str, ModelInfo] = {
            slot: model_info if items.model is not None else FALLBACK
        }
        self.histories = histories
        self.content_info = content_info
        self.weighting = weighting or EventWeighting()
        self.history_since = history_since
        self._write_lock = threading.Lock()
        self._folded: dict[tuple[str, int], tuple[object, Any, np.ndarray]] = {}
        self._prefetched = PrefetchedTops()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_dataset(
        cls, dataset: Dataset, model: Recommender | None = None, **options: Any
    ) -> Engine:
        """Build from a store snapshot (``Dataset``), the served model and ``from_snapshot``'s
        options: histories, popularity and the catalogue (``item_meta``) come from
        ``dataset``; item positions are ``model.items`` followed by catalogue items it lacks.
        """
        return cls.from_snapshot(ServingSnapshot.of(dataset), model, **options)

    @classmethod
    def from_snapshot(
        cls,
        snapshot: ServingSnapshot,
        model: Recommender | None = None,
        *,
        content: Any | None = None,
        model_info: ModelInfo | None = None,
        content_info: ModelInfo | None = None,
        weighting: EventWeighting | None = None,
        ann_threshold: int | VectorBackend = 20_000,
        history_since: int | None = None,
        slot: str = DEFAULT_SLOT,
    ) -> Engine:
        """Build from histories and a catalogue (``ServingSnapshot``) and the served models.

        Item positions are ``model.items`` followed by the other items of the histories and
        of the catalogue. A snapshot whose history columns already are those positions (a
        serving image built for this model) is used as it is, memory-mapped arrays included.
        """
        if content is None and isinstance(model, TextSearchable):
            content = model  # a served content model also answers search and cold items
        base = model.items if model is not None else snapshot.item_ids
        ids = base.extend(snapshot.item_ids.ids).extend(snapshot.items.ids)
        if model is not None and content is model:
            extra = ids.ids[len(model.items) :].tolist()
            if extra:
                content = model = content_with(model, extra, snapshot.texts(extra))
                ids = model.items
        catalogue = catalogue_from(ids, snapshot.items, snapshot.item_meta)
        histories = UserHistories(snapshot.users, snapshot.matrix_over(ids), presorted=True)
        users = (histories.users, histories.rows)
        state = build_item_state(catalogue, model, content, ann_threshold, users)
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
            slot=slot,
        )

    # ---- model slots ----------------------------------------------------------------------------
    @property
    def slots(self) -> dict[str, ModelInfo]:
        """The loaded slots and the model each serves, the primary first."""
        return dict(self._infos)

    def has_slot(self, slot: str) -> bool:
        return slot in self._states

    def slot_info(self, slot: str | None = None) -> ModelInfo:
        """The model a slot serves (the primary slot when ``slot`` is None)."""
        return self._infos[self._slot_name(slot)]

    def _slot_name(self, slot: str | None) -> str:
        if slot is None:
            return self.primary
        if slot not in self._states:
            loaded = ", ".join(self._states)
            raise NotFoundError(f"no model slot {slot!r} is loaded; loaded: {loaded}")
        return slot

    def _state(self, slot: str | None) -> ItemState:
        if slot is None:
            return self._states[self.primary]
        return self._states[self._slot_name(slot)]

    def set_slot(
        self,
        slot: str,
        model: Recommender,
        model_info: ModelInfo,
        ann_threshold: int | VectorBackend = 20_000,
    ) -> None:
        """Serve ``model`` from ``slot`` (added or replaced) over the shared catalogue and
        histories; the other slots keep serving untouched.

        Items the model knows and the catalogue lacks join the catalogue as inactive items
        (they can be scored but are not recommended until the store activates them).
        """
        with self._write_lock:
            states = dict(self._states)
            primary = states[self.primary]
            known = model.items.ids.tolist() if model is not None else []  # None: popularity
            missing = [i for i in known if primary.catalogue.position(i) < 0]
            catalogue = primary.catalogue
            for item_id in missing:
                catalogue, _, _ = catalogue.with_item(
                    item_id, title=None, attributes={}, active=False
                )
            if missing:
                states = {name: with_catalogue(st, catalogue) for name, st in states.items()}
            users = (self.histories.users, self.histories.rows)
            built = build_item_state(catalogue, model, None, ann_threshold, users)
            states[slot] = with_content_of(built, states[self.primary])
            self._states = states
            self._infos = {**self._infos, slot: model_info}

    def drop_slot(self, slot: str) -> None:
        """Stop serving ``slot`` (the primary slot cannot be dropped)."""
        if slot == self.primary:
            raise ValueError(f"the primary slot {slot!r} cannot be unloaded")
        with self._write_lock:
            self._slot_name(slot)
            self._states = {k: v for k, v in self._states.items() if k != slot}
            self._infos = {k: v for k, v in self._infos.items() if k != slot}

    # ---- introspection ------------------------------------------------------------------------
    @property
    def _items(self) -> ItemState:
        return self._states[self.primary]

    @property
    def items(self) -> ItemState:
        return self._items

    @property
    def model_info(self) -> ModelInfo:
        """The model of the primary slot."""
        return self._infos[self.primary]

    @property
    def catalogue(self) -> Catalogue:
        return self._items.catalogue

    @property
    def model(self) -> Recommender | None:
        return self._items.model

    def slot_model(self, slot: str | None = None) -> Recommender | None:
        return self._state(slot).model

    @property
    def has_content(self) -> bool:
        return self._items.content is not None

    @property
    def n_items(self) -> int:
        return self._items.catalogue.n_items

    def has_item(self, item_id: str) -> bool:
        return self._items.catalogue.position(item_id) >= 0

    def known_to_model(self, user_id: str, slot: str | None = None) -> bool:
        """Whether the slot's model learned this user (and they were not purged since)."""
        st = self._state(slot)
        if st.model is None or self.histories.is_forgotten(user_id):
            return False
        return st.model_user(user_id) >= 0

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
        slot: str | None = None,
    ) -> Recommendations:
        """Top-k items for a user from a slot's model (the primary slot when None), filtered;
        unknown users get popularity (cold start)."""
        st = self._state(slot)
        cat = st.catalogue
        mask = filter_mask(filter, cat)
        hist_items, hist_weights, version = self.histories.versioned_row(user_id)
        if exclude_seen and len(hist_items):
            mask[hist_items] = False
        if exclude:
            rows = cat.positions_of(exclude)
            mask[rows[rows >= 0]] = False
        model_user = self._model_user(user_id, st)
        cold_start = (
            st.model is None or self.histories.is_forgotten(user_id) or st.model_user(user_id) < 0
        )
        if st.model is None or unscorable(st.model, model_user, len(hist_items)):
            idx, val = self._popular(cat, mask, k)
            items = self._scored(cat, idx, val)
            if explain:
                for item in items:
                    item.explanation = []
            return Recommendations(items, cold_start, "popularity")
        history = WarmHistory(hist_items, hist_weights, st.positions)
        by_model = model_user >= 0 or len(history) > 0
        if by_model:
            warm = None
            if exclude_seen and not exclude and self._prefetched:
                warm = self._prefetched.take(user_id, st, version, k, canonical_filter(filter))
            if warm is None:
                warm = self._model_top(st, (user_id, version), history, model_user, mask, k)
        else:  # only items the model never saw: popular warm items, content-ranked cold ones
            warm = self._popular(cat, st.positions.warm_part(mask), k)
        if st.positions.has_cold(cat.n_items):
            cold = self._cold_top(st, hist_items, hist_weights, mask, k)
            idx, val, is_cold = interleave(warm, cold, k, int((cold[1] > 0).sum()))
        else:  # every item is the model's: nothing to blend
            idx, val = warm[0][:k], warm[1][:k]
            is_cold = np.zeros(len(idx), dtype=bool)
        items = self._scored(cat, idx, val)
        if explain:
            for item, pos, from_cold in zip(items, idx, is_cold, strict=True):
                if from_cold:
                    item.explanation = self._explain_content(st, hist_items, hist_weights, int(pos))
                elif by_model:
                    item.explanation = self._explain_model(st, history.csr, int(pos))
                else:
                    item.explanation = []
        return Recommendations(items, cold_start, "model" if by_model else "popularity")

    def batches(self, slot: str | None = None) -> bool:
        """Whether the slot's model scores several users faster together (``engine.batch``)."""
        return batches_well(self._state(slot).model)

    def prefetch(
        self, user_ids: Sequence[str], k: int, filter: dict[str, Any] | None, slot: str | None
    ) -> int:
        """Score these users' top ``k`` (seen items excluded, ``filter`` applied) in one model
        call, for their requests to take (``engine.batch``); only for a model that scores
        users together faster. Returns how many lists were scored (0 below two users)."""
        st = self._state(slot)
        model = st.model
        if model is None or not batches_well(model):
            return 0
        rows = []
        for user_id in dict.fromkeys(user_ids):
            hist_items, hist_weights, version = self.histories.versioned_row(user_id)
            model_user = self._model_user(user_id, st)
            if unscorable(model, model_user, len(hist_items)):
                continue  # popularity: nothing to score
            history = WarmHistory(hist_items, hist_weights, st.positions)
            if model_user >= 0 or len(history) > 0:
                rows.append((user_id, version, history.csr, model_user))
        if len(rows) < 2:
            return 0
        mask = st.positions.model_mask(filter_mask(filter, st.catalogue))
        idx, val = model.recommend(
            stacked_rows([r[2] for r in rows], st.n_model),
            k,
            users=np.array([r[3] for r in rows], dtype=np.int64),
            exclude_seen=False,
            exclude=exclusion_rows([r[2] for r in rows], st.n_model),
            item_mask=mask,
        )
        key = canonical_filter(filter)
        for (user_id, version, _, _), i, v in zip(rows, idx, val, strict=True):
            keep = i >= 0
            top = Prefetched(st, version, k, key, st.positions.to_engine(i[keep]), v[keep])
            self._prefetched.put(user_id, top)
        return len(rows)

    def _model_top(
        self,
        st: ItemState,
        user: tuple[str, object],
        history: WarmHistory,
        model_user: int,
        mask: np.ndarray,
        k: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        model = st.model
        assert model is not None
        model_mask = st.positions.model_mask(mask)
        if st.model_search is not None and isinstance(model, FactorRecommender):
            vector = self._user_vector(st, user, history, model_user)
            idx, val = st.model_search.search(vector, k, model_mask)
            return st.positions.to_engine(idx), val
        users = np.array([model_user], dtype=np.int64)
        h = history.csr
        idx, val = model.recommend(h, k, users=users, exclude_seen=False, item_mask=model_mask)
        keep = idx[0] >= 0
        return st.positions.to_engine(idx[0][keep]), val[0][keep]

    def _user_vector(
        self, st: ItemState, user: tuple[str, object], history: WarmHistory, model_user: int
    ) -> np.ndarray:
        """The user's vector: learned, or folded in from ``history`` and remembered.

        A fold-in (e.g. an ALS least-squares solve) is reused while the user's history row is
        the one ``history`` was built from: ``user`` carries the row's version token, and rows
        are replaced, never edited, when they change.
        """
        model = st.model
        assert isinstance(model, FactorRecommender)
        users = np.array([model_user], dtype=np.int64)
        if model_user >= 0:
            ignores = not getattr(model, "uses_history_for_known_users", True)
            return model.user_vectors(NO_HISTORY if ignores else history.csr, users)[0]
        user_id, version = user
        key = (user_id, id(model))
        cached = self._folded.get(key)
        if cached is not None and cached[0] is version and cached[1] is model:
            return cached[2]
        vector = model.user_vectors(history.csr, users)[0]
        if len(self._folded) >= FOLDED_CACHE_SIZE:
            self._folded.clear()
        self._folded[key] = (version, model, vector)
        return vector

    def _cold_top(
        self,
        st: ItemState,
        hist_items: np.ndarray,
        hist_weights: np.ndarray,
        mask: np.ndarray,
        k: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Eligible items the served model cannot score (added after training), best first;
        only those with a positive score earn a regular share of the list."""
        cold = st.positions.cold(mask)
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
        vectors = st.content_search.vectors_at(positions[has])
        vector = hist_weights[has].astype(np.float32) @ vectors
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else None

    def _explain_model(
        self, st: ItemState, h: sp.csr_matrix, position: int
    ) -> list[dict[str, Any]]:
        assert st.model is not None
        pairs = st.model.explain(h, st.positions.model_index(position), top=EXPLAIN_TOP)
        engine_position = st.positions.engine_position
        return [self._because(st.catalogue, engine_position(i), w) for i, w in pairs]

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
        return [
            self._because(st.catalogue, int(items[j]), float(votes[j]))
            for j in order
            if votes[j] > 0
        ]

    @staticmethod
    def _because(cat: Catalogue, position: int, weight: float) -> dict[str, Any]:
        return {
            "item_id": cat.ids.external(position),
            "title": cat.title(position),
            "weight": weight,
        }

    # ---- live updates -------------------------------------------------------------------------
    def apply_events(
        self,
        user_ids: list[str],
        item_ids: list[str],
        event_types: list[str],
        values: list[float | None],
    ) -> set[str]:
        """Add stored events to the users' live histories; returns the users touched.

        Unknown items and events the weighting drops are skipped; one event goes the single
        row path, a batch the vectorised one (``UserHistories.add_many``).
        """
        weights = self.weighting.weight_list(event_types, values)
        position = self._items.catalogue.positions.get
        positions = np.fromiter(
            (position(str(i), -1) for i in item_ids), dtype=np.int64, count=len(item_ids)
        )
        keep = (positions >= 0) & ~np.isnan(weights)
        if not keep.all():
            user_ids = [u for u, k in zip(user_ids, keep.tolist(), strict=True) if k]
            positions, weights = positions[keep], weights[keep]
        if len(user_ids) == 1:
            self.histories.add(user_ids[0], positions.astype(np.int32), weights)
        else:
            self.histories.add_many(user_ids, positions, weights)
        return set(user_ids)

    def set_history(self, user_id: str, events: pd.DataFrame) -> None:
        """Replace a user's history with ``events`` (item_id, event_type, value, timestamp)."""
        if self.history_since is not None and len(events):
            events = events[events["timestamp"] >= self.history_since]
        if len(events) == 0:
            self.histories.replace(user_id, np.empty(0, np.int64), np.empty(0, np.float32))
            return
        weights = self.weighting.weights(
            events["event_type"].astype(object), events["value"].astype(float)
        )
        positions = self._items.catalogue.positions_of(events["item_id"].astype(str).tolist())
        keep = (positions >= 0) & ~np.isnan(weights)
        self.histories.replace(user_id, positions[keep], weights[keep])

    def forget_user(self, user_id: str) -> None:
        """Remove every trace of a user from memory (history, popularity, folded-in vector,
        learned vector use)."""
        self.histories.forget(user_id)
        for key in [key for key in self._folded if key[0] == user_id]:
            self._folded.pop(key, None)

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
        record = {"item_id": item_id, "title": title, "text": text}
        return self.upsert_items([{**record, "attributes": attributes, "active": active}]) == 1

    def upsert_items(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Add or update many catalogue items at once; returns how many are new.

        ``records`` are item records (``item_id``, ``title``, ``text``, ``attributes``,
        ``active``); a repeated id takes the later record. The same as ``upsert_item`` per
        record, but the catalogue is rebuilt and the content model copied and asked to embed
        once for the batch instead of once per item.
        """
        latest = {str(r["item_id"]): r for r in records}
        if not latest:
            return 0
        attributes = {i: dict(r.get("attributes") or {}) for i, r in latest.items()}
        with self._write_lock:
            states = self._states
            catalogue, positions, is_new = states[self.primary].catalogue.with_items(
                [
                    (i, r.get("title"), attributes[i], bool(r.get("active", True)))
                    for i, r in latest.items()
                ]
            )
            updated = {name: with_catalogue(st, catalogue) for name, st in states.items()}
            first = updated[self.primary]
            if first.content is not None and first.content_search is not None:
                ids = list(latest)
                texts = [
                    item_text_of(r.get("title"), r.get("text"), attributes[i])
                    for i, r in latest.items()
                ]
                shared = first.content
                first = updated[self.primary] = with_content_items(first, ids, positions, texts)
                for name, st in updated.items():
                    if name == self.primary:
                        continue
                    if st.model is shared:  # a content model served in another slot too
                        updated[name] = with_content_items(st, ids, positions, texts)
                    else:
                        updated[name] = with_content_of(st, first)
            self._states = updated
            return sum(is_new)
