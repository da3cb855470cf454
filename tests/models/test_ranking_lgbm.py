"""A bag of boosters averaged into one LightGBM model scores, explains and loads as the mean."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lightgbm")

import lightgbm as lgb  # noqa: E402

from recstack.models.ranking.lgbm import average_models, booster_from_text  # noqa: E402


def _boosters(n: int, objective: str = "binary") -> tuple[list, np.ndarray]:
    rng = np.random.default_rng(0)
    boosters = []
    for seed in range(n):
        x = rng.normal(size=(600, 4))
        x[:, 3] = seed  # constant in every training set: LightGBM records no range ("none")
        y = (x[:, 0] - x[:, 1] + rng.normal(size=600) > 0).astype(int)
        params = {"objective": objective, "verbosity": -1, "num_leaves": 7, "seed": seed}
        params |= {"bagging_fraction": 0.8, "bagging_freq": 1}
        boosters.append(lgb.train(params, lgb.Dataset(x, y), num_boost_round=15))
    return boosters, rng.normal(size=(100, 4))


def test_averaged_model_predicts_and_explains_the_mean_of_its_models():
    boosters, x = _boosters(3)
    merged = booster_from_text(average_models([b.model_to_string() for b in boosters]))
    raw = np.mean([b.predict(x, raw_score=True) for b in boosters], axis=0)
    np.testing.assert_allclose(merged.predict(x, raw_score=True), raw, atol=1e-12)
    contrib = np.mean([b.predict(x, pred_contrib=True) for b in boosters], axis=0)
    np.testing.assert_allclose(merged.predict(x, pred_contrib=True), contrib, atol=1e-12)
    assert merged.num_trees() == 45
    assert merged.feature_importance().sum() == sum(b.feature_importance().sum() for b in boosters)


def test_averaged_model_round_trips_through_its_own_text():
    boosters, x = _boosters(2)
    text = average_models([b.model_to_string() for b in boosters])
    again = booster_from_text(booster_from_text(text).model_to_string())
    np.testing.assert_allclose(again.predict(x), booster_from_text(text).predict(x))


def test_one_model_is_returned_unchanged_and_different_objectives_are_refused():
    (one,), _ = _boosters(1)
    assert average_models([one.model_to_string()]) == one.model_to_string()
    (other,), _ = _boosters(1, objective="regression")
    with pytest.raises(ValueError, match="objective"):
        average_models([one.model_to_string(), other.model_to_string()])
