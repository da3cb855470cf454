"""ContentRecommender and the shared text encoder, on real all-MiniLM-L6-v2 embeddings."""

from __future__ import annotations

import doctest
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

pytest.importorskip("sentence_transformers")

from recstack.data.dataset import Dataset  # noqa: E402
from recstack.errors import ConfigError, MissingExtraError  # noqa: E402
from recstack.models import content as content_module  # noqa: E402
from recstack.models import text_encoder as text_encoder_module  # noqa: E402
from recstack.models.base import Recommender  # noqa: E402
from recstack.models.content import ContentRecommender  # noqa: E402
from recstack.models.text_encoder import (  # noqa: E402
    encode_texts,
    item_text,
    item_texts,
    load_text_model,
)
from recstack.testing.contract import RecommenderContract  # noqa: E402
from recstack.testing.data import planted_frame  # noqa: E402

pytestmark = pytest.mark.torch

CATALOGUE = {
    "py1": "python programming basics",
    "py2": "advanced python programming",
    "art1": "watercolor painting",
    "art2": "oil painting techniques for landscapes",
    "cook1": "baking sourdough bread at home",
    "cook2": "italian pasta cooking class",
}


class TestContentContract(RecommenderContract):
    model_factory = staticmethod(ContentRecommender)


@pytest.fixture(scope="module")
def catalogue_data() -> Dataset:
    items = pd.DataFrame(
        {
            "item_id": list(CATALOGUE),
            "title": list(CATALOGUE.values()),
            "text": None,
            "attributes": [{} for _ in CATALOGUE],
            "active": True,
        }
    )
    inter = pd.DataFrame(
        {
            "user_id": ["coder", "coder", "artist", "cook"],
            "item_id": ["py1", "py2", "art1", "cook1"],
            "weight": 1.0,
            "timestamp": [1, 2, 3, 4],
        }
    )
    return Dataset.from_frame(inter, items=items)


@pytest.fixture
def model(catalogue_data: Dataset) -> ContentRecommender:
    return ContentRecommender().fit(catalogue_data)


def test_encode_texts_shape_norm_and_empty() -> None:
    vectors = encode_texts(["hello world", "", None, "   "])  # type: ignore[list-item]
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors[1], vectors[2])  # None and blank encode like ""
    np.testing.assert_array_equal(vectors[1], vectors[3])
    assert encode_texts([]).shape == (0, 384)


def test_item_text_joins_title_text_and_category_words() -> None:
    assert item_text("Intro", "Learn things", {"tags": ["a", "b"], "level": 2}) == (
        "Intro. Learn things. a b"
    )
    assert item_text(None, "body only", None) == "body only"
    meta = pd.DataFrame({"title": [None, None], "text": [None, None], "attributes": [{}, {}]})
    assert item_texts(meta) is None


def test_similar_text_means_similar_items(model: ContentRecommender) -> None:
    items = model.items
    idx, sims = model.similar_items(items.indices(["py1", "art1", "cook1"]), 2)
    assert items.external(idx[0, 0]) == "py2"
    assert items.external(idx[1, 0]) == "art2"
    assert items.external(idx[2, 0]) == "cook2"
    cos = model.item_similarity(items.indices(["py1"]))[0]
    assert cos[items.index("py2")] > cos[items.index("art1")] + 0.3


def test_user_vector_is_weighted_mean_of_history(model: ContentRecommender) -> None:
    v = model.similarity_vectors()
    h = sp.csr_matrix(np.array([[3.0, 1.0, 0, 0, 0, 0]], dtype=np.float32))
    expected = 3 * v[0] + v[1]
    expected /= np.linalg.norm(expected)
    user = model.user_vectors(h, None)[0]
    np.testing.assert_allclose(user[:384], expected, rtol=1e-5, atol=1e-6)
    assert user[384] == pytest.approx(model.params["popularity_weight"])
    idx, _ = model.recommend(sp.csr_matrix((1, 6), dtype=np.float32), 1, users=np.array([0]))
    assert model.users.external(0) == "coder"
    assert model.items.external(idx[0, 0]) in {"py1", "py2"}  # fitted profile of a known user


def test_add_items_is_recommendable_and_similar_at_once(
    model: ContentRecommender, tmp_path
) -> None:
    before = model.n_items
    new = model.add_items(["py3", "py1"], ["python programming for data science", CATALOGUE["py1"]])
    assert new.tolist() == [before, model.items.index("py1")]
    assert model.n_items == before + 1 and model.item_vectors().shape == (before + 1, 385)
    assert model.similarity_vectors().shape == (before + 1, 384)
    assert model.item_vectors()[new[0], 384] == 0.0  # no interactions yet: no prior
    coder = model.items.indices(["py1", "py2"])
    history = sp.csr_matrix((np.ones(2), ([0, 0], coder)), shape=(1, before))  # pre-growth width
    idx, _ = model.recommend(history, 1, users=np.array([-1]))
    assert model.items.external(idx[0, 0]) == "py3"
    sim, _ = model.similar_items(np.array([new[0]]), 2)
    assert set(model.items.externals(sim[0])) == {"py1", "py2"}
    loaded = Recommender.load(model.save(tmp_path / "content"))
    np.testing.assert_array_equal(loaded.item_vectors(), model.item_vectors())
    assert loaded.items == model.items


