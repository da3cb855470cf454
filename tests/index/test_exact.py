"""ExactIndex: exact inner-product top-k, masks, padding, add and save/load."""

from __future__ import annotations

import numpy as np
import pytest

from recstack.index import ExactIndex, VectorIndex, load_index
from recstack.testing.index_contract import VectorIndexContract


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


def test_hand_computed_top_k() -> None:
    vectors = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32)
    index = ExactIndex().build(vectors)
    idx, scores = index.search(np.array([[2.0, 1.0]]), 3)
    # scores: 2, 1, 3, -2 -> items 2, 0, 1
    assert idx.tolist() == [[2, 0, 1]]
    assert scores.tolist() == [[3.0, 2.0, 1.0]]
    assert idx.dtype == np.int64 and scores.dtype == np.float32


def test_matches_numpy_on_random_vectors() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3_000, 16)).astype(np.float32)
    queries = rng.standard_normal((50, 16)).astype(np.float32)
    index = ExactIndex().build(vectors)
    idx, scores = index.search(queries, 10)
    np.testing.assert_array_equal(idx, brute_force(vectors, queries, 10))
    expected = np.take_along_axis(queries @ vectors.T, idx, axis=1)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_mask_restricts_and_pads() -> None:
    vectors = np.eye(5, dtype=np.float32)
    index = ExactIndex().build(vectors)
    mask = np.array([False, True, False, True, False])
    idx, scores = index.search(np.array([[0.0, 0.5, 0.0, 0.9, 1.0]]), 4, mask=mask)
    assert idx.tolist() == [[3, 1, -1, -1]]
    np.testing.assert_allclose(scores[0, :2], [0.9, 0.5])
    assert np.isneginf(scores[0, 2:]).all()
    none_allowed, _ = index.search(np.ones((2, 5)), 3, mask=np.zeros(5, dtype=bool))
    assert (none_allowed == -1).all()


def test_k_larger_than_index_pads() -> None:
    index = ExactIndex().build(np.eye(3, dtype=np.float32))
    idx, scores = index.search(np.ones((1, 3)), 5)
    assert sorted(idx[0, :3].tolist()) == [0, 1, 2]
    assert idx[0, 3:].tolist() == [-1, -1]


def test_add_appends_new_items() -> None:
    index = ExactIndex().build(np.eye(3, dtype=np.float32))
    index.add(np.array([[0.0, 0.0, 5.0]], dtype=np.float32))
    assert len(index) == 4
    idx, scores = index.search(np.array([[0.0, 0.0, 1.0]]), 2)
    assert idx.tolist() == [[3, 2]] and scores.tolist() == [[5.0, 1.0]]


def test_bad_input_is_rejected_clearly() -> None:
    index = ExactIndex().build(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="dimension 2"):
        index.search(np.ones((1, 2)), 1)
    with pytest.raises(ValueError, match="one flag per indexed item"):
        index.search(np.ones((1, 3)), 1, mask=np.ones(2, dtype=bool))
    with pytest.raises(ValueError, match="NaN"):
        ExactIndex().build(np.array([[np.nan, 1.0]]))


def test_save_load_round_trip_mmap(tmp_path) -> None:
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((200, 8)).astype(np.float32)
    queries = rng.standard_normal((5, 8)).astype(np.float32)
    index = ExactIndex().build(vectors)
    index.save(tmp_path / "idx")
    loaded = load_index(tmp_path / "idx", mmap=True)
    assert isinstance(loaded, ExactIndex) and isinstance(loaded, VectorIndex)
    assert not loaded.vectors.flags.writeable
    for got, want in zip(loaded.search(queries, 7), index.search(queries, 7), strict=True):
        np.testing.assert_array_equal(got, want)
    loaded.add(vectors[:2])  # a memory-mapped index still accepts new items
    assert len(loaded) == 202


def test_load_rejects_a_directory_without_manifest(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not a saved vector index"):
        load_index(tmp_path)


class TestExactContract(VectorIndexContract):
    index_factory = staticmethod(ExactIndex)
    min_recall = 1.0
