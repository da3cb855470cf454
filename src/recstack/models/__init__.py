"""Recommenders behind one contract (``Recommender``); ``catalog`` maps names to classes."""

from recstack.models.base import FactorRecommender, Recommender
from recstack.models.config import InvalidParamsError, ModelConfig
from recstack.models.protocols import TextSearchable

__all__ = [
    "FactorRecommender",
    "InvalidParamsError",
    "ModelConfig",
    "Recommender",
    "TextSearchable",
]
