"""BiasedMFRecommender against the shared model contract, on explicit ratings."""

from recstack.models.biased_mf import BiasedMFRecommender
from recstack.testing.contract import RecommenderContract
from recstack.testing.data import planted_dataset


class TestBiasedMFContract(RecommenderContract):
    model_factory = staticmethod(lambda: BiasedMFRecommender(factors=8, iterations=8))
    # a rating model learns from the stars: users rate their own cluster 4-5, others 1-3
    dataset_factory = staticmethod(lambda: planted_dataset(rated=True, per_user=30))
    liked_weight = 5.0
    relevant_min_weight = 4.0
