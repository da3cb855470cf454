"""Optuna tuning on a validation split of training data, alone and from the store."""

from __future__ import annotations

import optuna
import pytest

from recstack.data.splits import stratified_split
from recstack.errors import ConfigError
from recstack.evaluation.protocol import holdout_metrics
from recstack.models.catalog import create_model, model_class
from recstack.testing.data import planted_dataset
from recstack.workflows.dataset import load_dataset
from recstack.workflows.search_spaces import SEARCH_SPACES, search_space
from recstack.workflows.tune import tune, tune_from_store


@pytest.fixture(scope="module")
def train():
    full = planted_dataset(n_users=100, n_items=60, per_user=10)
    return stratified_split(full, ratio=0.75, seed=42)[0]


def test_tune_finds_the_best_trial_on_a_validation_split_of_train(train):
    best, value, study = tune(train, "itemknn", trials=4, seed=3, metric="ndcg", k=10)
    assert set(best) == {"k_neighbors", "shrink"}
    assert len(study.trials) == 4
    assert value == max(t.value for t in study.trials)
    # the score is reproducible: refit on the same validation split of train
    fit_part, valid = stratified_split(train, ratio=0.8, seed=3)
    refit = create_model("itemknn", **best).fit(fit_part)
    assert holdout_metrics(refit, fit_part, valid, k=10)["ndcg"] == pytest.approx(value)


def test_tune_is_deterministic_for_a_seed(train):
    first = tune(train, "ease", trials=3, seed=7, metric="recall", k=5)
    second = tune(train, "ease", trials=3, seed=7, metric="recall", k=5)
    assert first[0] == second[0]
    assert first[1] == second[1]
    assert 1.0 <= first[0]["l2"] <= 5000.0


def test_fixed_params_apply_to_every_trial(train):
    best, _, study = tune(train, "ease", trials=2, seed=1, params={"max_items": 500})
    assert best["max_items"] == 500
    assert all("max_items" not in t.params for t in study.trials)


def test_fixed_params_are_checked_and_coerced_by_the_catalogue(train):
    best, _, _ = tune(train, "ease", trials=1, seed=1, params={"max_items": "500"})
    assert best["max_items"] == 500
    with pytest.raises(ConfigError, match="ease: unknown parameter 'bogus'; valid parameters"):
        tune(train, "ease", trials=1, params={"bogus": 1})


def test_every_search_space_samples_real_model_params():
    for name, space in SEARCH_SPACES.items():
        trial = optuna.trial.FixedTrial(
            {
                "factors": 32,
                "regularization": 0.1,
                "alpha": 2.0,
                "iterations": 10,
                "l2": 300.0,
                "k_neighbors": 50,
                "shrink": 5.0,
                "learning_rate": 0.05,
                "dim": 64,
                "lr": 0.003,
                "temperature": 0.1,
                "epochs": 3,
                "decay": True,
                "half_life_days": 30.0,
                "popularity_weight": 0.5,
            }
        )
        params = space(trial)
        assert set(params) <= set(model_class(name).defaults), name


def test_popularity_space_can_switch_decay_off():
    params = search_space("popularity")(optuna.trial.FixedTrial({"decay": False}))
    assert params == {"half_life_days": None}


def test_bad_tuning_requests(train, monkeypatch):
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        tune(train, "nope", trials=1)
    monkeypatch.delitem(SEARCH_SPACES, "content")  # a model without a search space
    with pytest.raises(ConfigError, match="no search space"):
        tune(train, "content", trials=1)
    with pytest.raises(ConfigError, match="unknown metric"):
        tune(train, "ease", trials=1, metric="auc")
    with pytest.raises(ConfigError, match="at least 1"):
        tune(train, "ease", trials=0)


def test_tune_from_store_never_sees_the_evaluation_test_split(settings):
    best, value, _ = tune_from_store(settings, "ease", trials=2, seed=5, k=5)
    train, _ = stratified_split(load_dataset(settings), ratio=0.75, seed=5)
    same, same_value, _ = tune(train, "ease", trials=2, seed=5, k=5)
    assert (best, value) == (same, same_value)


def test_tune_from_store_rejects_a_bad_request_before_reading_the_store(tmp_path):
    empty = tmp_path / "never-created"
    from recstack.settings import Settings

    with pytest.raises(ConfigError, match="unknown metric"):
        tune_from_store(Settings(home=empty), "ease", metric="auc")
    assert not empty.exists()
