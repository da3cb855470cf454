"""Model name -> class, imported lazily so torch and friends load only when asked for."""

from __future__ import annotations

import importlib
from typing import Any

from recstack.errors import ConfigError
from recstack.models.base import Recommender

MODELS: dict[str, str] = {
    "popularity": "recstack.models.popularity:PopularityRecommender",
    "itemknn": "recstack.models.item_knn:ItemKNNRecommender",
    "ease": "recstack.models.ease:EASERecommender",
    "als": "recstack.models.als:ALSRecommender",
    "bpr": "recstack.models.bpr:BPRRecommender",
    "two_tower": "recstack.models.two_tower:TwoTowerRecommender",
    "content": "recstack.models.content:ContentRecommender",
}


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``; a ConfigError lists the known names."""
    try:
        module, attr = MODELS[name].split(":")
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None
    return getattr(importlib.import_module(module), attr)


def create_model(name: str, **params: Any) -> Recommender:
    """Instantiate model ``name`` with ``params`` (unknown params raise ValueError)."""
    return model_class(name)(**params)
