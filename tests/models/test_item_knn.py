"""ItemKNNRecommender: shrunk cosine on a toy matrix by hand, pruning, blocks, exact explain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import recstack.models.similarity as similarity
from recstack.data.dataset import Dataset
from recstack.models.item_knn import ItemKNNRecommender
from recstack.models.similarity import cosine_topk

# users x items; columns: i0 = (1,1,0), i1 = (1,1,1), i2 = (0,2,1)
TOY = np.array([[1, 1, 0], [1, 1, 2], [0, 1, 1]], dtype=np.float32)


def toy_dataset() -> Dataset:
    rows, cols = np.nonzero(TOY)
    frame = pd.DataFrame(
        {
            "user_id": [f"u{r}" for r in rows],
            "item_id": [f"i{c}" for c in cols],
            "weight": TOY[rows, cols],
        }
    )
    return Dataset.from_frame(frame)


def test_shrunk_cosine_by_hand() -> None:
    # dots: i0.i1 = 2, i0.i2 = 2, i1.i2 = 3; norms: sqrt2, sqrt3, sqrt5; shrink 1
    model = ItemKNNRecommender(k_neighbors=2, shrink=1.0).fit(toy_dataset())
    s01 = 2 / (np.sqrt(2) * np.sqrt(3) + 1)
    s02 = 2 / (np.sqrt(2) * np.sqrt(5) + 1)
    s12 = 3 / (np.sqrt(3) * np.sqrt(5) + 1)
    expected = np.array([[0, s01, s02], [s01, 0, s12], [s02, s12, 0]], dtype=np.float32)
    np.testing.assert_allclose(model.similarity.toarray(), expected, rtol=1e-6)


def test_keeps_top_k_neighbours_per_item() -> None:
    model = ItemKNNRecommender(k_neighbors=1, shrink=0.0).fit(toy_dataset())
    # cosines: 01 = 0.816, 02 = 0.632, 12 = 0.775 -> each item keeps its single best
    sim = model.similarity.toarray()
    assert (np.count_nonzero(sim, axis=1) == 1).all()
    assert np.argmax(sim, axis=1).tolist() == [1, 0, 1]


def test_score_is_history_times_similarity() -> None:
    model = ItemKNNRecommender(k_neighbors=2, shrink=0.0).fit(toy_dataset())
    h = sp.csr_matrix(np.array([[2.0, 0.0, 1.0]], dtype=np.float32))
    expected = np.array([2.0, 0.0, 1.0]) @ model.similarity.toarray()
    np.testing.assert_allclose(model.score(h)[0], expected, rtol=1e-6)
    idx, _ = model.recommend(h, 2)
    assert idx.tolist() == [[1, -1]]  # the only unseen item, then padding


def test_explain_reports_exact_votes() -> None:
    model = ItemKNNRecommender(k_neighbors=2, shrink=0.0).fit(toy_dataset())
    sim = model.similarity.toarray()
    h = sp.csr_matrix(np.array([[2.0, 0.0, 1.0]], dtype=np.float32))
    reasons = model.explain(h, 1, top=5)
    votes = {0: 2.0 * sim[0, 1], 2: 1.0 * sim[2, 1]}
    assert [i for i, _ in reasons] == sorted(votes, key=votes.get, reverse=True)
    for item, vote in reasons:
        assert vote == pytest.approx(votes[item], rel=1e-6)
    assert sum(v for _, v in reasons) == pytest.approx(model.score(h)[0, 1], rel=1e-5)


def test_normalize_makes_rows_sum_to_one() -> None:
    model = ItemKNNRecommender(k_neighbors=2, normalize=True).fit(toy_dataset())
    np.testing.assert_allclose(np.asarray(model.similarity.sum(axis=1)).ravel(), 1.0, rtol=1e-6)


def test_blocked_computation_matches_single_block(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    x = sp.random(300, 50, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    whole = cosine_topk(x, 7, shrink=2.0)
    monkeypatch.setattr(similarity, "BLOCK_CELLS", 3 * 50)  # three item rows per block
    blocked = cosine_topk(x, 7, shrink=2.0)
    np.testing.assert_allclose(blocked.toarray(), whole.toarray(), rtol=1e-6)
    dense = x.toarray()
    norms = np.linalg.norm(dense, axis=0)
    full = dense.T @ dense / (np.outer(norms, norms) + 2.0)
    np.fill_diagonal(full, 0)
    row = 4
    kept = np.sort(blocked[row].indices)
    assert kept.tolist() == np.sort(np.argsort(-full[row], kind="stable")[:7]).tolist()


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError, match="k_neighbors"):
        ItemKNNRecommender(k_neighbors=0)
    with pytest.raises(ValueError, match="shrink"):
        ItemKNNRecommender(shrink=-1.0)


def test_sparse_and_dense_pruning_agree(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    x = sp.random(400, 60, density=0.05, format="csr", random_state=rng, dtype=np.float32)
    monkeypatch.setattr(similarity, "DENSE_FRACTION", 2.0)  # every block takes the sparse path
    sparse_path = cosine_topk(x, 5, shrink=1.0)
    monkeypatch.setattr(similarity, "DENSE_FRACTION", 0.0)  # every block takes the dense path
    dense_path = cosine_topk(x, 5, shrink=1.0)
    np.testing.assert_allclose(sparse_path.toarray(), dense_path.toarray(), rtol=1e-6)
    assert (np.diff(sparse_path.indptr) <= 5).all()
