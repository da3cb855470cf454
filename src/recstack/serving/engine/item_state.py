"""The item side of the engine: catalogue, models, vector searches, and how it is rebuilt.

An ``ItemState`` is immutable. Adding or changing a catalogue item builds a new one (copying
the content model rather than mutating it), and the engine swaps one reference, so a request
that started on the old state finishes on it consistently.

Positions: engine item positions are the served model's item indices followed by catalogue
items it never saw. ``to_content``/``from_content`` map engine positions to the content model's
own indices and back (-1 where one side lacks the item).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recstack.data.idmap import IdMap
from recstack.models.base import FactorRecommender, Recommender
from recstack.models.protocols import TextSearchable
from recstack.serving.engine.catalogue import Catalogue, positions_of
from recstack.serving.engine.positions import ModelPositions
from recstack.serving.engine.vectors import ItemVectorSearch, LazyCosineSearch, VectorBackend


@dataclass(frozen=True)
class ItemState:
    """The item side of the engine, replaced as a whole when the catalogue changes."""

    catalogue: Catalogue
    model: Recommender | None
    positions: ModelPositions
    model_search: ItemVectorSearch | None
    similar_search: ItemVectorSearch | LazyCosineSearch | None
    content: Any | None
    content_search: ItemVectorSearch | None
    to_content: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    from_content: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    model_users: dict[str, int] = field(default_factory=dict)
    n_model_users: int = 0

    def model_user(self, user_id: str) -> int:
        """The model's row of a user, -1 when the model never learned them (``model_users``
        may be the histories' own dict, whose users past ``n_model_users`` the model lacks)."""
        row = self.model_users.get(user_id, -1)
        return row if row < self.n_model_users else -1

    @property
    def n_model(self) -> int:
        """How many items the served model scores."""
        return self.positions.n_model


def history_row(items: np.ndarray, weights: np.ndarray, n_items: int) -> sp.csr_matrix:
    """One history as a ``(1, n_items)`` CSR."""
    return sp.csr_matrix(  # int32, as scipy stores them: int64 input costs a check and a cast
        (
            np.asarray(weights, dtype=np.float32),
            np.asarray(items, dtype=np.int32),
            np.array([0, len(items)], dtype=np.int32),
        ),
        shape=(1, n_items),
    )


class WarmHistory:
    """One user's history restricted to the items the served model knows, as model indices.

    The ``(1, n_model)`` CSR the model API takes is built on first use only: most requests
    (a known user of an ALS/BPR model, or a remembered fold-in) never need it.
    """

    __slots__ = ("_csr", "items", "n_model", "weights")

    def __init__(self, items: np.ndarray, weights: np.ndarray, positions: ModelPositions) -> None:
        items, weights = positions.warm(items, weights)
        n_model = positions.n_model
        self.items, self.weights, self.n_model = items, weights, n_model
        self._csr: sp.csr_matrix | None = None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def csr(self) -> sp.csr_matrix:
        if self._csr is None:
            self._csr = history_row(self.items, self.weights, self.n_model)
        return self._csr


def content_mask(st: ItemState, mask: np.ndarray) -> np.ndarray:
    """An engine-position mask carried over to content-model positions."""
    has = st.from_content >= 0
    out = np.zeros(len(st.from_content), dtype=bool)
    out[has] = mask[st.from_content[has]]
    return out


def item_text_of(title: str | None, text: str | None, attributes: dict[str, Any]) -> str:
    """The text the content model embeds for an item (the same recipe as at training)."""
    from recstack.models.text_encoder import item_text

    return item_text(title, text, attributes)


def content_with(content: TextSearchable, item_ids: list[str], texts: list[str]) -> Any:
    """A copy of the content model that also covers ``item_ids`` (the original is untouched)."""
    return content.with_items(list(item_ids), list(texts))


def catalogue_from(ids: IdMap, items: IdMap, meta: pd.DataFrame | None) -> Catalogue:
    """Catalogue over engine positions ``ids`` from the store's ``items`` and their ``meta``
    (rows follow ``items``); items missing from the store's catalogue are inactive."""
    n = len(ids)
    if meta is None:
        return Catalogue.build(ids, [None] * n, [{}] * n, [True] * n)
    rows = items.indices(ids.ids)
    present = rows >= 0
    safe = np.where(present, rows, 0)
    titles = np.asarray(meta["title"].to_numpy(dtype=object))[safe]
    attributes = np.asarray(meta["attributes"].to_numpy(dtype=object))[safe]
    active = np.asarray(meta["active"].to_numpy(dtype=bool))[safe] & present
    titles = np.where(present, titles, None)
    attributes = [
        a if p and isinstance(a, dict) else {} for a, p in zip(attributes, present, strict=True)
    ]
    return Catalogue.build(ids, titles.tolist(), attributes, active.tolist())


