"""TwoStageRecommender against the shared model contract."""

import pytest

pytest.importorskip("lightgbm")

from recstack.models.ranking.two_stage import TwoStageRecommender  # noqa: E402
from recstack.testing.contract import RecommenderContract  # noqa: E402


class TestTwoStageContract(RecommenderContract):
    model_factory = staticmethod(
        lambda: TwoStageRecommender(
            retrievers="ease,itemknn,popularity", candidates=30, rounds=40, folds=1
        )
    )


class TestTwoStageDiverseContract(RecommenderContract):
    """With the MMR step on, the contract still holds (masks, padding, save/load)."""

    model_factory = staticmethod(
        lambda: TwoStageRecommender(
            retrievers="ease,popularity", candidates=30, rounds=20, folds=1, diversity=0.5
        )
    )
    min_cluster_precision = 0.4


class TestTwoStageStandardisedContract(RecommenderContract):
    """Standardised retriever scores and early stopping keep the contract (features saved and
    reloaded in the same column order)."""

    model_factory = staticmethod(
        lambda: TwoStageRecommender(
            retrievers="ease,popularity",
            candidates=30,
            rounds=60,
            folds=2,
            standardised_scores=True,
            early_stopping=5,
        )
    )
