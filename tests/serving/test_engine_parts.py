"""The engine's parts without HTTP: filters, catalogue updates, histories, ANN search."""

from __future__ import annotations

import doctest
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.data.idmap import IdMap
from recstack.models.base import FactorRecommender, as_histories
from recstack.serving.api.errors import InvalidRequestError
from recstack.serving.engine import blend, catalogue
from recstack.serving.engine.catalogue import Catalogue
from recstack.serving.engine.core import Engine
from recstack.serving.engine.filters import compile_filter, parse_filter
from recstack.serving.engine.histories import UserHistories
from recstack.serving.engine.vectors import ItemVectorSearch


def test_doctests():
    for module in (blend, catalogue):
        assert doctest.testmod(module).failed == 0


@pytest.fixture
def small() -> Catalogue:
    return Catalogue.build(
        IdMap(["a", "b", "c", "d"]),
        ["A", "B", "C", "D"],
        [
            {"genres": ["Action", "Comedy"], "duration": 30},
            {"genres": "Drama", "duration": 90},
            {"genres": ["Action"], "year": 1999},
            {"duration": 45.0},
        ],
        [True, True, True, False],
    )


def allowed(spec: Any, cat: Catalogue) -> list[str]:
    return cat.ids.externals(np.flatnonzero(compile_filter(spec, cat)))


def test_filter_language(small):
    assert allowed(None, small) == ["a", "b", "c"]  # active only by default
    assert allowed({"genres": {"in": ["Action"]}}, small) == ["a", "c"]
    assert allowed({"genres": ["Comedy", "Drama"]}, small) == ["a", "b"]
    assert allowed({"genres": "Drama"}, small) == ["b"]
    assert allowed({"genres": {"nin": ["Action"]}}, small) == ["b"]
    assert allowed({"duration": {"gte": 10, "lte": 60}}, small) == ["a"]
    assert allowed({"duration": {"gt": 30}, "active": None}, small) == ["b", "d"]
    assert allowed({"duration": 45}, small) == []  # d matches but is inactive
    assert allowed({"duration": {"eq": 45}, "active": False}, small) == ["d"]
    assert allowed({"year": {"lt": 2000}}, small) == ["c"]
    assert allowed({"item_id": {"in": ["a", "b", "zzz"]}}, small) == ["a", "b"]
    assert allowed({"item_id": {"nin": ["a"]}, "genres": {"in": ["Action"]}}, small) == ["c"]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (
            {"colour": "red"},
            "unknown filter attribute 'colour'; known attributes: duration, genres, year",
        ),
        ({"genres": {"like": "Act"}}, "unknown filter operator 'like'"),
        ({"genres": {"in": "Action"}}, "needs a list"),
        ({"duration": {"gte": "ten"}}, "needs a number"),
        ({"genres": {"gte": 3}}, "no numeric values"),
        ({"active": "yes"}, "'active' must be"),
        ({"genres": {}}, "no operator"),
        ({"genres": [{"x": 1}]}, "strings, numbers or booleans"),
    ],
)
def test_filter_errors_name_the_problem(small, spec, fragment):
    with pytest.raises(InvalidRequestError, match=fragment):
        compile_filter(spec, small)


def test_parse_filter_text():
    assert parse_filter('{"genres": {"in": ["A"]}}') == {"genres": {"in": ["A"]}}
    assert parse_filter("") is None and parse_filter(None) is None
    with pytest.raises(InvalidRequestError, match="JSON object"):
        parse_filter("[1, 2]")


def test_catalogue_updates_touch_only_the_item(small):
    updated, index, is_new = small.with_item(
        "b", title="B2", attributes={"genres": ["Action"], "year": 2005}, active=True
    )
    assert (index, is_new) == (1, False)
    assert allowed({"genres": "Action"}, updated) == ["a", "b", "c"]
    assert "s:Drama" not in updated.attributes["genres"].members
    assert allowed({"duration": {"gte": 0}}, updated) == ["a"]  # b lost its duration
    assert allowed({"year": {"gt": 2000}}, updated) == ["b"]
    assert allowed({"genres": "Drama"}, small) == ["b"]  # the original is untouched
    grown, index, is_new = updated.with_item(
        "e", title="E", attributes={"mood": "calm"}, active=True
    )
    assert (index, is_new, grown.n_items) == (4, True, 5)
    assert allowed({"mood": "calm"}, grown) == ["e"]
    assert len(grown.attributes["duration"].numbers) == 5
    assert grown.title(4) == "E" and allowed(None, grown) == ["a", "b", "c", "e"]


def test_histories_live_rows_and_popularity():
    matrix = sp.csr_matrix(np.array([[1, 0, 2, 0], [0, 1, 1, 0]], dtype=np.float32))
    h = UserHistories(IdMap(["x", "y"]), matrix)
    assert h.popularity(5).tolist() == [1, 1, 2, 0, 0]
    h.add("x", np.array([2, 3, 3]), np.array([1.0, 1.0, 0.5], dtype=np.float32))
    items, weights = h.row("x")
    assert dict(zip(items.tolist(), weights.tolist(), strict=True)) == {0: 1.0, 2: 3.0, 3: 1.5}
    assert h.is_changed("x") and not h.is_changed("y")
    assert h.popularity(4).tolist() == [1, 1, 2, 1]
    h.add("z", np.array([1]), np.array([1.0], dtype=np.float32))  # a brand-new user
    assert h.popularity(4).tolist() == [1, 2, 2, 1] and h.n_users == 3
    h.replace("y", np.array([3]), np.array([2.0], dtype=np.float32))
    assert h.popularity(4).tolist() == [1, 1, 1, 2]
    h.forget("y")
    assert h.row("y")[0].tolist() == [] and h.is_forgotten("y") and not h.is_forgotten("x")
    assert h.popularity(4).tolist() == [1, 1, 1, 1]
    h.forget("x")
    assert h.row("x")[0].tolist() == [] and h.popularity(4).tolist() == [0, 1, 0, 0]


