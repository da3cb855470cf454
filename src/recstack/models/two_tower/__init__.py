"""TwoTowerRecommender: a PyTorch two-tower retrieval model (user tower x item tower)."""

from recstack.models.two_tower.recommender import TwoTowerRecommender

__all__ = ["TwoTowerRecommender"]
