"""The evaluation protocol on planted data with real models (popularity, itemknn, ease)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recstack.data.dataset import Dataset
from recstack.data.splits import leave_last_n_out, stratified_split
from recstack.errors import ConfigError
from recstack.evaluation import metrics as m
from recstack.evaluation.protocol import evaluate_models, holdout_metrics, holdout_target
from recstack.models.catalog import create_model
from recstack.testing.data import planted_dataset

MODELS = ["popularity", "itemknn", "ease"]


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return planted_dataset(n_users=150, n_items=80, per_user=12)


@pytest.fixture(scope="module")
def result(dataset):
    return evaluate_models(dataset, MODELS, ratio=0.75, seed=42, k=10, ks=(1, 5, 10, 20))


def test_every_model_has_metrics_curves_and_timings(result, dataset):
    assert [r.name for r in result.models] == MODELS
    assert result.ks == [1, 5, 10, 20]
    assert result.users_evaluated + result.users_skipped == dataset.n_users
    assert result.train_interactions + result.test_interactions == dataset.n_interactions
    for model in result.models:
        assert set(model.curve) == {1, 5, 10, 20}
        assert model.metrics["ndcg"] == model.curve[10]["ndcg"]
        for key in ("precision", "recall", "ndcg", "map", "map_all_relevant", "mrr", "hit_rate"):
            assert 0.0 <= model.metrics[key] <= 1.0
        assert model.metrics["map_all_relevant"] <= model.metrics["map"] + 1e-12
        assert 0.0 < model.metrics["coverage"] <= 1.0
        assert model.train_seconds >= 0 and model.predict_seconds >= 0
        # recall never falls as the list grows
        recalls = [model.curve[c]["recall"] for c in (1, 5, 10, 20)]
        assert recalls == sorted(recalls)


def test_personalised_models_beat_popularity_on_planted_clusters(result):
    pop = result.model("popularity").metrics["ndcg"]
    assert result.model("itemknn").metrics["ndcg"] > pop + 0.05
    assert result.model("ease").metrics["ndcg"] > pop + 0.05
    assert result.best("ndcg").name in ("itemknn", "ease")
    assert result.model("popularity").metrics["arp"] > result.model("ease").metrics["arp"]


def test_metrics_match_a_direct_recomputation(result, dataset):
    train, test = stratified_split(dataset, ratio=0.75, seed=42)
    target = holdout_target(train, test)
    model = create_model("itemknn").fit(train)
    recommended, _ = model.recommend(train.matrix[target.users], 10, users=target.users)
    relevant = [set(test.matrix[u].indices) for u in target.users]
    assert result.model("itemknn").metrics["ndcg"] == pytest.approx(
        m.ndcg_at_k(recommended, relevant, 10), abs=1e-6
    )
    assert result.model("itemknn").metrics["precision"] == pytest.approx(
        m.precision_at_k(recommended, relevant, 10), abs=1e-6
    )
    assert holdout_metrics(model, train, test, k=10)["ndcg"] == pytest.approx(
        result.model("itemknn").metrics["ndcg"], abs=1e-6
    )


def test_training_items_are_never_recommended(result, dataset):
    train, test = stratified_split(dataset, ratio=0.75, seed=42)
    users = holdout_target(train, test).users
    seen = train.matrix[users]
    for model in result.models:
        rec = model.recommended
        rows = np.repeat(np.arange(len(users)), rec.shape[1])
        flat = rec.ravel()
        ok = flat >= 0
        assert not np.asarray(seen[rows[ok], flat[ok]]).any()


def test_result_serialises_to_json(result):
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["protocol"] == "stratified"
    assert payload["models"][0]["curve"]["10"]["ndcg"] == result.models[0].curve[10]["ndcg"]
    assert "recommended" not in payload["models"][0]
    assert result.diversity_source == "genres"


def _weighted_dataset() -> Dataset:
    """30 users x 8 items; users 0-9 rate everything 1, the rest 5."""
    rows = [
        (f"u{u}", f"i{(u + j) % 20}", 1.0 if u < 10 else 5.0, 1_000 + j)
        for u in range(30)
        for j in range(8)
    ]
    return Dataset.from_frame(
        pd.DataFrame(rows, columns=["user_id", "item_id", "weight", "timestamp"])
    )


def test_relevance_threshold_skips_and_counts_users():
    data = _weighted_dataset()
    everyone = evaluate_models(data, ["popularity"], k=5, ks=(5,))
    assert (everyone.users_evaluated, everyone.users_skipped) == (30, 0)
    liked = evaluate_models(data, ["popularity"], k=5, ks=(5,), min_rating=3.0)
    assert (liked.users_evaluated, liked.users_skipped) == (20, 10)


def test_leave_last_holds_out_one_item_per_user(dataset):
    result = evaluate_models(dataset, ["itemknn"], protocol="leave_last", k=10, ks=(10,))
    train, test = leave_last_n_out(dataset, n=1)
    assert result.test_interactions == test.n_interactions
    assert result.users_evaluated == np.unique(test.user_idx).size
    metrics = result.models[0].metrics
    # one relevant item: recall equals hit rate and MAP equals MRR
    assert metrics["recall"] == pytest.approx(metrics["hit_rate"])
    assert metrics["map"] == pytest.approx(metrics["mrr"])


def test_temporal_protocol_and_cooccurrence_diversity(dataset):
    result = evaluate_models(
        dataset,
        {"popularity": {}},
        protocol="temporal",
        ratio=0.8,
        k=5,
        ks=(5,),
        diversity="cooccurrence",
    )
    assert result.protocol == "temporal"
    assert result.diversity_source == "cooccurrence"
    assert 0.0 <= result.models[0].metrics["diversity"] <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"models": ["nope"]}, "unknown model 'nope'"),
        ({"models": {"ease": {"bogus": 1}}}, "unknown parameter"),
        ({"models": []}, "no models"),
        ({"models": ["popularity"], "protocol": "random"}, "unknown protocol"),
        ({"models": ["popularity"], "k": 0}, "at least 1"),
        ({"models": ["popularity"], "ratio": 1.5}, "ratio"),
        ({"models": ["popularity"], "diversity": "vibes"}, "diversity source"),
    ],
)
def test_bad_requests_are_config_errors(dataset, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        evaluate_models(dataset, **kwargs)


def test_test_events_on_items_seen_in_training_are_not_relevant():
    # u0 viewed a and b; the split puts "complete a" and "view c" in test: only c can be ranked
    frame = pd.DataFrame(
        {
            "user_id": ["u0", "u0", "u0", "u0", "u1"],
            "item_id": ["a", "b", "a", "c", "a"],
            "event_type": ["view", "view", "complete", "view", "view"],
            "timestamp": [1, 2, 3, 4, 5],
        }
    )
    everything = Dataset.from_frame(frame)
    train = everything.subset(np.array([True, True, False, False, True]))
    test = everything.subset(np.array([False, False, True, True, False]))
    target = holdout_target(train, test)
    a, c = everything.items.index("a"), everything.items.index("c")
    assert target.users.tolist() == [everything.users.index("u0")]
    assert target.relevant.toarray()[0].nonzero()[0].tolist() == [c]
    assert a not in target.relevant.indices
    # with nothing in training every test event stays relevant
    empty = everything.subset(np.zeros(5, dtype=bool))
    assert holdout_target(empty, test).relevant.nnz == 2
