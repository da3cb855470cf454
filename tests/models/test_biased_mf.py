"""Biased MF: rating predictions, the fold-in step, and RMSE/MAE in evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from recstack.data.splits import stratified_split
from recstack.evaluation.metrics import mae, rmse
from recstack.evaluation.protocol import evaluate_models
from recstack.evaluation.report import markdown_table
from recstack.models.biased_mf import BiasedMFRecommender
from recstack.testing.data import planted_dataset


@pytest.fixture(scope="module")
def rated():
    return planted_dataset(rated=True, n_users=300, per_user=30, seed=5)


def test_predictions_beat_the_global_mean_on_held_out_ratings(rated) -> None:
    train, test = stratified_split(rated, ratio=0.8, seed=0)
    model = BiasedMFRecommender(factors=8, iterations=10).fit(train)
    predicted = model.predict_ratings(test.user_idx, test.item_idx)
    baseline = np.full(test.n_interactions, float(np.mean(train.weight)))
    assert rmse(predicted, test.weight) < 0.8 * rmse(baseline, test.weight)
    assert mae(predicted, test.weight) < mae(baseline, test.weight)
    assert np.isclose(model.global_mean[0], np.mean(train.weight))


def test_scores_are_the_predicted_ratings(rated) -> None:
    model = BiasedMFRecommender(factors=4, iterations=5).fit(rated)
    users = np.array([0, 1, 2])
    scores = model.score(rated.matrix[users], users)
    items = np.array([3, 7, 11])
    expected = model.predict_ratings(np.repeat(users, 3), np.tile(items, 3)).reshape(3, 3)
    np.testing.assert_allclose(scores[:, items], expected, rtol=1e-5)


def test_fold_in_of_a_training_history_is_close_to_the_learned_user(rated) -> None:
    model = BiasedMFRecommender(factors=4, iterations=30).fit(rated)
    users = np.arange(20)
    folded = model.fold_in_vectors(rated.matrix[users])
    learned = np.asarray(model.user_factors)[users]
    np.testing.assert_allclose(folded, learned, atol=0.05)


def test_evaluation_reports_rmse_and_mae_for_rating_models_only(rated) -> None:
    result = evaluate_models(rated, {"biased_mf": {"factors": 4}, "popularity": {}}, k=10)
    bmf, pop = result.model("biased_mf"), result.model("popularity")
    assert 0.0 < bmf.metrics["mae"] <= bmf.metrics["rmse"] < 2.0
    assert "rmse" not in pop.metrics
    header = markdown_table(result).splitlines()[0]
    assert "RMSE" in header and "MAE" in header
