"""TwoTowerRecommender: contract, logQ correction, in-batch loss, early stopping, persistence."""

from __future__ import annotations

import doctest
import math
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from recstack.data.dataset import Dataset  # noqa: E402
from recstack.errors import ConfigError, MissingExtraError, RecstackError  # noqa: E402
from recstack.models.base import Recommender  # noqa: E402
from recstack.models.two_tower import TwoTowerRecommender  # noqa: E402
from recstack.models.two_tower import features as features_module  # noqa: E402
from recstack.models.two_tower import train as train_module  # noqa: E402
from recstack.models.two_tower.features import ItemFeatures, attribute_tokens  # noqa: E402
from recstack.models.two_tower.train import (  # noqa: E402
    EarlyStopping,
    PairSampler,
    encode_users,
    holdout_validation,
    in_batch_softmax_loss,
    logq_logits,
    ndcg_at_k,
)
from recstack.testing.contract import RecommenderContract  # noqa: E402
from recstack.testing.data import planted_dataset, planted_frame  # noqa: E402

pytestmark = pytest.mark.torch

FAST = {"dim": 16, "epochs": 8, "patience": 3, "batch_size": 256, "lr": 0.01, "use_text": False}


def fast_model(**params: object) -> TwoTowerRecommender:
    return TwoTowerRecommender(**{**FAST, **params})


class TestTwoTowerContract(RecommenderContract):
    model_factory = staticmethod(fast_model)


@pytest.fixture(scope="module")
def planted() -> Dataset:
    return planted_dataset()


@pytest.fixture(scope="module")
def fitted(planted: Dataset) -> TwoTowerRecommender:
    return fast_model(lr=0.03, epochs=12, patience=4).fit(planted)


# ---- loss pieces -------------------------------------------------------------------------------
def test_logq_logits_subtracts_log_sampling_probability() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    prob = torch.tensor([0.5, 0.25, 0.125])
    got = logq_logits(logits, prob)
    # log(0.5) = -0.693147, log(0.25) = -1.386294, log(0.125) = -2.079442
    expected = torch.tensor([[2.693147, 1.886294, 1.079442], [0.693147, 2.386294, 5.079442]])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_in_batch_loss_matches_hand_computation_and_masks_repeats() -> None:
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    items_vec = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    items = torch.tensor([7, 8, 7])  # rows 0 and 2 share item 7: never each other's negative
    prob = torch.tensor([0.5, 0.25, 0.5])
    loss = in_batch_softmax_loss(users, items_vec, items, prob, temperature=1.0)
    lp5, lp25 = math.log(0.5), math.log(0.25)
    # row 0: logits [1-lp5, 0-lp25, masked]; target column 0
    row0 = -(1 - lp5) + math.log(math.exp(1 - lp5) + math.exp(-lp25))
    # row 1: logits [0-lp5, 1-lp25, 0-lp5]; target column 1
    row1 = -(1 - lp25) + math.log(2 * math.exp(-lp5) + math.exp(1 - lp25))
    # row 2: logits [masked, 0-lp25, 1-lp5]; target column 2
    row2 = -(1 - lp5) + math.log(math.exp(-lp25) + math.exp(1 - lp5))
    assert float(loss) == pytest.approx((row0 + row1 + row2) / 3, abs=1e-5)


def test_ndcg_at_k_hand_example() -> None:
    relevant = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0]]))
    scores = np.array([[0.1, 0.9, 0.8, 0.7], [1, 2, 3, 4], [0.0, 0.1, 0.9, 0.2]])
    # row 0: ranks 2->3 (item 3 at rank 3 hit) => dcg 1/log2(4)=0.5, idcg 1 + 1/log2(3)
    row0 = 0.5 / (1 + 1 / math.log2(3))
    assert ndcg_at_k(scores, relevant, k=3) == pytest.approx((row0 + 1.0) / 2)


