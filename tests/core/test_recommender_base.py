"""The shared Recommender machinery: top-k, masking, padding, save/load, on a hand-made model."""

from __future__ import annotations

import doctest

import numpy as np
import scipy.sparse as sp

import recstack.models.base
from recstack.data import Dataset
from recstack.models.base import FactorRecommender, Recommender


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
    loaded = Recommender.load(tmp_path / "m")
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
