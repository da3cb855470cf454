"""TextSearchable: the content model is recognised by what it can do, not by its name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recstack.data.dataset import Dataset
from recstack.models import TextSearchable
from recstack.models import content as content_module
from recstack.models.catalog import MODELS, create_model
from recstack.models.content import ContentRecommender
from recstack.models.text_encoder import TEXT_DIM


def fake_encode(texts, batch_size: int = 256, progress: bool = False) -> np.ndarray:
    """Deterministic unit vectors from the text (the real encoder needs torch)."""
    out = np.zeros((len(texts), TEXT_DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        out[row, sum(map(ord, text or "")) % TEXT_DIM] = 1.0
    return out


@pytest.fixture
def fitted(monkeypatch) -> ContentRecommender:
    monkeypatch.setattr(content_module, "encode_texts", fake_encode)
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["alpha", "beta", "gamma"],
            "text": None,
            "attributes": [{}, {}, {}],
            "active": True,
        }
    )
    frame = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "c"], "weight": 1.0})
    return ContentRecommender().fit(Dataset.from_frame(frame, items=items))


def test_only_the_content_model_is_text_searchable() -> None:
    searchable = {name for name in MODELS if isinstance(create_model(name), TextSearchable)}
    assert searchable == {"content"}
    assert isinstance(ContentRecommender(), TextSearchable)


def test_with_items_returns_a_grown_copy_and_leaves_the_original(fitted) -> None:
    vectors = np.array(fitted.item_vectors())
    items, n_items = fitted.items, fitted.meta.n_items
    grown = fitted.with_items(["d", "a"], ["delta", "alpha again"])
    assert isinstance(grown, ContentRecommender) and grown is not fitted
    assert grown.items.to_list() == ["a", "b", "c", "d"] and grown.meta.n_items == 4
    assert grown.item_vectors().shape == (4, TEXT_DIM + 1)
    np.testing.assert_array_equal(grown.similarity_vectors()[3], fake_encode(["delta"])[0])
    np.testing.assert_array_equal(grown.similarity_vectors()[0], fake_encode(["alpha again"])[0])
    assert fitted.items is items and fitted.meta.n_items == n_items == 3
    np.testing.assert_array_equal(fitted.item_vectors(), vectors)
    assert grown.config == fitted.config
    idx, _ = grown.recommend(sp.csr_matrix((1, 4), dtype=np.float32), 4, users=np.array([-1]))
    assert sorted(idx[0].tolist()) == [0, 1, 2, 3]


def test_encode_query_is_in_the_similarity_space(fitted) -> None:
    query = fitted.encode_query("beta")
    assert query.shape == (TEXT_DIM,)
    idx, _ = fitted.search("beta", 1)
    assert fitted.items.external(int(idx[0])) == "b"
