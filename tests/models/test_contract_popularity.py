"""PopularityRecommender against the shared model contract."""

from recstack.models.popularity import PopularityRecommender
from recstack.testing.contract import RecommenderContract


class TestPopularityContract(RecommenderContract):
    model_factory = staticmethod(lambda: PopularityRecommender())
    personalized = False


class TestDecayedPopularityContract(RecommenderContract):
    model_factory = staticmethod(lambda: PopularityRecommender(half_life_days=30.0))
    personalized = False
