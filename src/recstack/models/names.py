"""The catalogue's table of model names, resolved to classes without importing any model.

It sits below ``base`` so that ``Recommender.load`` can turn a saved name into a class, and
above nothing but ``errors``: ``recstack.models.catalog`` builds the public lookups on it.
"""

from __future__ import annotations

import importlib

from recstack.errors import ConfigError

MODELS: dict[str, str] = {
    "popularity": "recstack.models.popularity:PopularityRecommender",
    "itemknn": "recstack.models.item_knn:ItemKNNRecommender",
    "ease": "recstack.models.ease:EASERecommender",
    "als": "recstack.models.als:ALSRecommender",
    "bpr": "recstack.models.bpr:BPRRecommender",
    "biased_mf": "recstack.models.biased_mf:BiasedMFRecommender",
    "two_tower": "recstack.models.two_tower:TwoTowerRecommender",
    "content": "recstack.models.content:ContentRecommender",
    "two_stage": "recstack.models.ranking.two_stage:TwoStageRecommender",
}


def resolve(name: str) -> type:
    """The class registered under ``name``, imported on first use; a ConfigError lists names."""
    try:
        module, attr = MODELS[name].split(":")
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None
    return getattr(importlib.import_module(module), attr)
