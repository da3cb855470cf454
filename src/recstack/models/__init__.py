"""Recommenders behind one contract (``Recommender``); ``catalog`` maps names to classes."""

from recstack.models.base import FactorRecommender, Recommender

__all__ = ["FactorRecommender", "Recommender"]
