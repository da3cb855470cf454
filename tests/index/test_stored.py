"""Saved HNSW graphs: built once per set of vectors, mapped after, still growable, pruned."""

from __future__ import annotations

import numpy as np
import pytest

from recstack.index import ExactIndex, stored
from recstack.index.stored import graph_key, load_or_build_hnsw

SETTINGS = {"M": 16, "ef_construction": 40, "ef_search": 64}


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((3_000, 16)).astype(np.float32)


def test_a_graph_is_built_once_then_mapped_with_the_same_answers(tmp_path, vectors):
    queries = np.random.default_rng(4).standard_normal((20, 16)).astype(np.float32)
    built = load_or_build_hnsw(tmp_path, vectors, **SETTINGS)
    saved = tmp_path / graph_key(vectors, 16, 40) / "index.faiss"
    written = saved.stat().st_mtime_ns
    mapped = load_or_build_hnsw(tmp_path, vectors.copy(), **{**SETTINGS, "ef_search": 96})
    assert not built._mapped and mapped._mapped and saved.stat().st_mtime_ns == written
    assert len(mapped) == 3_000 and mapped.ef_search == 96
    mapped.ef_search = built.ef_search = 64
    mapped._index.hnsw.efSearch = built._index.hnsw.efSearch = 64
    np.testing.assert_array_equal(mapped.search(queries, 10)[0], built.search(queries, 10)[0])
    truth, _ = ExactIndex().build(vectors).search(queries, 10)
    found, _ = mapped.search(queries, 10)
    recall = np.mean([len(set(a) & set(t)) / 10 for a, t in zip(found, truth, strict=True)])
    assert recall >= 0.95


def test_a_mapped_graph_grows_into_its_own_copy(tmp_path, vectors):
    load_or_build_hnsw(tmp_path, vectors, **SETTINGS)
    mapped = load_or_build_hnsw(tmp_path, vectors, **SETTINGS)
    extra = np.full((1, 16), 9.0, dtype=np.float32)
    mapped.add(extra)
    assert len(mapped) == 3_001 and not mapped._mapped
    idx, _ = mapped.search(extra, 1)
    assert idx[0, 0] == 3_000
    again = load_or_build_hnsw(tmp_path, vectors, **SETTINGS)  # the file is untouched
    assert len(again) == 3_000


def test_other_vectors_or_settings_get_their_own_graph(tmp_path, vectors):
    load_or_build_hnsw(tmp_path, vectors, **SETTINGS)
    changed = vectors.copy()
    changed[0, 0] += 1.0
    load_or_build_hnsw(tmp_path, changed, **SETTINGS)
    load_or_build_hnsw(tmp_path, vectors, **{**SETTINGS, "M": 8})
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 3


def test_a_damaged_graph_is_built_again(tmp_path, vectors):
    load_or_build_hnsw(tmp_path, vectors, **SETTINGS)
    saved = tmp_path / graph_key(vectors, 16, 40) / "index.faiss"
    saved.write_bytes(b"not a faiss index")
    rebuilt = load_or_build_hnsw(tmp_path, vectors, **SETTINGS)
    assert len(rebuilt) == 3_000 and saved.stat().st_size > 100_000


def test_only_the_most_recently_used_graphs_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(stored, "KEEP", 2)
    rng = np.random.default_rng(5)
    sets = [rng.standard_normal((50, 4)).astype(np.float32) for _ in range(3)]
    for v in sets:
        load_or_build_hnsw(tmp_path, v, **SETTINGS)
    kept = {p.name for p in tmp_path.iterdir() if p.is_dir()}
    assert kept == {graph_key(sets[1], 16, 40), graph_key(sets[2], 16, 40)}


def test_a_directory_that_cannot_be_written_still_gives_a_graph(tmp_path, vectors):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    index = load_or_build_hnsw(blocked / "graphs", vectors, **SETTINGS)
    assert len(index) == 3_000 and not index._mapped
