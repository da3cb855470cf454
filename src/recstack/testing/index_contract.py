"""The contract every ``VectorIndex`` must honour, as a pytest mixin.

An index's test module subclasses ``VectorIndexContract`` and names a factory of empty
indexes::

    class TestQdrantContract(VectorIndexContract):
        index_factory = staticmethod(lambda: QdrantIndex(":memory:"))

and inherits tests for the answer's shape and types, hand-computed top-k, scores equal to the
inner products, recall@10 against exact search, masks (restricting, padding, a selective
mask still returning every allowed item, nothing allowed), ``k`` beyond the index, ``add``,
bad input rejected with a clear ``ValueError``, an empty index, and save/load through
``load_index``. ``min_recall`` (1.0 for exact indexes) is the floor on recall@10 against
exact search over random vectors; approximate indexes may lower it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from recstack.index.base import VectorIndex
from recstack.index.exact import ExactIndex

N, DIM, K = 3_000, 16, 10


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each exact top-k row found in the approximate row (-1 padding ignored).

    >>> recall_at_k(np.array([[1, 2, 3], [4, 5, 6]]), np.array([[3, 2, 9], [4, 5, 6]]))
    0.8333333333333333
    """
    shares = []
    for a, e in zip(approx, exact, strict=True):
        truth = {int(x) for x in e if x >= 0}
        if truth:
            shares.append(len(truth & {int(x) for x in a if x >= 0}) / len(truth))
    return float(np.mean(shares)) if shares else 1.0