# ---- sampling and validation --------------------------------------------------------------------
def test_pair_sampler_history_excludes_target_and_stays_in_user() -> None:
    matrix = sp.csr_matrix(
        np.array([[1, 1, 0, 1, 0], [0, 0, 2, 0, 0], [1, 0, 1, 1, 1]], dtype=np.float32)
    )
    sampler = PairSampler(matrix, history_len=3, rng=np.random.default_rng(0))
    pairs = np.arange(len(sampler))
    hist, weights = sampler.histories(pairs)
    assert hist.shape == (len(pairs), 3)
    for row, pair in enumerate(pairs):
        user, target = sampler.users[pair], sampler.items[pair]
        used = hist[row][weights[row] > 0]
        assert target not in used
        assert set(used) <= set(matrix[user].indices)
        assert len(set(used)) == len(used)
        total = weights[row].sum()
        assert total == pytest.approx(1.0) if len(used) else total == 0.0
    # user 1 has a single item: its only example has an empty history
    lone = np.flatnonzero(sampler.users == 1)[0]
    assert weights[lone].sum() == 0.0
    # item probabilities are training-pair frequencies
    np.testing.assert_allclose(sampler.item_prob, np.array([2, 1, 2, 2, 1]) / 8)


def test_holdout_validation_takes_latest_items_of_chosen_users() -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["a"] * 5 + ["b"] * 2,
            "item_id": ["i1", "i2", "i3", "i4", "i5", "i1", "i2"],
            "weight": 1.0,
            "timestamp": [50, 10, 40, 20, 30, 1, 2],
        }
    )
    data = Dataset.from_frame(frame)
    remaining, validation = holdout_validation(
        data, fraction=1.0, holdout_share=0.4, rng=np.random.default_rng(0), latest=True
    )
    assert validation is not None
    assert data.users.externals(validation.users) == ["a"]  # b has too few items
    held = data.items.externals(validation.relevant[0].indices)
    assert sorted(held) == ["i1", "i3"]  # the two latest of a's five
    assert remaining.nnz == data.matrix.nnz - 2
    assert remaining[data.users.index("a")].nnz == 3
    assert remaining[validation.users].multiply(validation.relevant).nnz == 0


def test_holdout_validation_random_is_seeded_and_disjoint(planted: Dataset) -> None:
    first = holdout_validation(planted, 0.2, 0.2, np.random.default_rng(5))
    again = holdout_validation(planted, 0.2, 0.2, np.random.default_rng(5))
    other = holdout_validation(planted, 0.2, 0.2, np.random.default_rng(6))
    remaining, validation = first
    assert len(validation.users) == 40  # 20% of the 200 users
    np.testing.assert_array_equal(validation.relevant.toarray(), again[1].relevant.toarray())
    assert (validation.relevant != other[1].relevant).nnz > 0
    full = planted.matrix[validation.users]
    assert (np.diff(validation.relevant.indptr) == 3).all()  # floor(0.2 * 15) per user
    assert full.multiply(validation.relevant).nnz == validation.relevant.nnz  # own items only
    assert remaining[validation.users].multiply(validation.relevant).nnz == 0
    assert remaining.nnz + validation.relevant.nnz == planted.matrix.nnz


def test_bad_val_holdout_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="val_holdout"):
        TwoTowerRecommender(val_holdout="oldest")


def test_early_stopping_keeps_best_weights_and_patience() -> None:
    layer = torch.nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(patience=2)
    decisions = []
    for epoch, score in enumerate([0.1, 0.3, 0.2, 0.25, 0.9]):
        with torch.no_grad():
            layer.weight.fill_(float(epoch))
        decisions.append(stopper.update(epoch, score, {"layer": layer}))
    assert decisions[:4] == [False, False, False, True]  # two epochs without gain after epoch 1
    stopper = EarlyStopping(patience=2)
    for epoch, score in enumerate([0.1, 0.3, 0.2, 0.25]):
        with torch.no_grad():
            layer.weight.fill_(float(epoch))
        stopper.update(epoch, score, {"layer": layer})
    stopper.restore({"layer": layer})
    assert stopper.best_epoch == 1 and layer.weight.detach().item() == 1.0


def test_fit_stops_early_and_restores_best_epoch(planted: Dataset) -> None:
    model = fast_model(epochs=12, patience=3).fit(planted)
    log = model.training_log
    scores = [entry["val_ndcg"] for entry in log]
    best = int(np.argmax(scores))
    assert model.meta.metrics["best_epoch"] == best
    assert model.meta.metrics["val_ndcg@10"] == pytest.approx(scores[best])
    assert len(log) == best + 3 + 1 < 12, "stopped after patience epochs without gain"
    assert max(scores[best + 1 :]) < scores[best]
    # the kept model scores the validation split exactly as the best epoch did, not the last
    remaining, validation = holdout_validation(
        planted, 0.1, 0.2, np.random.default_rng(model.params["random_state"])
    )
    histories = remaining[validation.users]
    vectors = encode_users(model._user_tower, histories, validation.users)
    ranked = vectors @ model.item_vectors().T
    ranked[histories.nonzero()] = -np.inf
    assert ndcg_at_k(ranked, validation.relevant) == pytest.approx(scores[best], abs=1e-6)


