"""What Optuna may try for each model: one function per model sampling its parameters.

Kept apart from the search loop so the ranges can be read (and reviewed) on one screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recstack.errors import ConfigError
from recstack.models.catalog import MODELS, model_class

# Each space samples the parameters of one model from an optuna Trial.
SearchSpace = Callable[[Any], dict[str, Any]]


def _als_space(trial: Any) -> dict[str, Any]:
    return {
        "factors": trial.suggest_int("factors", 16, 256, log=True),
        "regularization": trial.suggest_float("regularization", 1e-2, 100.0, log=True),
        "alpha": trial.suggest_float("alpha", 0.1, 50.0, log=True),
        "iterations": trial.suggest_int("iterations", 5, 40),
    }


def _ease_space(trial: Any) -> dict[str, Any]:
    return {"l2": trial.suggest_float("l2", 1.0, 5000.0, log=True)}


def _itemknn_space(trial: Any) -> dict[str, Any]:
    return {
        "k_neighbors": trial.suggest_int("k_neighbors", 2, 500, log=True),
        "shrink": trial.suggest_float("shrink", 0.0, 200.0),
    }


def _bpr_space(trial: Any) -> dict[str, Any]:
    return {
        "factors": trial.suggest_int("factors", 16, 256, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.3, log=True),
        "regularization": trial.suggest_float("regularization", 1e-5, 0.1, log=True),
        "iterations": trial.suggest_int("iterations", 10, 200, log=True),
    }


def _two_tower_space(trial: Any) -> dict[str, Any]:
    return {
        "dim": trial.suggest_categorical("dim", [32, 64, 128]),
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "temperature": trial.suggest_float("temperature", 0.02, 0.5, log=True),
        "epochs": trial.suggest_int("epochs", 2, 20),
    }


def _popularity_space(trial: Any) -> dict[str, Any]:
    keep_all = trial.suggest_categorical("decay", [False, True])
    if not keep_all:
        return {"half_life_days": None}
    return {"half_life_days": trial.suggest_float("half_life_days", 1.0, 720.0, log=True)}


def _content_space(trial: Any) -> dict[str, Any]:
    return {"popularity_weight": trial.suggest_float("popularity_weight", 0.01, 4.0, log=True)}


SEARCH_SPACES: dict[str, SearchSpace] = {
    "als": _als_space,
    "ease": _ease_space,
    "itemknn": _itemknn_space,
    "bpr": _bpr_space,
    "two_tower": _two_tower_space,
    "popularity": _popularity_space,
    "content": _content_space,
}


def search_space(model: str) -> SearchSpace:
    """The search space of ``model``; a ConfigError names the tunable models."""
    if model not in SEARCH_SPACES:
        if model not in MODELS:
            model_class(model)  # raises the ConfigError listing every model
        raise ConfigError(
            f"model {model!r} has no search space; tunable: {', '.join(SEARCH_SPACES)}"
        )
    return SEARCH_SPACES[model]