class VectorIndexContract:
    """Mixin of contract tests; subclasses set ``index_factory``."""

    index_factory: ClassVar[Callable[[], Any]]
    min_recall: ClassVar[float] = 0.95

    def make(self, vectors: np.ndarray) -> Any:
        return self.index_factory().build(vectors)

    @pytest.fixture(scope="class")
    def data(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((N, DIM)).astype(np.float32)
        queries = rng.standard_normal((40, DIM)).astype(np.float32)
        return vectors, queries

    @pytest.fixture(scope="class")
    def built(self, data: tuple[np.ndarray, np.ndarray]) -> Any:
        return self.make(data[0])

    def test_is_a_vector_index(self, built: Any) -> None:
        assert isinstance(built, VectorIndex)
        assert len(built) == N

    def test_hand_computed_top_k(self) -> None:
        vectors = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32)
        idx, scores = self.make(vectors).search(np.array([[2.0, 1.0]]), 3)
        # scores: 2, 1, 3, -2 -> items 2, 0, 1
        assert idx.tolist() == [[2, 0, 1]]
        np.testing.assert_allclose(scores, [[3.0, 2.0, 1.0]], rtol=1e-6)
        assert idx.dtype == np.int64 and scores.dtype == np.float32

    def test_shape_order_and_scores(self, built: Any, data: Any) -> None:
        vectors, queries = data
        idx, scores = built.search(queries, K)
        assert idx.shape == scores.shape == (len(queries), K)
        assert (idx >= 0).all() and (np.diff(scores, axis=1) <= 1e-5).all()
        expected = np.take_along_axis(queries @ vectors.T, idx, axis=1)
        np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
        assert all(len(set(row)) == K for row in idx.tolist())

    def test_recall_against_exact(self, built: Any, data: Any) -> None:
        vectors, queries = data
        truth, _ = ExactIndex().build(vectors).search(queries, K)
        assert recall_at_k(built.search(queries, K)[0], truth) >= self.min_recall

    def test_mask_restricts_and_pads(self) -> None:
        index = self.make(np.eye(5, dtype=np.float32))
        mask = np.array([False, True, False, True, False])
        idx, scores = index.search(np.array([[0.0, 0.5, 0.0, 0.9, 1.0]]), 4, mask=mask)
        assert idx.tolist() == [[3, 1, -1, -1]]
        np.testing.assert_allclose(scores[0, :2], [0.9, 0.5], rtol=1e-6)
        assert np.isneginf(scores[0, 2:]).all()
        none_allowed, vals = index.search(np.ones((2, 5)), 3, mask=np.zeros(5, dtype=bool))
        assert (none_allowed == -1).all() and np.isneginf(vals).all()

    def test_large_mask_only_allowed_items(self, built: Any, data: Any) -> None:
        vectors, queries = data
        mask = np.random.default_rng(3).random(N) < 0.3
        idx, _ = built.search(queries, K, mask=mask)
        truth, _ = ExactIndex().build(vectors).search(queries, K, mask=mask)
        assert (idx >= 0).all() and mask[idx].all()
        assert recall_at_k(idx, truth) >= self.min_recall

    def test_selective_mask_returns_every_allowed_item(self, built: Any, data: Any) -> None:
        _, queries = data
        few = np.zeros(N, dtype=bool)
        few[[5, 17, 900]] = True
        idx, vals = built.search(queries[:3], K, mask=few)
        assert all(sorted(row[:3]) == [5, 17, 900] for row in idx.tolist())
        assert (idx[:, 3:] == -1).all() and np.isneginf(vals[:, 3:]).all()
        mostly = np.ones(N, dtype=bool)
        mostly[idx[0, :1]] = False  # exclude one item: the rest still fills k
        idx2, _ = built.search(queries[:1], K, mask=mostly)
        assert (idx2 >= 0).all() and mostly[idx2].all()

    def test_k_larger_than_index_pads(self) -> None:
        idx, scores = self.make(np.eye(3, dtype=np.float32)).search(np.ones((1, 3)), 5)
        assert sorted(idx[0, :3].tolist()) == [0, 1, 2]
        assert idx[0, 3:].tolist() == [-1, -1] and np.isneginf(scores[0, 3:]).all()

    def test_add_appends_new_items(self) -> None:
        index = self.make(np.eye(3, dtype=np.float32))
        index.add(np.array([[0.0, 0.0, 5.0]], dtype=np.float32))
        assert len(index) == 4
        idx, scores = index.search(np.array([[0.0, 0.0, 1.0]]), 2)
        assert idx.tolist() == [[3, 2]]
        np.testing.assert_allclose(scores, [[5.0, 1.0]], rtol=1e-6)

    def test_bad_input_is_rejected_clearly(self) -> None:
        index = self.make(np.eye(3, dtype=np.float32))
        with pytest.raises(ValueError, match="dimension 2"):
            index.search(np.ones((1, 2)), 1)
        with pytest.raises(ValueError, match="one flag per indexed item"):
            index.search(np.ones((1, 3)), 1, mask=np.ones(2, dtype=bool))
        with pytest.raises(ValueError, match="dimension"):
            index.add(np.ones((1, 4), dtype=np.float32))
        with pytest.raises(ValueError, match="NaN"):
            self.index_factory().build(np.array([[np.nan, 1.0]]))

    def test_empty_index(self) -> None:
        index = self.make(np.zeros((0, 4), dtype=np.float32))
        idx, vals = index.search(np.ones((2, 4)), 3)
        assert idx.shape == (2, 3) and (idx == -1).all() and np.isneginf(vals).all()
        zero_k, _ = index.search(np.ones((2, 4)), 0)
        assert zero_k.shape == (2, 0)

    def test_save_load_round_trip(self, tmp_path: Path) -> None:
        from recstack.index import load_index

        rng = np.random.default_rng(2)
        vectors = rng.standard_normal((300, 8)).astype(np.float32)
        queries = rng.standard_normal((5, 8)).astype(np.float32)
        index = self.make(vectors)
        want = index.search(queries, 7)
        index.save(tmp_path / "idx")
        self.release(index)
        loaded = load_index(tmp_path / "idx")
        assert type(loaded) is type(index) and len(loaded) == 300
        got = loaded.search(queries, 7)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
        loaded.add(vectors[:2])
        assert len(loaded) == 302

    def release(self, index: Any) -> None:
        """Free what a saved index holds before it is loaded again (a locked directory)."""
