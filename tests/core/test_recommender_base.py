"""The shared Recommender machinery: top-k, masking, padding, save/load, on a hand-made model."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import scipy.sparse as sp

import recstack.models.base
from recstack.data import Dataset
from recstack.errors import ConfigError
from recstack.models.base import FactorRecommender, Recommender
from recstack.models.popularity import PopularityRecommender


class FixedFactors(FactorRecommender):
    """Item vectors given by hand; user vector = sum of history item vectors."""

    name = "fixed"
    defaults = {"scale": 1.0}

    def _fit(self, dataset: Dataset, progress: bool = False) -> None:
        self.vectors = np.eye(dataset.n_items, 2, dtype=np.float32) + 0.1

    def item_vectors(self) -> np.ndarray:
        return self.vectors

    def user_vectors(self, histories, users=None) -> np.ndarray:
        return np.asarray(histories @ self.vectors) * self.params["scale"]

    def _state(self):
        return {"vectors": self.vectors}

    def _set_state(self, state) -> None:
        self.vectors = state["vectors"]


def toy() -> Dataset:
    import pandas as pd

    df = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "c"], "weight": [1, 1, 1]})
    return Dataset.from_frame(df)


def test_base_doctests() -> None:
    assert doctest.testmod(recstack.models.base).failed == 0


def test_recommend_excludes_seen_filters_and_pads() -> None:
    m = FixedFactors().fit(toy())  # items a, b, c; vectors a=[1.1,.1], b=[.1,1.1], c=[.1,.1]
    h = sp.csr_matrix(np.array([[1, 0, 0]], dtype=np.float32))
    idx, val = m.recommend(h, k=3)
    # user vector [1.1, .1]: b scores .22, c .12, a is seen
    assert idx.tolist() == [[1, 2, -1]]
    assert val[0, 0] >= val[0, 1]


def test_recommend_ranks_by_dot_product() -> None:
    m = FixedFactors().fit(toy())
    h = sp.csr_matrix(np.array([[0, 0, 1]], dtype=np.float32))  # user vector [.1, .1]
    idx, val = m.recommend(h, k=2)
    # a and b both score .1*1.1+.1*.1 = .12; ties broken stably by index
    assert sorted(idx[0].tolist()) == [0, 1]
    np.testing.assert_allclose(val[0], [0.12, 0.12], rtol=1e-5)
    idx, _ = m.recommend(h, k=2, item_mask=np.array([False, True, True]), exclude_seen=False)
    assert idx[0].tolist() == [1, 2]
    ex = sp.csr_matrix(np.array([[0, 1, 0]], dtype=np.float32))
    idx, _ = m.recommend(h, k=3, exclude=ex)
    assert idx[0].tolist() == [0, -1, -1]


def test_save_load_round_trip_mmap(tmp_path) -> None:
    m = FixedFactors(scale=2.0).fit(toy())
    m.save(tmp_path / "m")
    loaded = FixedFactors.load(tmp_path / "m")  # not in the catalogue: load through the class
    assert isinstance(loaded, FixedFactors) and loaded.params["scale"] == 2.0
    assert isinstance(loaded.vectors, np.memmap)
    assert loaded.meta.data_fingerprint == toy().fingerprint
    h = sp.csr_matrix(np.array([[1, 1, 0]], dtype=np.float32))
    assert np.array_equal(loaded.recommend(h, 2)[0], m.recommend(h, 2)[0])
    assert loaded.items.to_list() == ["a", "b", "c"]


def test_similar_items_and_explain() -> None:
    m = FixedFactors().fit(toy())
    idx, _ = m.similar_items(np.array([0]), k=2)
    assert 0 not in idx[0]
    h = sp.csr_matrix(np.array([[1, 0, 1]], dtype=np.float32))
    top = m.explain(h, item=0)
    assert top[0][0] == 0  # item a explains itself most


class LearnedFactors(FactorRecommender):
    """Learned rows for known users; unknown users are the sum of their history's vectors."""

    name = "learned"
    defaults = {}

    def _fit(self, dataset: Dataset, progress: bool = False) -> None:
        self.item_factors = np.eye(dataset.n_items, 2, dtype=np.float32) + 0.1
        self.user_factors = np.full((dataset.n_users, 2), 7.0, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.item_factors

    def fold_in_vectors(self, histories) -> np.ndarray:
        return np.asarray(histories @ self.item_factors, dtype=np.float32)

    def _state(self):
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _set_state(self, state) -> None:
        self.user_factors, self.item_factors = state["user_factors"], state["item_factors"]


def test_user_vectors_learned_rows_for_known_users_fold_in_for_the_rest() -> None:
    m = LearnedFactors().fit(toy())
    h = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
    vectors = m.user_vectors(h, np.array([0, -1, 99]))  # 99: beyond the learned rows
    np.testing.assert_allclose(vectors[0], [7.0, 7.0])
    np.testing.assert_allclose(vectors[1:], m.item_factors[[1, 2]])
    np.testing.assert_allclose(m.user_vectors(h[:2], np.array([1, 0])), 7.0)  # all known
    np.testing.assert_allclose(m.fold_in(h), m.item_factors)


def test_factor_model_without_fold_in_says_what_to_implement() -> None:
    class NoFoldIn(LearnedFactors):
        fold_in_vectors = FactorRecommender.fold_in_vectors

    m = NoFoldIn().fit(toy())
    with pytest.raises(NotImplementedError, match="fold_in_vectors"):
        m.fold_in(sp.csr_matrix((1, 3), dtype=np.float32))


def test_defaults_only_model_gets_an_untyped_config() -> None:
    m = FixedFactors(scale=3)
    assert m.get_params() == {"scale": 3} and m.params == {"scale": 3}
    assert FixedFactors.from_params(m.get_params()).get_params() == {"scale": 3}
    with pytest.raises(ConfigError, match="fixed: unknown parameter 'speed'.*scale"):
        FixedFactors(speed=1)
    with pytest.raises(ValueError, match="unknown parameter"):  # still a ValueError
        FixedFactors(speed=1)


def test_params_view_cannot_change_the_config() -> None:
    m = FixedFactors(scale=2.0)
    m.params["scale"] = 5.0
    assert m.get_params() == {"scale": 2.0} and m.meta.params == {"scale": 2.0}


def saved_popularity(tmp_path) -> tuple[PopularityRecommender, dict]:
    model = PopularityRecommender(half_life_days=3.0).fit(toy())
    path = model.save(tmp_path / "pop")
    return model, json.loads((path / "model.json").read_text())


def rewrite_manifest(tmp_path, manifest: dict) -> None:
    (tmp_path / "pop" / "model.json").write_text(json.dumps(manifest))


def test_load_resolves_the_class_by_name_through_the_catalog(tmp_path) -> None:
    model, manifest = saved_popularity(tmp_path)
    # what model.json holds today: the class path (for older readers), the name and the params
    assert manifest["class"] == "recstack.models.popularity:PopularityRecommender"
    assert manifest["name"] == "popularity" and manifest["params"]["half_life_days"] == 3.0
    manifest["class"] = "os:system"  # never imported: the name decides
    rewrite_manifest(tmp_path, manifest)
    loaded = Recommender.load(tmp_path / "pop")
    assert type(loaded) is PopularityRecommender and loaded.config == model.config
    assert PopularityRecommender.load(tmp_path / "pop").get_params() == model.get_params()


def test_load_of_a_manifest_without_name_uses_the_class_path(tmp_path) -> None:
    model, manifest = saved_popularity(tmp_path)
    del manifest["name"]
    rewrite_manifest(tmp_path, manifest)
    assert Recommender.load(tmp_path / "pop").get_params() == model.get_params()
    manifest["class"] = "os:system"
    rewrite_manifest(tmp_path, manifest)
    with pytest.raises(ConfigError, match="names no model"):
        Recommender.load(tmp_path / "pop")


def test_load_of_an_unknown_model_name_is_a_config_error(tmp_path) -> None:
    _, manifest = saved_popularity(tmp_path)
    manifest["name"] = "no_such_model"
    rewrite_manifest(tmp_path, manifest)
    with pytest.raises(ConfigError, match="unknown model 'no_such_model'; known: popularity"):
        Recommender.load(tmp_path / "pop")


def test_load_checks_the_saved_model_is_the_class_asked_for(tmp_path) -> None:
    saved_popularity(tmp_path)
    with pytest.raises(ConfigError, match="holds a 'popularity' model, not a FactorRecommender"):
        FactorRecommender.load(tmp_path / "pop")


def test_load_validates_saved_params(tmp_path) -> None:
    _, manifest = saved_popularity(tmp_path)
    manifest["params"]["half_life_days"] = -1
    rewrite_manifest(tmp_path, manifest)
    with pytest.raises(ConfigError, match="half_life_days=-1"):
        Recommender.load(tmp_path / "pop")