def test_add_items_rejects_mismatched_lengths(model: ContentRecommender) -> None:
    with pytest.raises(ValueError, match="2 ids but 1 texts"):
        model.add_items(["a", "b"], ["only one"])
    assert model.add_items([], []).shape == (0,)


def test_encode_query_search_ranking(model: ContentRecommender) -> None:
    query = model.encode_query("how to paint with watercolours")
    assert query.shape == (384,) and np.linalg.norm(query) == pytest.approx(1.0, abs=1e-5)
    idx, scores = model.search("how to paint with watercolours", k=3)
    assert model.items.external(idx[0]) == "art1"
    assert model.items.externals(idx[:2]) == ["art1", "art2"]
    np.testing.assert_allclose(scores, (model.similarity_vectors() @ query)[idx], rtol=1e-6)
    code = model.items.externals(model.search("learn to code in python", k=2)[0])
    assert set(code) == {"py1", "py2"}


def test_half_life_weights_recent_interactions() -> None:
    items = pd.DataFrame({"item_id": ["py1", "art1"], "title": ["python code", "watercolor art"]})
    inter = pd.DataFrame(
        {"user_id": ["u", "u"], "item_id": ["py1", "art1"], "weight": 1.0,
         "timestamp": [0, 30 * 86_400]}
    )  # fmt: skip
    data = Dataset.from_frame(inter, items=items)
    plain = ContentRecommender().fit(data)
    decayed = ContentRecommender(half_life_days=1).fit(data)
    empty = sp.csr_matrix((1, 2), dtype=np.float32)
    v_plain = plain.user_vectors(empty, np.array([0]))[0]
    v_decay = decayed.user_vectors(empty, np.array([0]))[0]
    art = data.items.index("art1")
    py = data.items.index("py1")
    vectors = plain.item_vectors()
    assert v_plain @ vectors[art] == pytest.approx(v_plain @ vectors[py], abs=1e-5)
    np.testing.assert_allclose(v_decay[:384], vectors[art, :384], atol=1e-4)  # month-old ~ 2^-30


def test_scores_add_the_popularity_prior(catalogue_data: Dataset) -> None:
    """score = cos(profile, item) + w * log(1 + users) / log(1 + most users)."""
    model = ContentRecommender(popularity_weight=0.3).fit(catalogue_data)
    text_only = ContentRecommender(popularity_weight=0.0).fit(catalogue_data)
    items = model.items
    # every catalogue item but art2 and cook2 has one user: prior 1 (the top), unseen ones 0
    prior = model.item_vectors()[:, 384]
    assert prior.tolist() == [0.0 if i in ("art2", "cook2") else 1.0 for i in items.ids]
    h = sp.csr_matrix((np.ones(1), ([0], [items.index("art1")])), shape=(1, len(items)))
    cosine = text_only.score(h)[0]
    np.testing.assert_allclose(model.score(h)[0], cosine + 0.3 * prior, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        cosine, model.similarity_vectors() @ model.similarity_vectors()[items.index("art1")],
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
    # a stranger with no history is ranked by the prior alone: seen items first
    empty = sp.csr_matrix((1, len(items)), dtype=np.float32)
    idx, _ = model.recommend(empty, 4, users=np.array([-1]))
    assert set(items.externals(idx[0])) == {"py1", "py2", "art1", "cook1"}
    # similarity ignores the prior: art1's nearest item is art2 although art2 has no users
    sim, _ = model.similar_items(np.array([items.index("art1")]), 1)
    assert items.external(sim[0, 0]) == "art2"


def test_fit_without_item_text_is_a_config_error() -> None:
    inter, _ = planted_frame(n_users=5, n_items=6, per_user=2)
    with pytest.raises(ConfigError, match="content model needs item text"):
        ContentRecommender().fit(Dataset.from_frame(inter))
    items = pd.DataFrame({"item_id": ["i0"], "title": [None], "text": [None]})
    with pytest.raises(ConfigError, match="needs item text"):
        ContentRecommender().fit(Dataset.from_frame(inter, items=items))


@pytest.mark.parametrize("module", [content_module, text_encoder_module])
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_missing_sentence_transformers_names_the_text_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"recstack\[text\]") as info:
        load_text_model.__wrapped__()
    assert info.value.extra == "text"
