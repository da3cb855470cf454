"""Optuna tuning on a validation split of training data, and TOML model configs."""

from __future__ import annotations

import optuna
import pytest

from recstack.data.splits import stratified_split
from recstack.errors import ConfigError
from recstack.evaluation.protocol import holdout_metrics
from recstack.models.catalog import create_model, model_class
from recstack.testing.data import planted_dataset
from recstack.tuning import SEARCH_SPACES, load_config, save_config, search_space, tune


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


def test_config_round_trip(tmp_path):
    params = {"factors": 48, "regularization": 30.0, "alpha": 2.0, "use_gpu": False, "x": None}
    path = save_config(params, tmp_path / "cfg" / "als.toml", model="als")
    assert path.read_text() == (
        '[model]\nname = "als"\n\n[params]\n'
        "factors = 48\nregularization = 30.0\nalpha = 2.0\nuse_gpu = false\n"
    )
    params.pop("x")
    assert load_config(path) == ("als", params)


def test_config_strings_lists_and_special_floats(tmp_path):
    import tomllib

    path = save_config(
        {"a": 'say "hi"\n', "b": [1, 2.5, "z"], "c": float("inf")},
        tmp_path / "x.toml",
        model="ease",
    )
    data = tomllib.loads(path.read_text())
    assert data["params"] == {"a": 'say "hi"\n', "b": [1, 2.5, "z"], "c": float("inf")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[params]\nl2 = 1.0\n", "missing \\[model\\]"),
        (
            '[model]\nname = "ease"\n[params]\nbogus = 1\n',
            "unknown parameter\\(s\\) for ease: bogus",
        ),
        ('[model]\nname = "nope"\n', "unknown model 'nope'"),
        ("[model\nname=", "not valid TOML"),
        ('params = 3\n[model]\nname = "ease"\n', "must be a table"),
    ],
)
def test_bad_configs_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value) or "unknown model" in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml")
