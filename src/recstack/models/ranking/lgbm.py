"""LightGBM (lambdarank or binary) behind a few small functions, imported only when a reranker is used.

The booster is kept and saved in LightGBM's own text format (``model_to_string``), which is
portable across LightGBM versions and platforms and needs no pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recstack.errors import require


def lightgbm() -> Any:
    """The ``lightgbm`` module, or a ``MissingExtraError`` naming ``recstack[ranking]``."""
    return require("lightgbm", "ranking")


def train_booster(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    names: Sequence[str],
    *,
    rounds: int,
    learning_rate: float,
    num_leaves: int,
    min_data_in_leaf: int,
    seed: int,
    eval_at: int = 10,
    init_score: np.ndarray | None = None,
    monotone: Sequence[int] | None = None,
    objective: str = "lambdarank",
) -> Any:
    """A booster: lambdarank on query groups (one group per user list, in row order), or a
    pointwise binary classifier of the same rows (``objective="binary"``).

    ``init_score`` starts boosting from a known ranking (the booster then learns corrections
    and its raw output must be added back to that score); ``monotone`` constrains features
    (+1 increasing, -1 decreasing, 0 free).
    """
    lgb = lightgbm()
    params = {
        "objective": objective,
        "metric": "ndcg" if objective == "lambdarank" else "auc",
        "eval_at": [eval_at],
        "lambdarank_truncation_level": max(eval_at * 2, 20),
        "learning_rate": learning_rate,
        "num_leaves": num_leaves,
        "min_data_in_leaf": min_data_in_leaf,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "verbosity": -1,
    }
    if monotone is not None and any(monotone):
        params["monotone_constraints"] = list(monotone)
        params["monotone_constraints_method"] = "advanced"
    data = lgb.Dataset(
        features,
        label=labels,
        group=np.asarray(groups) if objective == "lambdarank" else None,
        feature_name=list(names),
        free_raw_data=True,
        init_score=init_score,
    )
    return lgb.train(params, data, num_boost_round=rounds)


def booster_from_text(text: str) -> Any:
    """A booster from LightGBM's text model format."""
    return lightgbm().Booster(model_str=text)


def predict(booster: Any, features: np.ndarray) -> np.ndarray:
    """Scores as float32 (single-threaded: serving calls it per request)."""
    return np.asarray(booster.predict(features, num_threads=1), dtype=np.float32)


def contributions(booster: Any, features: np.ndarray) -> np.ndarray:
    """Per-feature contributions (SHAP values) ``(n, n_features + 1)``, the bias last."""
    return np.asarray(booster.predict(features, pred_contrib=True, num_threads=1))
