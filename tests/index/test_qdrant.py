"""QdrantIndex: the vector-index contract in local mode, payload filters, on-disk reuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recstack.index import ExactIndex, QdrantIndex, load_index, make_index
from recstack.index.payload_filter import where_mask
from recstack.testing.index_contract import VectorIndexContract

pytest.importorskip("qdrant_client")

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi"]


class TestQdrantMemoryContract(VectorIndexContract):
    index_factory = staticmethod(lambda: QdrantIndex(":memory:"))


class TestQdrantDiskContract(VectorIndexContract):
    """The same contract with the collection persisted in a local directory."""

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.root = tmp_path

    def make(self, vectors: np.ndarray) -> QdrantIndex:
        root = getattr(self, "root", None)
        if root is None:  # class-scoped fixtures run before the per-test directory exists
            return QdrantIndex(":memory:").build(vectors)
        return QdrantIndex(str(root / "qdrant")).build(vectors)

    index_factory = staticmethod(lambda: QdrantIndex(":memory:"))

    def release(self, index: QdrantIndex) -> None:
        index.close()


@pytest.fixture(scope="module")
def films() -> tuple[np.ndarray, list[dict], np.ndarray]:
    rng = np.random.default_rng(7)
    n = 2_000
    vectors = rng.standard_normal((n, 16)).astype(np.float32)
    payloads = [
        {
            "genre": sorted(rng.choice(GENRES, size=rng.integers(1, 3), replace=False).tolist()),
            "year": int(rng.integers(1950, 2020)),
        }
        for _ in range(n)
    ]
    queries = rng.standard_normal((20, 16)).astype(np.float32)
    return vectors, payloads, queries


@pytest.mark.parametrize(
    "where",
    [
        {"genre": "Comedy", "year": {"gte": 1990, "lt": 2000}},
        {"genre": ["Horror", "Sci-Fi"]},
        {"year": {"lte": 1951}},
        {"genre": "Western"},
    ],
)
def test_payload_filter_equals_exact_search_over_the_same_predicate(films, where) -> None:
    vectors, payloads, queries = films
    index = QdrantIndex().build(vectors, payloads)
    mask = where_mask(payloads, where)
    truth, truth_scores = ExactIndex().build(vectors).search(queries, 10, mask=mask)
    idx, scores = index.search_where(queries, 10, where)
    np.testing.assert_array_equal(idx, truth)
    np.testing.assert_allclose(scores, truth_scores, rtol=1e-5)
    for row in idx:
        for i in row[row >= 0]:
            assert where_mask([payloads[i]], where)[0]
    assert int(mask.sum()) == 0 or (idx[:, : min(10, int(mask.sum()))] >= 0).all()


def test_bad_filter_is_rejected_clearly(films) -> None:
    vectors, payloads, queries = films
    index = QdrantIndex().build(vectors[:50], payloads[:50])
    with pytest.raises(ValueError, match="'year'.*range takes keys"):
        index.search_where(queries, 5, {"year": {"after": 1990}})
    with pytest.raises(ValueError, match="50 vectors"):
        QdrantIndex().build(vectors[:50], payloads[:10])


def test_payloads_survive_save_and_load(films, tmp_path) -> None:
    vectors, payloads, queries = films
    index = QdrantIndex().build(vectors[:300], payloads[:300])
    where = {"genre": "Drama"}
    want = index.search_where(queries, 5, where)
    index.save(tmp_path / "q")
    loaded = load_index(tmp_path / "q")
    assert isinstance(loaded, QdrantIndex)
    np.testing.assert_array_equal(loaded.search_where(queries, 5, where)[0], want[0])


def test_content_named_collection_is_reused_on_disk(tmp_path) -> None:
    vectors = np.random.default_rng(1).standard_normal((200, 8)).astype(np.float32)
    first = QdrantIndex(str(tmp_path / "db")).build(vectors)
    name = first.collection
    first.close()
    second = QdrantIndex(str(tmp_path / "db"))
    second.build(vectors)  # same content: the stored collection is found, not rebuilt
    assert second.collection == name and len(second) == 200
    idx, _ = second.search(vectors[:3], 1)
    assert idx[:, 0].tolist() == [0, 1, 2] or len(set(idx[:, 0].tolist())) == 3
    second.close()


def test_make_index_chooses_the_backend() -> None:
    vectors = np.random.default_rng(2).standard_normal((100, 4)).astype(np.float32)
    assert isinstance(make_index(vectors, threshold=50, backend="qdrant"), QdrantIndex)
    assert isinstance(make_index(vectors, threshold=500, backend="qdrant"), ExactIndex)
    with pytest.raises(ValueError, match="unknown vector backend"):
        make_index(vectors, threshold=50, backend="annoy")


def test_a_rebuild_is_named_after_its_new_content() -> None:
    rng = np.random.default_rng(3)
    index = QdrantIndex().build(rng.standard_normal((50, 4)).astype(np.float32))
    first = index.collection
    index.build(rng.standard_normal((60, 4)).astype(np.float32))
    assert index.collection != first and len(index) == 60
    named = QdrantIndex(collection="items").build(np.eye(4, dtype=np.float32))
    assert named.collection == "items"
