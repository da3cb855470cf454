"""ItemKNNRecommender against the shared model contract."""

from recstack.models.item_knn import ItemKNNRecommender
from recstack.testing.contract import RecommenderContract


class TestItemKNNContract(RecommenderContract):
    model_factory = staticmethod(lambda: ItemKNNRecommender(k_neighbors=30, shrink=5.0))


class TestNormalizedItemKNNContract(RecommenderContract):
    model_factory = staticmethod(lambda: ItemKNNRecommender(k_neighbors=30, normalize=True))
