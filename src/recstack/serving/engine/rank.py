"""Scores of exactly the items a caller brings, for one user: the engine side of ``/rank``.

Teams with their own candidate source ask how a user would rank *their* items. Every model
answers: a factor model scores the items from the user's vector, other models from their
dense scores, and a model with a reranker (``ItemScorer``, e.g. ``two_stage``) builds its
features for exactly those items — from the user's live history, so an event posted a
moment ago counts on the next request. Ids the catalogue lacks are reported, not fatal; items
the served model never saw are reported as unscored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from recstack.errors import InvalidRequestError, TooLargeError
from recstack.models.base import FactorRecommender
from recstack.serving.engine.discovery import fixed_lists
from recstack.serving.engine.item_state import ItemState, history_row
from recstack.serving.engine.results import ScoredItem

if TYPE_CHECKING:
    from recstack.serving.engine.core import Engine

MAX_RANK_ITEMS = 1000  # items per /rank request
EXPLAIN_TOP = 3


@runtime_checkable
class ItemScorer(Protocol):
    """A model that scores a given set of items itself (a reranker with features)."""

    def score_items(
        self,
        history: sp.csr_matrix,
        users: np.ndarray | None,
        items: Sequence[int],
        context: Mapping[str, Any] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def rank_features(
        self,
        history: sp.csr_matrix,
        users: np.ndarray | None,
        items: Sequence[int],
        context: Mapping[str, Any] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def contributions(
        self, history: sp.csr_matrix, users: np.ndarray | None, items: Sequence[int], top: int = 3
    ) -> dict[int, list[tuple[str, float]]]: ...


@dataclass
class Ranked:
    """The answer to a rank request."""

    items: list[ScoredItem]
    unknown: list[str]
    unscored: list[str]
    source: str
    features: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def check_items(item_ids: Sequence[str], limit: int = MAX_RANK_ITEMS) -> list[str]:
    """The distinct ids in request order; an empty or over-long list is a request error.

    >>> check_items(["a", "b", "a"])
    ['a', 'b']
    """
    if not item_ids:
        raise InvalidRequestError("items is empty: pass the ids of the items to rank")
    if len(item_ids) > limit:
        raise TooLargeError(f"at most {limit} items can be ranked at once, got {len(item_ids)}")
    return list(dict.fromkeys(str(i) for i in item_ids))


def _user_inputs(engine: Engine, st: ItemState, user_id: str) -> tuple[sp.csr_matrix, np.ndarray]:
    hist_items, hist_weights = st.positions.warm(*engine.histories.row(user_id))
    h = history_row(hist_items, hist_weights, st.n_model)
    return h, np.array([engine._model_user(user_id, st)], dtype=np.int64)


def model_scores(
    engine: Engine,
    st: ItemState,
    user_id: str,
    indices: np.ndarray,
    context: Mapping[str, Any] | None,
) -> np.ndarray:
    """The slot model's scores of model item ``indices`` for the user (float64)."""
    model = st.model
    assert model is not None
    h, users = _user_inputs(engine, st, user_id)
    if isinstance(model, ItemScorer):
        idx, val = model.score_items(h, users, indices, context)
        lookup = dict(zip(idx.tolist(), val.tolist(), strict=True))
        return np.array([lookup[int(i)] for i in indices], dtype=np.float64)
    if isinstance(model, FactorRecommender):
        vector = model.user_vectors(h, users)[0]
        return np.asarray(model.item_vectors())[indices] @ vector
    return np.asarray(model.score(h, users), dtype=np.float64)[0][indices]


def rank_items(
    engine: Engine,
    user_id: str,
    item_ids: Sequence[str],
    *,
    context: Mapping[str, Any] | None = None,
    slot: str | None = None,
    explain: bool = False,
) -> Ranked:
    """``item_ids`` scored for ``user_id`` by a slot's model, best first.

    Without a model, or for a user with no history the model can use, items are ranked by
    live popularity (``source`` says which).
    """
    ids = check_items(item_ids)
    st = engine._state(slot)
    cat = st.catalogue
    positions = cat.positions_of(ids)
    unknown = [i for i, p in zip(ids, positions.tolist(), strict=True) if p < 0]
    positions = positions[positions >= 0]
    h_items, _ = engine.histories.row(user_id)
    folds_in = not fixed_lists(st.model)
    personal = st.model is not None and (
        engine._model_user(user_id, st) >= 0
        or (folds_in and len(st.positions.warm(h_items, h_items)[0]) > 0)
    )
    unscored: list[str] = []
    if personal:
        indices = st.positions.model_indices(positions)
        unscored = cat.ids.externals(positions[indices < 0])
        positions, indices = positions[indices >= 0], indices[indices >= 0]
        scores = model_scores(engine, st, user_id, indices, context)
        source = "model"
    else:
        scores = engine.histories.popularity(cat.n_items)[positions].astype(np.float64)
        source = "popularity"
    order = np.argsort(-scores, kind="stable")
    positions, scores = positions[order], scores[order]
    items = engine._scored(cat, positions, scores.astype(np.float32))
    out = Ranked(items, unknown, list(unscored), source)
    if explain and personal:
        _explain(engine, st, user_id, out, positions)
    return out


def _explain(
    engine: Engine, st: ItemState, user_id: str, out: Ranked, positions: np.ndarray
) -> None:
    """ "Because you liked X" from the model, plus the reranker's top feature contributions."""
    model = st.model
    assert model is not None
    h, users = _user_inputs(engine, st, user_id)
    indices = st.positions.model_indices(positions)
    for item, index in zip(out.items, indices.tolist(), strict=True):
        pairs = model.explain(h, index, top=EXPLAIN_TOP)
        item.explanation = [
            engine._because(st.catalogue, st.positions.engine_position(i), w) for i, w in pairs
        ]
    if isinstance(model, ItemScorer):
        contrib = model.contributions(h, users, indices, top=EXPLAIN_TOP)
        for item, index in zip(out.items, indices.tolist(), strict=True):
            out.features[item.item_id] = [
                {"feature": name, "contribution": value} for name, value in contrib.get(index, [])
            ]


def user_rank_features(
    engine: Engine,
    user_id: str,
    item_ids: Sequence[str],
    *,
    context: Mapping[str, Any] | None = None,
    slot: str | None = None,
) -> dict[str, dict[str, float]]:
    """The reranker's input features per item id for the user, as the next request sees them
    (for inspection and tests; empty for models without a reranker)."""
    st = engine._state(slot)
    model = st.model
    if not isinstance(model, ItemScorer):
        return {}
    positions = st.catalogue.positions_of(check_items(item_ids))
    indices = st.positions.model_indices(positions[positions >= 0])
    indices = indices[indices >= 0]
    h, users = _user_inputs(engine, st, user_id)
    idx, features = model.rank_features(h, users, indices, context)
    names = list(getattr(model, "feature_names", [f"f{j}" for j in range(features.shape[1])]))
    ids = st.catalogue.ids.externals(st.positions.to_engine(idx))
    return {
        item_id: dict(zip(names, row.astype(float).tolist(), strict=True))
        for item_id, row in zip(ids, features, strict=True)
    }
