"""The contract every ``Recommender`` must honour, as a pytest mixin.

A model's test module subclasses ``RecommenderContract`` and names a factory::

    class TestALSContract(RecommenderContract):
        model_factory = staticmethod(lambda: ALSRecommender(factors=16, iterations=5))

and inherits tests for the typed config (``get_params``/``from_params`` round trip, unknown
and out-of-range parameters rejected with a ``ConfigError`` naming the valid ones), fitting,
the shape and order of ``recommend``, exclusion and filters, padding, determinism, fold-in for
unknown users, empty histories, ``similar_items``, ``explain``, save/load (memory-mapped too,
config included) and a quality floor against popularity on a held-out split. The data
defaults to ``planted_dataset()`` (users favour the items of one of four clusters, named by the
``genres`` attribute), small enough that the whole contract runs in a few seconds for a light
model.

Class attributes tune the contract for models that legitimately differ:

* ``personalized`` (True): the model's answer depends on the history, so fold-in answers
  must favour the history's cluster and the model must beat popularity. Popularity opts out.
* ``similar_items_relevant`` (True): ``similar_items`` favours same-cluster items.
* ``deterministic_fit`` (True): two fits from the factory give the same recommendations.
* ``min_cluster_precision`` (0.5): floor for the share of same-cluster items (chance 0.25).
* ``popularity_margin`` (0.1): the model's recall@10 must exceed popularity's by this
  relative margin.
* ``liked_weight`` (1.0) and ``relevant_min_weight`` (None): for rating models, the stars of
  a liked history item and the rating from which a held-out item counts as relevant.

The fitted model is shared by the tests of one class (class-scoped fixtures), so tests must
not mutate it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.errors import ConfigError
from recstack.models.base import Recommender
from recstack.models.catalog import config_class, model_class, validate_params
from recstack.models.config import ModelConfig, field_bounds
from recstack.testing.data import planted_dataset

HOLDOUT_PER_USER = 3
K = 10


def holdout_split(dataset: Dataset, per_user: int = HOLDOUT_PER_USER) -> tuple[Dataset, Dataset]:
    """Split off each user's last ``per_user`` interactions (by time) as the test set.

    Users with no more than ``per_user`` interactions keep everything in train.
    """
    counts = np.bincount(dataset.user_idx, minlength=dataset.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(dataset.n_interactions) - starts[dataset.user_idx]
    from_end = counts[dataset.user_idx] - 1 - position
    test = (from_end < per_user) & (counts[dataset.user_idx] > per_user)
    return dataset.subset(~test), dataset.subset(test)


def recall_at_k(recommended: np.ndarray, truth: sp.csr_matrix, k: int = K) -> float:
    """Mean over rows with any truth of ``|top-k ∩ truth| / min(k, |truth|)``."""
    truth = sp.csr_matrix(truth)
    values = []
    for row in range(truth.shape[0]):
        relevant = truth.indices[truth.indptr[row] : truth.indptr[row + 1]]
        if len(relevant) == 0:
            continue
        hits = np.isin(recommended[row, :k], relevant).sum()
        values.append(hits / min(k, len(relevant)))
    return float(np.mean(values)) if values else 0.0


def item_clusters(dataset: Dataset) -> np.ndarray | None:
    """First ``genres`` entry of each item as an integer cluster id, or None without metadata."""
    genres = dataset.item_attribute("genres")
    if all(g is None for g in genres):
        return None
    labels = [g[0] if isinstance(g, list | tuple) and g else str(g) for g in genres]
    _, codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64)


def out_of_range_value(config: type[ModelConfig]) -> tuple[str, Any] | None:
    """A parameter with a declared bound and a value just outside it, or None if none has one."""
    for name in config.model_fields:
        bounds = field_bounds(config, name)
        if "ge" in bounds:
            return name, bounds["ge"] - 1
        if "gt" in bounds:
            return name, bounds["gt"] - 1
        if "le" in bounds:
            return name, bounds["le"] + 1
        if "lt" in bounds:
            return name, bounds["lt"] + 1
    return None


def _history_rows(item_lists: list[list[int]], n_items: int, weight: float = 1.0) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(item_lists)), [len(x) for x in item_lists])
    cols = np.concatenate([np.asarray(x, dtype=np.int64) for x in item_lists]) if rows.size else []
    data = np.full(len(rows), weight, dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(item_lists), n_items))


def _state_arrays(model: Recommender) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for value in model._state().values():
        if sp.issparse(value):
            out.extend([value.data, value.indices, value.indptr])
        else:
            out.append(np.asarray(value) if not isinstance(value, np.ndarray) else value)
    return [a for a in out if a.size > 0]


class RecommenderContract:
    """Pytest mixin: subclass it in a ``Test*`` class and set ``model_factory``."""

    model_factory: ClassVar[Callable[[], Recommender]]
    dataset_factory: ClassVar[Callable[[], Dataset]] = staticmethod(planted_dataset)
    personalized: ClassVar[bool] = True
    similar_items_relevant: ClassVar[bool] = True
    deterministic_fit: ClassVar[bool] = True
    min_cluster_precision: ClassVar[float] = 0.5
    popularity_margin: ClassVar[float] = 0.1
    # Rating models read a history's weights as stars: liked items weigh this much.
    liked_weight: ClassVar[float] = 1.0
    # Held-out interactions weighing less than this are not relevant (None: all are).
    relevant_min_weight: ClassVar[float | None] = None

    # ---- shared fixtures (one fit per test class) ------------------------------------------
    @pytest.fixture(scope="class")
    def contract_data(self) -> tuple[Dataset, Dataset, Dataset]:
        """``(full, train, test)``: the dataset and its per-user time holdout."""
        full = type(self).dataset_factory()
        train, test = holdout_split(full)
        return full, train, test

    @pytest.fixture(scope="class")
    def contract_model(self, contract_data) -> Recommender:
        """The model fitted on the train split."""
        _, train, _ = contract_data
        model = type(self).model_factory()
        returned = model.fit(train)
        assert returned is model, "fit must return self"
        return model

    @pytest.fixture(scope="class")
    def contract_histories(self, contract_data) -> sp.csr_matrix:
        _, train, _ = contract_data
        return train.matrix

    # ---- fitting and metadata ----------------------------------------------------------------
    def test_fit_records_meta(self, contract_model, contract_data) -> None:
        _, train, _ = contract_data
        meta = contract_model.meta
        assert meta.model == contract_model.name
        assert meta.data_fingerprint == train.fingerprint
        assert meta.n_items == train.n_items == contract_model.n_items
        assert meta.n_users == train.n_users
        assert meta.n_interactions == train.n_interactions
        assert meta.train_seconds >= 0.0
        assert meta.trained_at
        assert "numpy" in meta.versions and "recstack" in meta.versions
        assert meta.params == contract_model.params

    def test_registered_in_catalog_with_defaults(self, contract_model) -> None:
        klass = type(contract_model)
        assert model_class(contract_model.name) is klass
        assert config_class(contract_model.name) is klass.config_class
        assert set(contract_model.params) == set(klass.defaults)
        assert klass().get_params() == klass.defaults

    # ---- typed config ------------------------------------------------------------------------
    def test_config_is_typed_and_documented(self, contract_model) -> None:
        config = type(contract_model).config_class
        assert issubclass(config, ModelConfig)
        assert config.model_config.get("extra") == "forbid"
        assert isinstance(contract_model.config, config)
        for name, field in config.model_fields.items():
            assert field.description, f"{config.__name__}.{name} needs a description"
        assert out_of_range_value(config) is not None, "declare a range on some parameter"

    def test_get_params_from_params_round_trip(self, contract_model) -> None:
        klass = type(contract_model)
        params = contract_model.get_params()
        assert params == contract_model.params == contract_model.config.model_dump()
        assert all(not isinstance(v, dict | list) for v in params.values()), "params are flat"
        json.dumps(params)  # flat and JSON-able: CLI, API, MLflow and TOML all take it
        again = klass.from_params(params)
        assert type(again) is klass and again.get_params() == params
        assert again.config == contract_model.config
        assert validate_params(contract_model.name, params) == params
        params["copy"] = True  # get_params hands out a copy
        assert "copy" not in contract_model.get_params()

    def test_unknown_parameter_names_valid_ones(self, contract_model) -> None:
        klass = type(contract_model)
        for make in (
            lambda: klass(no_such_parameter_xyz=1),
            lambda: klass.from_params({"no_such_parameter_xyz": 1}),
            lambda: validate_params(contract_model.name, {"no_such_parameter_xyz": 1}),
        ):
            with pytest.raises(ConfigError, match="unknown parameter") as caught:
                make()
            message = str(caught.value)
            assert contract_model.name in message and "no_such_parameter_xyz" in message
            assert all(name in message for name in klass.defaults), message
            assert isinstance(caught.value, ValueError)  # callers catching ValueError still work

    def test_out_of_range_parameter_names_valid_ones(self, contract_model) -> None:
        klass = type(contract_model)
        name, value = out_of_range_value(klass.config_class) or ("", None)
        for make in (
            lambda: klass(**{name: value}),
            lambda: validate_params(contract_model.name, {name: value}),
        ):
            with pytest.raises(ConfigError) as caught:
                make()
            message = str(caught.value)
            assert contract_model.name in message and f"{name}={value!r}" in message, message
            assert all(param in message for param in klass.defaults), message
            assert ">" in message or "<" in message, "the message shows the valid ranges"

    # ---- recommend ---------------------------------------------------------------------------
    def test_recommend_shapes_and_order(self, contract_model, contract_histories) -> None:
        h = contract_histories
        users = np.arange(h.shape[0])
        idx, val = contract_model.recommend(h, K, users=users)
        assert idx.shape == (h.shape[0], K) and val.shape == (h.shape[0], K)
        assert idx.dtype == np.int64 and val.dtype == np.float32
        assert (idx >= 0).all() and (idx < contract_model.n_items).all()
        assert np.isfinite(val).all()
        assert (np.diff(val, axis=1) <= 1e-6).all(), "scores must be sorted best first"
        assert all(len(set(row)) == K for row in idx.tolist()), "no item twice in a row"

    def test_recommend_excludes_seen(self, contract_model, contract_histories) -> None:
        h = contract_histories
        idx, _ = contract_model.recommend(h, K, users=np.arange(h.shape[0]), exclude_seen=True)
        seen = h[np.arange(h.shape[0])[:, None], idx].toarray()
        assert not seen.any()

    def test_recommend_without_exclusion_can_return_seen(
        self, contract_model, contract_histories
    ) -> None:
        h = contract_histories
        idx, _ = contract_model.recommend(h, K, users=np.arange(h.shape[0]), exclude_seen=False)
        assert idx.shape == (h.shape[0], K) and (idx >= 0).all()

    def test_recommend_honours_exclude(self, contract_model, contract_histories) -> None:
        h = contract_histories[:20]
        users = np.arange(20)
        first, _ = contract_model.recommend(h, K, users=users)
        banned = sp.csr_matrix(
            (np.ones(60, np.float32), (np.repeat(users, 3), first[:, :3].ravel())),
            shape=h.shape,
        )
        idx, _ = contract_model.recommend(h, K, users=users, exclude=banned)
        for row in range(20):
            assert not set(idx[row]) & set(first[row, :3])
            assert not set(idx[row]) & set(h[row].indices)

    def test_recommend_honours_item_mask(self, contract_model, contract_histories) -> None:
        h = contract_histories[:20]
        n_items = contract_model.n_items
        mask = np.arange(n_items) % 3 == 0
        idx, _ = contract_model.recommend(h, K, users=np.arange(20), item_mask=mask)
        assert mask[idx[idx >= 0]].all()
        per_row = np.zeros((20, n_items), dtype=bool)
        allowed = [np.arange(row, row + 30) % n_items for row in range(20)]
        for row, items in enumerate(allowed):
            per_row[row, items] = True
        idx, _ = contract_model.recommend(h, K, users=np.arange(20), item_mask=per_row)
        for row in range(20):
            assert set(idx[row][idx[row] >= 0]) <= set(allowed[row].tolist())

    def test_recommend_pads_when_few_items_eligible(
        self, contract_model, contract_histories
    ) -> None:
        h = contract_histories[:1]
        seen = set(h.indices.tolist())
        unseen = [i for i in range(contract_model.n_items) if i not in seen][:3]
        mask = np.zeros(contract_model.n_items, dtype=bool)
        mask[unseen] = True
        mask[list(seen)[:2]] = True  # seen items stay excluded even when allowed
        idx, val = contract_model.recommend(h, K, users=np.array([0]), item_mask=mask)
        assert sorted(idx[0, :3].tolist()) == sorted(unseen)
        assert (idx[0, 3:] == -1).all()
        assert np.isfinite(val[0, :3]).all() and np.isneginf(val[0, 3:]).all()

    def test_recommend_is_repeatable(self, contract_model, contract_histories) -> None:
        h = contract_histories[:30]
        a = contract_model.recommend(h, K, users=np.arange(30))
        b = contract_model.recommend(h, K, users=np.arange(30))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])

    def test_fit_is_deterministic(self, contract_model, contract_data) -> None:
        if not type(self).deterministic_fit:
            pytest.skip("model declares a non-deterministic fit")
        _, train, _ = contract_data
        again = type(self).model_factory().fit(train)
        h = train.matrix[:40]
        a, _ = contract_model.recommend(h, K, users=np.arange(40))
        b, _ = again.recommend(h, K, users=np.arange(40))
        np.testing.assert_array_equal(a, b)

    # ---- unknown users and empty histories --------------------------------------------------
    def test_unknown_users_are_folded_in(self, contract_model, contract_histories) -> None:
        h = contract_histories[:25]
        unknown = np.full(25, -1)
        idx, val = contract_model.recommend(h, K, users=unknown)
        assert idx.shape == (25, K) and (idx >= 0).all() and np.isfinite(val).all()
        seen = h[np.arange(25)[:, None], idx].toarray()
        assert not seen.any()
        folded = contract_model.fold_in(h)
        assert np.asarray(folded).shape[0] == 25

    def test_fold_in_favours_history_cluster(self, contract_model, contract_data) -> None:
        if not type(self).personalized:
            pytest.skip("model is not personalized")
        _, train, _ = contract_data
        clusters = item_clusters(train)
        if clusters is None:
            pytest.skip("dataset has no genres to define clusters")
        popularity = np.diff(train.matrix.tocsc().indptr)
        lists = []
        for c in np.unique(clusters):
            members = np.flatnonzero(clusters == c)
            lists.append(members[np.argsort(-popularity[members], kind="stable")][:6].tolist())
        h = _history_rows(lists, train.n_items, type(self).liked_weight)
        idx, _ = contract_model.recommend(h, K, users=np.full(len(lists), -1))
        share = [
            np.mean(clusters[idx[row][idx[row] >= 0]] == c)
            for row, c in enumerate(np.unique(clusters))
        ]
        chance = 1.0 / len(lists)
        assert np.mean(share) >= max(self.min_cluster_precision, chance), share

    def test_empty_history(self, contract_model) -> None:
        h = sp.csr_matrix((2, contract_model.n_items), dtype=np.float32)
        idx, val = contract_model.recommend(h, K, users=np.array([-1, -1]))
        assert idx.shape == (2, K)
        assert (idx >= 0).all() and np.isfinite(val).all()
        assert all(len(set(row)) == K for row in idx.tolist())

    # ---- item-to-item -----------------------------------------------------------------------
    def test_similar_items_exclude_self(self, contract_model) -> None:
        items = np.arange(min(30, contract_model.n_items))
        idx, val = contract_model.similar_items(items, K)
        assert idx.shape == (len(items), K)
        for row, item in enumerate(items):
            assert item not in idx[row]
        assert (np.diff(val, axis=1) <= 1e-6).all()

    def test_similar_items_favour_same_cluster(self, contract_model, contract_data) -> None:
        if not type(self).similar_items_relevant:
            pytest.skip("model's similar_items are not expected to follow clusters")
        _, train, _ = contract_data
        clusters = item_clusters(train)
        if clusters is None:
            pytest.skip("dataset has no genres to define clusters")
        popularity = np.diff(train.matrix.tocsc().indptr)
        items = np.argsort(-popularity, kind="stable")[:20]
        idx, _ = contract_model.similar_items(items, K)
        share = [np.mean(clusters[idx[r][idx[r] >= 0]] == clusters[i]) for r, i in enumerate(items)]
        chance = 1.0 / len(np.unique(clusters))
        assert np.mean(share) >= max(self.min_cluster_precision, chance), share

    def test_explain_returns_history_items(self, contract_model, contract_histories) -> None:
        h = contract_histories[:5]
        idx, _ = contract_model.recommend(h, K, users=np.arange(5))
        for row in range(5):
            history = h[row]
            reasons = contract_model.explain(history, int(idx[row, 0]), top=3)
            assert len(reasons) <= 3
            assert {item for item, _ in reasons} <= set(history.indices.tolist())
            weights = [w for _, w in reasons]
            assert weights == sorted(weights, reverse=True)
            if type(self).personalized:
                assert reasons, "the top recommendation of a personalized model has a reason"
        empty = sp.csr_matrix((1, contract_model.n_items), dtype=np.float32)
        assert contract_model.explain(empty, 0) == []

    # ---- persistence ------------------------------------------------------------------------
    def test_save_load_round_trip(self, contract_model, contract_histories, tmp_path) -> None:
        path = contract_model.save(tmp_path / "model")
        assert (Path(path) / "model.json").exists()
        h = contract_histories[:40]
        users = np.concatenate([np.arange(30), np.full(10, -1)])
        expected = contract_model.recommend(h, K, users=users)
        loaded = Recommender.load(path, mmap=False)
        assert type(loaded) is type(contract_model)
        assert loaded.config == contract_model.config
        assert loaded.get_params() == contract_model.get_params()
        manifest = json.loads((Path(path) / "model.json").read_text())
        assert manifest["name"] == contract_model.name
        assert manifest["params"] == contract_model.get_params()
        assert loaded.meta == contract_model.meta
        assert loaded.items == contract_model.items and loaded.users == contract_model.users
        got = loaded.recommend(h, K, users=users)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-5, atol=1e-6)

    def test_load_mmap_is_read_only_and_works(
        self, contract_model, contract_histories, tmp_path
    ) -> None:
        path = contract_model.save(tmp_path / "model")
        loaded = Recommender.load(path, mmap=True)
        arrays = _state_arrays(loaded)
        assert arrays, "a fitted model has state arrays"
        assert not any(a.flags.writeable for a in arrays), "mmap-loaded arrays must be shared"
        h = contract_histories[:40]
        users = np.concatenate([np.arange(30), np.full(10, -1)])
        expected = contract_model.recommend(h, K, users=users)
        got = loaded.recommend(h, K, users=users)
        np.testing.assert_array_equal(got[0], expected[0])
        sim_expected = contract_model.similar_items(np.arange(5), K)[0]
        np.testing.assert_array_equal(loaded.similar_items(np.arange(5), K)[0], sim_expected)

    # ---- quality floor ----------------------------------------------------------------------
    def test_beats_popularity_on_holdout(self, contract_model, contract_data) -> None:
        if not type(self).personalized:
            pytest.skip("model is not personalized")
        _, train, test = contract_data
        h = train.matrix
        truth = test.matrix
        floor = type(self).relevant_min_weight
        if floor is not None:
            truth = truth.multiply(truth >= floor).tocsr()
            truth.eliminate_zeros()
        users = np.arange(h.shape[0])
        idx, _ = contract_model.recommend(h, K, users=users)
        model_recall = recall_at_k(idx, truth)
        popularity = np.diff(h.tocsc().indptr).astype(np.float32)
        pop_scores = np.tile(popularity, (h.shape[0], 1))
        pop_scores[h.nonzero()] = -np.inf
        pop_idx = np.argsort(-pop_scores, axis=1, kind="stable")[:, :K]
        pop_recall = recall_at_k(pop_idx, truth)
        assert model_recall > pop_recall * (1 + self.popularity_margin), (
            model_recall,
            pop_recall,
        )
