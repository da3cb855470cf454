"""The serving engine on the Qdrant backend: chosen by settings, same answers as exact search."""

from __future__ import annotations

import numpy as np
import pytest

from recstack.index import QdrantIndex
from recstack.serving.engine.core import Engine
from recstack.serving.engine.vectors import VectorBackend
from recstack.settings import Settings

pytest.importorskip("qdrant_client")


def test_settings_choose_the_backend(tmp_path) -> None:
    default = VectorBackend.of(Settings(home=tmp_path))
    assert (default.kind, default.qdrant_location) == ("faiss", ":memory:")
    chosen = VectorBackend.of(
        Settings(home=tmp_path, vector_backend="qdrant", qdrant_url="http://qdrant:6333")
    )
    assert (chosen.kind, chosen.qdrant_location) == ("qdrant", "http://qdrant:6333")
    with pytest.raises(ValueError, match="vector_backend"):
        Settings(home=tmp_path, vector_backend="annoy")


def test_engine_on_qdrant_answers_like_exact_search(planted_ds, als_model) -> None:
    exact = Engine.from_dataset(planted_ds, als_model, ann_threshold=10_000)
    qdrant = Engine.from_dataset(
        planted_ds, als_model, ann_threshold=VectorBackend(ann_threshold=50, kind="qdrant")
    )
    assert not exact.items.model_search.approximate
    assert isinstance(qdrant.items.model_search.index, QdrantIndex)
    spec = {"genres": "topic1"}
    for user in planted_ds.users.ids[:30]:
        for flt in (None, spec):
            want = [r.item_id for r in exact.recommend(user, 10, filter=flt).items]
            got = [r.item_id for r in qdrant.recommend(user, 10, filter=flt).items]
            assert got == want, (user, flt)


def test_served_over_http_from_qdrant(serve, als_model) -> None:
    with serve(als_model, vector_backend="qdrant", ann_threshold_items=50) as served:
        assert isinstance(served.engine.items.model_search.index, QdrantIndex)
        user = "u1"
        answer = served.recommend(user, k=5)
        scores = [item["score"] for item in answer["items"]]
        assert len(scores) == 5 and np.all(np.diff(scores) <= 1e-6)
