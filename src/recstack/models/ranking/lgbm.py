"""LightGBM (lambdarank or binary) behind a few small functions, imported only when a reranker is used.

The booster is kept and saved in LightGBM's own text format (``model_to_string``), which is
portable across LightGBM versions and platforms and needs no pickle.
"""

from __future__ import annotations

import re
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


def average_models(texts: Sequence[str]) -> str:
    """One LightGBM text model whose raw score is the mean of the given models' raw scores.

    The trees of every model in turn, their leaf and internal values divided by the number of
    models, so a bag of boosters predicts, explains (``pred_contrib``) and compiles as one.
    The models must share objective and features; each feature's value range is the union.

    >>> one = "\\n".join(["tree", "objective=binary sigmoid:1", "feature_names=a",
    ...     "feature_infos=[0:1]", "tree_sizes=1", "", "Tree=0", "num_leaves=1",
    ...     "leaf_value=0.5", "shrinkage=1", "", "", "end of trees", "", "parameters:",
    ...     "end of parameters", ""])
    >>> two = one.replace("0.5", "1.5").replace("[0:1]", "[-1:0.5]")
    >>> merged = average_models([one, two])
    >>> [line for line in merged.splitlines() if line.startswith(("leaf_value", "feature_infos"))]
    ['feature_infos=[-1:1]', 'leaf_value=0.25', 'leaf_value=0.75']
    """
    if len(texts) == 1:
        return texts[0]
    heads, trees, tails = zip(*(_model_parts(text) for text in texts), strict=True)
    for key in ("objective", "feature_names", "num_class", "num_tree_per_iteration"):
        if len({head.get(key) for head in heads}) != 1:
            raise ValueError(f"models to average differ in {key}")
    scale = 1.0 / len(texts)
    blocks = [
        _scaled_tree(i, block, scale)
        for i, block in enumerate(block for model in trees for block in model)
    ]
    head = dict(heads[0])
    infos = [h["feature_infos"].split(" ") for h in heads]
    head["feature_infos"] = " ".join(_union_range(column) for column in zip(*infos, strict=True))
    head["tree_sizes"] = " ".join(str(len(b.encode())) for b in blocks)
    header = "tree\n" + "".join(f"{k}={v}\n" for k, v in head.items()) + "\n"
    return header + "".join(blocks) + "end of trees" + tails[0]


def _model_parts(text: str) -> tuple[dict[str, str], list[str], str]:
    """Header keys, tree blocks (``Tree=i`` up to the next) and what follows ``end of trees``
    (without feature importances, which describe one model only)."""
    start = text.index("\nTree=")
    head = dict(line.split("=", 1) for line in text[:start].splitlines()[1:] if "=" in line)
    body, _, tail = text[start + 1 :].partition("end of trees")
    blocks = [b for b in re.split(r"(?m)^(?=Tree=\d+$)", body) if b]
    if "feature_importances:" in tail:
        before, _, after = tail.partition("feature_importances:")
        tail = before + after[after.index("\n\n") + 2 :] if "\n\n" in after else before
    return head, blocks, tail


_SCALED = ("leaf_value=", "internal_value=", "shrinkage=")


def _scaled_tree(index: int, block: str, scale: float) -> str:
    """A tree block renumbered ``index`` with its values multiplied by ``scale``."""
    lines = block.split("\n")
    lines[0] = f"Tree={index}"
    for i, line in enumerate(lines):
        if line.startswith(_SCALED):
            key, values = line.split("=", 1)
            lines[i] = key + "=" + " ".join(repr(float(v) * scale) for v in values.split(" "))
    return "\n".join(lines)


def _union_range(infos: Sequence[str]) -> str:
    """One feature's ``feature_infos`` over several models: the union of their ranges."""
    known = [info for info in infos if info != "none"]
    if not known:
        return "none"
    if not all(info.startswith("[") for info in known):  # categorical: the union of categories
        return ":".join(sorted({c for info in known for c in info.split(":")}, key=int))
    bounds = [info[1:-1].split(":") for info in known]
    low = min(float(lo) for lo, _ in bounds)
    high = max(float(hi) for _, hi in bounds)
    return f"[{low:.17g}:{high:.17g}]"