def build_item_state(
    catalogue: Catalogue,
    model: Recommender | None,
    content: Any | None,
    ann: int | VectorBackend,
    users: tuple[IdMap, dict[str, int]] | None = None,
) -> ItemState:
    """The item state for a catalogue, the served model and an optional content model.

    Factor models get an inner-product search over their item vectors (HNSW above ``ann``
    items) and a cosine search for similar items, built on first use. Every item of ``model``
    must be in ``catalogue``. ``users`` are the histories' users and their row dict: when
    the model's users are their first rows (a serving image in the model's order) the dict is
    shared rather than built again for 162K users.
    """
    if model is not None:
        positions = ModelPositions.align(model.items, catalogue.ids)
    else:
        positions = ModelPositions(0, catalogue.n_items)
    model_search = similar_search = None
    if isinstance(model, FactorRecommender):
        model_search = ItemVectorSearch.build(model.item_vectors(), ann)
        if model is not content:
            similar_search = LazyCosineSearch(model.similarity_vectors(), ann)
    content_search = None
    to_content = np.full(catalogue.n_items, -1, dtype=np.int64)
    from_content = np.zeros(0, dtype=np.int64)
    if content is not None:
        # unit-length text vectors: inner product is cosine, for search and similar items
        content_search = ItemVectorSearch.build(content.similarity_vectors(), ann)
        if content is model:
            similar_search = content_search
        to_content = content.items.indices(catalogue.ids.ids)
        from_content = catalogue.ids.indices(content.items.ids)
    model_users: dict[str, int] = {}
    n_model_users = 0
    if model is not None:
        n_model_users = len(model.users)
        shared = users is not None and np.array_equal(users[0].ids[:n_model_users], model.users.ids)
        model_users = users[1] if shared and users is not None else positions_of(model.users)
    return ItemState(
        catalogue,
        model,
        positions,
        model_search,
        similar_search,
        content,
        content_search,
        to_content,
        from_content,
        model_users,
        n_model_users,
    )


def with_catalogue(st: ItemState, catalogue: Catalogue) -> ItemState:
    """``st`` over a catalogue that changed or grew (new positions are cold for the model)."""
    n = catalogue.n_items
    if st.content is None or len(st.to_content) == n:
        return replace(st, catalogue=catalogue, positions=st.positions.grown(n))
    to_content = np.concatenate(
        [st.to_content, np.full(n - len(st.to_content), -1, dtype=np.int64)]
    )
    return replace(st, catalogue=catalogue, positions=st.positions.grown(n), to_content=to_content)


def with_content_of(st: ItemState, source: ItemState) -> ItemState:
    """``st`` sharing ``source``'s content model and search (one copy for every slot)."""
    return replace(
        st,
        content=source.content,
        content_search=source.content_search,
        to_content=source.to_content,
        from_content=source.from_content,
    )


def with_content_items(
    st: ItemState, item_ids: list[str], positions: list[int], texts: list[str]
) -> ItemState:
    """``st`` with the content model (one copy) covering added or re-described items; the
    copy embeds them all at once."""
    assert st.content is not None and st.content_search is not None
    content = content_with(st.content, item_ids, texts)
    rows = content.items.indices(item_ids)
    at = np.asarray(positions, dtype=np.int64)
    search = _covering(st.content_search, content.similarity_vectors())
    n = st.catalogue.n_items
    to_content = np.concatenate(
        [st.to_content, np.full(n - len(st.to_content), -1, dtype=np.int64)]
    )
    to_content[at] = rows
    from_content = np.concatenate(
        [st.from_content, np.full(len(content.items) - len(st.from_content), -1, dtype=np.int64)]
    )
    from_content[rows] = at
    changes: dict[str, Any] = {
        "content": content,
        "content_search": search,
        "to_content": to_content,
        "from_content": from_content,
    }
    if st.model is st.content:
        assert st.model_search is not None
        grew = rows >= st.n_model
        added = at[grew][np.argsort(rows[grew], kind="stable")]  # in model index order
        base = st.positions.from_model
        if base is None and np.array_equal(added, np.arange(st.n_model, st.n_model + len(added))):
            model_positions = ModelPositions(st.n_model + len(added), n)
        else:
            base = np.arange(st.n_model) if base is None else base
            model_positions = ModelPositions.align_arrays(np.concatenate([base, added]), n)
        changes.update(
            model=content,
            positions=model_positions,
            model_search=_covering(st.model_search, content.item_vectors()),
            similar_search=search,
        )
    else:
        changes["positions"] = st.positions.grown(n)
    return replace(st, **changes)


def _covering(search: ItemVectorSearch, vectors: np.ndarray) -> ItemVectorSearch:
    """``search`` over a grown or re-described content model's ``vectors``.

    An exact search takes the new array whole. An HNSW index keeps its graph and the rows
    after it become its exact tail; a re-described item inside the graph keeps its old vector
    there until the next reload, as with ``upsert_item``.
    """
    if not search.approximate:
        return ItemVectorSearch(vectors, None, search.tail[:0])
    tail = np.asarray(vectors[len(search.vectors) :], dtype=np.float32)
    return replace(search, tail=tail)
