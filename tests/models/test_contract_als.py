"""ALSRecommender against the shared model contract."""

from recstack.models.als import ALSRecommender
from recstack.testing.contract import RecommenderContract


class TestALSContract(RecommenderContract):
    model_factory = staticmethod(lambda: ALSRecommender(factors=16, iterations=5, random_state=0))