# ---- vectors, fold-in and persistence ---------------------------------------------------------
def test_vectors_are_unit_length(fitted: TwoTowerRecommender, planted: Dataset) -> None:
    items = fitted.item_vectors()
    assert items.shape == (planted.n_items, 16) and items.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, rtol=1e-5)
    users = fitted.user_vectors(planted.matrix[:10], np.arange(10))
    np.testing.assert_allclose(np.linalg.norm(users, axis=1), 1.0, rtol=1e-5)


def test_known_user_with_empty_row_uses_learned_vector(
    fitted: TwoTowerRecommender, planted: Dataset
) -> None:
    empty = sp.csr_matrix((3, planted.n_items), dtype=np.float32)
    got = fitted.user_vectors(empty, np.array([4, 5, -1]))
    full = fitted.user_vectors(planted.matrix[[4, 5]], np.array([4, 5]))
    np.testing.assert_allclose(got[:2], full, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got[2], full[0])


def test_unknown_ids_beyond_range_are_folded_in(
    fitted: TwoTowerRecommender, planted: Dataset
) -> None:
    h = planted.matrix[:3]
    folded = fitted.user_vectors(h, np.full(3, -1))
    np.testing.assert_array_equal(fitted.user_vectors(h, np.array([10**6] * 3)), folded)
    np.testing.assert_array_equal(fitted.fold_in(h), folded)


def test_save_load_scores_identical(
    fitted: TwoTowerRecommender, planted: Dataset, tmp_path
) -> None:
    path = fitted.save(tmp_path / "tt")
    assert not list(path.glob("*.pkl")) and not list(path.glob("*.pt"))
    loaded = Recommender.load(path)
    h = planted.matrix[:20]
    users = np.concatenate([np.arange(15), np.full(5, -1)])
    np.testing.assert_array_equal(loaded.score(h, users), fitted.score(h, users))
    assert loaded.meta.metrics == fitted.meta.metrics


# ---- item features ------------------------------------------------------------------------------
def test_attribute_tokens_and_vocabulary() -> None:
    assert attribute_tokens({"tags": ["a", "a", " "], "level": 3, "score": 0.5}) == [
        "tags=a",
        "level=3",
    ]
    assert attribute_tokens(None) == []
    meta = pd.DataFrame(
        {"attributes": [{"g": ["x", "y"], "level": 1}, {"g": ["x"], "level": 1}, {"g": ["z"]}]}
    )
    features = ItemFeatures.from_meta(meta, 3, min_count=2)
    assert features.vocabulary == ["g=x", "level=1"]
    assert features.matrix.toarray().tolist() == [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]
    assert ItemFeatures.from_meta(None, 4).n_tokens == 0


def test_cold_catalogue_items_are_placed_by_features() -> None:
    inter, items = planted_frame()
    cold = pd.DataFrame(
        {
            "item_id": [f"new{c}" for c in range(4)],
            "title": None,
            "text": None,
            "attributes": [{"genres": [f"topic{c}"]} for c in range(4)],
            "active": True,
        }
    )
    data = Dataset.from_frame(inter, items=pd.concat([items, cold], ignore_index=True))
    model = fast_model(lr=0.03, epochs=10).fit(data)
    new_idx = data.items.indices([f"new{c}" for c in range(4)])
    genres = data.item_attribute("genres")
    idx, _ = model.similar_items(new_idx, 10)
    for cluster, row in enumerate(idx):
        same = [genres[i][0] == f"topic{cluster}" for i in row]
        assert np.mean(same) >= 0.7, (cluster, same)


@pytest.mark.parametrize("module", [features_module, train_module])
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_missing_torch_names_the_extra(planted: Dataset, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(MissingExtraError, match=r"recstack\[torch\]") as info:
        fast_model().fit(planted)
    assert info.value.extra == "torch"


def test_unfitted_model_says_so() -> None:
    with pytest.raises(RecstackError, match="not fitted"):
        fast_model().user_vectors(sp.csr_matrix((1, 3), dtype=np.float32))