def test_vector_search_tail_and_mask():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    search = ItemVectorSearch.build(vectors, ann_threshold=1000)
    extra = rng.normal(size=(3, 8)).astype(np.float32)
    grown = search.with_added(extra)
    query = rng.normal(size=8).astype(np.float32)
    everything = np.vstack([vectors, extra]) @ query
    idx, val = grown.search(query, 5)
    assert idx.tolist() == np.argsort(-everything)[:5].tolist()
    mask = np.zeros(53, dtype=bool)
    mask[[3, 51, 52]] = True
    idx, val = grown.search(query, 10, mask)
    assert sorted(idx.tolist()) == [3, 51, 52] and np.allclose(val, everything[idx])
    assert search.n_items == 50  # the original did not grow


class RandomFactors(FactorRecommender):
    """A factor model with fixed random vectors (what ANN search sees in production)."""

    name: ClassVar[str] = "random-factors"
    defaults: ClassVar[dict[str, Any]] = {}

    def _fit(self, dataset: Dataset, progress: bool = False) -> None:
        rng = np.random.default_rng(7)
        self.user_factors = rng.normal(size=(dataset.n_users, 16)).astype(np.float32)
        self.item_factors = rng.normal(size=(dataset.n_items, 16)).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.item_factors

    def user_vectors(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        h = as_histories(histories, self.n_items)
        out = np.asarray(h @ self.item_factors, dtype=np.float32)
        if users is not None:
            known = np.asarray(users) >= 0
            out[known] = self.user_factors[np.asarray(users)[known]]
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.user_factors, self.item_factors = state["user_factors"], state["item_factors"]


def test_ann_recall_through_the_engine_on_20k_items():
    n_users, n_items = 300, 20_000
    rng = np.random.default_rng(1)
    users = rng.integers(0, n_users, 3000)
    items = rng.integers(0, n_items, 3000)
    frame = pd.DataFrame({"user_id": users, "item_id": items, "weight": 1.0})
    catalogue = pd.DataFrame(
        {
            "item_id": [str(i) for i in range(n_items)],
            "title": None,
            "text": None,
            "attributes": [{"bucket": i % 50} for i in range(n_items)],
            "active": True,
        }
    )
    dataset = Dataset.from_frame(frame, items=catalogue)
    model = RandomFactors().fit(dataset)
    engine = Engine.from_dataset(dataset, model, ann_threshold=5_000)
    assert engine.items.model_search.approximate
    vectors = model.item_vectors()
    for spec in (None, {"bucket": {"lt": 25}}, {"bucket": 7}):
        mask = compile_filter(spec, engine.catalogue)
        recalls = []
        for user in dataset.users.ids[:100]:
            result = engine.recommend(user, 10, exclude_seen=True, filter=spec).items
            assert len(result) == 10
            got = {r.item_id for r in result}
            u = model.users.index(user)
            scores = vectors @ model.user_factors[u]
            eligible = mask.copy()
            eligible[engine.histories.row(user)[0]] = False
            scores[~eligible] = -np.inf
            exact = {str(i) for i in np.argsort(-scores)[:10]}
            assert all(eligible[engine.catalogue.position(i)] for i in got)
            recalls.append(len(got & exact) / 10)
        assert np.mean(recalls) >= 0.95, (spec, np.mean(recalls))


def test_live_event_weights_match_the_event_weighting(planted_ds, als_model):
    from recstack.data.weights import EventWeighting

    weighting = EventWeighting(
        type_weight={"view": 1.0, "rate": 1.5, "purchase": 4.0}, use_value=("rate",), min_value=2.0
    )
    engine = Engine.from_dataset(planted_ds, als_model, weighting=weighting)
    kinds = ["view", "rate", "rate", "rate", "purchase", "unknown", "rate"]
    values = [None, 4.0, 1.0, None, 3.0, None, float("nan")]
    small = engine.weighting.weight_list(kinds, values)
    reference = weighting.weights(
        pd.Series(kinds), pd.Series([np.nan if v is None else v for v in values])
    )
    assert np.allclose(small, reference, equal_nan=True)
    assert small[1] == 6.0 and np.isnan(small[2]) and small[3] == 1.5 and small[5] == 1.0
    large = engine.weighting.weight_list(kinds * 2000, values * 2000)  # the pandas path
    assert np.allclose(large, np.tile(reference, 2000), equal_nan=True)


def test_folded_in_vectors_are_reused_until_the_history_changes(planted_ds, als_model):
    engine = Engine.from_dataset(planted_ds, als_model)
    engine.apply_events(["fresh", "fresh"], ["i2", "i6"], ["view", "view"], [None, None])
    first = engine.recommend("fresh", 5)
    cached = engine._folded[("fresh", id(engine.model))][2]
    assert [i.item_id for i in engine.recommend("fresh", 5).items] == [
        i.item_id for i in first.items
    ]
    assert engine._folded[("fresh", id(engine.model))][2] is cached  # reused, not solved again
    engine.apply_events(["fresh"], ["i10"], ["complete"], [None])
    engine.recommend("fresh", 5)
    assert engine._folded[("fresh", id(engine.model))][2] is not cached
    assert not np.allclose(engine._folded[("fresh", id(engine.model))][2], cached)
    engine.forget_user("fresh")
    assert ("fresh", id(engine.model)) not in engine._folded
    # a known, unchanged user uses the learned vector and is never cached
    engine.recommend("u1", 5)
    assert ("u1", id(engine.model)) not in engine._folded
