"""FaissHNSWIndex: recall against exact search, filters that still return k, add, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from recstack.index import (
    EXACT_THRESHOLD,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    ExactIndex,
    FaissHNSWIndex,
    load_index,
    make_index,
)
from recstack.testing.index_contract import VectorIndexContract

N, DIM, K = 20_000, 32, 10


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(
        np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact, strict=True)])
    )


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    queries = rng.standard_normal((200, DIM)).astype(np.float32)
    return vectors, queries


@pytest.fixture(scope="module")
def hnsw(data) -> FaissHNSWIndex:
    # a light build keeps the test fast; recall is measured, not assumed
    return FaissHNSWIndex(M=32, ef_construction=40, ef_search=64).build(data[0])


@pytest.fixture(scope="module")
def exact(data) -> ExactIndex:
    return ExactIndex().build(data[0])


def test_recall_at_10_vs_exact(hnsw, exact, data) -> None:
    _, queries = data
    approx, scores = hnsw.search(queries, K)
    truth, _ = exact.search(queries, K)
    assert recall(approx, truth) >= 0.95
    assert approx.shape == (200, K) and approx.dtype == np.int64 and scores.dtype == np.float32
    assert (np.diff(scores, axis=1) <= 1e-5).all()
    np.testing.assert_allclose(
        scores, np.take_along_axis(queries @ data[0].T, approx, axis=1), rtol=1e-4, atol=1e-4
    )


def test_filtered_search_returns_only_allowed_items(hnsw, exact, data) -> None:
    _, queries = data
    mask = np.random.default_rng(3).random(N) < 0.3
    approx, _ = hnsw.search(queries, K, mask=mask)
    truth, _ = exact.search(queries, K, mask=mask)
    assert (approx >= 0).all() and mask[approx].all()
    assert recall(approx, truth) >= 0.95


def test_selective_filter_still_returns_k(hnsw, exact, data) -> None:
    _, queries = data
    mask = np.zeros(N, dtype=bool)
    mask[np.random.default_rng(4).choice(N, 25, replace=False)] = True
    approx, scores = hnsw.search(queries[:20], K, mask=mask)
    truth, truth_scores = exact.search(queries[:20], K, mask=mask)
    np.testing.assert_array_equal(approx, truth)  # small allowed sets are searched exactly
    np.testing.assert_allclose(scores, truth_scores, rtol=1e-5)
    few = np.zeros(N, dtype=bool)
    few[[5, 17, 900]] = True
    idx, vals = hnsw.search(queries[:2], K, mask=few)
    assert sorted(idx[0, :3].tolist()) == [5, 17, 900] and (idx[:, 3:] == -1).all()
    assert np.isneginf(vals[:, 3:]).all()


def test_add_save_load(tmp_path) -> None:
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((500, 8)).astype(np.float32)
    index = FaissHNSWIndex(M=16, ef_construction=40).build(vectors)
    new_item = np.full((1, 8), 10.0, dtype=np.float32)
    index.add(new_item)
    assert len(index) == 501
    idx, _ = index.search(np.ones((1, 8), dtype=np.float32), 1)
    assert idx.tolist() == [[500]]
    index.save(tmp_path / "hnsw")
    loaded = load_index(tmp_path / "hnsw")
    assert isinstance(loaded, FaissHNSWIndex) and len(loaded) == 501
    queries = rng.standard_normal((10, 8)).astype(np.float32)
    for got, want in zip(loaded.search(queries, 5), index.search(queries, 5), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.vectors(np.array([500])), new_item)


def test_empty_index_and_bad_queries() -> None:
    index = FaissHNSWIndex().build(np.zeros((0, 4), dtype=np.float32))
    idx, vals = index.search(np.ones((2, 4)), 3)
    assert (idx == -1).all() and np.isneginf(vals).all()
    index.add(np.eye(4, dtype=np.float32))
    assert index.search(np.array([[0, 0, 1.0, 0]]), 1)[0].tolist() == [[2]]
    with pytest.raises(ValueError, match="dimension"):
        index.search(np.ones((1, 5)), 1)


def test_make_index_picks_by_size() -> None:
    small = np.random.default_rng(6).standard_normal((100, 4)).astype(np.float32)
    assert isinstance(make_index(small), ExactIndex)
    assert isinstance(make_index(small, threshold=50), FaissHNSWIndex)
    assert EXACT_THRESHOLD > 100


def test_hnsw_settings_are_defined_once() -> None:
    default = FaissHNSWIndex()
    assert (default.M, default.ef_construction, default.ef_search) == (
        HNSW_M,
        HNSW_EF_CONSTRUCTION,
        HNSW_EF_SEARCH,
    )
    built = make_index(np.eye(8, 4, dtype=np.float32), threshold=4)
    assert isinstance(built, FaissHNSWIndex) and built.M == HNSW_M
    assert built._index.hnsw.efConstruction == HNSW_EF_CONSTRUCTION


class TestFaissHNSWContract(VectorIndexContract):
    index_factory = staticmethod(lambda: FaissHNSWIndex(M=16, ef_construction=40, ef_search=64))
