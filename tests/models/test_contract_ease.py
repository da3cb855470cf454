"""EASERecommender against the shared model contract."""

from recstack.models.ease import EASERecommender
from recstack.testing.contract import RecommenderContract


class TestEASEContract(RecommenderContract):
    model_factory = staticmethod(lambda: EASERecommender())


class TestEASETopItemsContract(RecommenderContract):
    """Modelling only the 100 most popular of the 120 planted items still meets the contract."""

    model_factory = staticmethod(lambda: EASERecommender(max_items=100, top_items=True))
