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
    early_stopping: int = 0,
    validation: float = 0.15,
    group_keys: np.ndarray | None = None,
) -> Any:
    """A booster: lambdarank or rank_xendcg on query groups (one group per user list, in row
    order), or a pointwise binary classifier of the same rows (``objective="binary"``).

    ``init_score`` starts boosting from a known ranking (the booster then learns corrections
    and its raw output must be added back to that score); ``monotone`` constrains features
    (+1 increasing, -1 decreasing, 0 free). With ``early_stopping`` the lists of a
    ``validation`` share of the groups (of the ``group_keys``, e.g. users, so one user's lists
    from several folds stay on one side) pick the number of rounds by NDCG@``eval_at``; the
    booster is then refitted on all lists with that many rounds.
    """
    lgb = lightgbm()
    listwise = objective != "binary"
    params = {
        "objective": objective,
        "metric": "ndcg" if listwise or early_stopping else "auc",
        "eval_at": [eval_at],
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
    if objective == "lambdarank":
        params["lambdarank_truncation_level"] = max(eval_at * 2, 20)
    if monotone is not None and any(monotone):
        params["monotone_constraints"] = list(monotone)
        params["monotone_constraints_method"] = "advanced"
    groups = np.asarray(groups)

    def dataset(rows: np.ndarray | None, lists: np.ndarray, **kw: Any) -> Any:
        """The rows ``rows`` (all, uncopied, for ``None``) as a LightGBM dataset."""
        pick = (lambda a: a) if rows is None else (lambda a: a[rows])
        return lgb.Dataset(
            pick(features),
            label=pick(labels),
            group=lists,  # a pointwise objective ignores it; the NDCG metric needs it
            feature_name=list(names),
            free_raw_data=True,
            init_score=None if init_score is None else pick(init_score),
            **kw,
        )

    if early_stopping and len(groups) > 1:
        keys = np.arange(len(groups)) if group_keys is None else np.asarray(group_keys)
        unique = np.unique(keys)
        rng = np.random.default_rng(seed)
        held = rng.choice(unique, size=max(1, int(round(len(unique) * validation))), replace=False)
        valid_group = np.isin(keys, held)
        valid_row = np.repeat(valid_group, groups)
        fit_rows, valid_rows = np.flatnonzero(~valid_row), np.flatnonzero(valid_row)
        train = dataset(fit_rows, groups[~valid_group])
        valid = dataset(valid_rows, groups[valid_group], reference=train)
        probe = lgb.train(
            params,
            train,
            num_boost_round=rounds,
            valid_sets=[valid],
            callbacks=[lgb.early_stopping(early_stopping, verbose=False)],
        )
        rounds = max(int(probe.best_iteration or rounds), 1)
    return lgb.train(params, dataset(None, groups), num_boost_round=rounds)


def booster_from_text(text: str) -> Any:
    """A booster from LightGBM's text model format."""
    return lightgbm().Booster(model_str=text)


def predict(booster: Any, features: np.ndarray) -> np.ndarray:
    """Scores as float32 (single-threaded: serving calls it per request)."""
    return np.asarray(booster.predict(features, num_threads=1), dtype=np.float32)


def contributions(booster: Any, features: np.ndarray) -> np.ndarray:
    """Per-feature contributions (SHAP values) ``(n, n_features + 1)``, the bias last."""
    return np.asarray(booster.predict(features, pred_contrib=True, num_threads=1))
