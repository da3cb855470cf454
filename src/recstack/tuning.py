"""Hyper-parameter search with Optuna, and model configs as small TOML files.

``tune`` never sees a test split: the caller passes training data, and tune carves a validation
split out of it (per-user stratified), so the numbers it optimises stay honest. The best
parameters go to a config file (``save_config``) that ``recstack train`` and ``recstack
evaluate`` read with ``--config``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from recstack.data.dataset import Dataset
from recstack.errors import ConfigError
from recstack.models.catalog import MODELS, create_model, model_class
from recstack.progress import ProgressTask

# Each space samples the parameters of one model from an optuna Trial.
SearchSpace = Callable[[Any], dict[str, Any]]

TUNABLE_METRICS: tuple[str, ...] = (
    "ndcg",
    "precision",
    "recall",
    "map",
    "map_all_relevant",
    "mrr",
    "hit_rate",
)


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


def tune(
    dataset: Dataset,
    model: str,
    trials: int = 20,
    seed: int = 42,
    metric: str = "ndcg",
    k: int = 10,
    progress: bool = False,
    *,
    params: Mapping[str, Any] | None = None,
    validation_ratio: float = 0.8,
) -> tuple[dict[str, Any], float, Any]:
    """Search ``model``'s parameters maximising ``metric``@k on a validation split.

    Args:
        dataset: training data only; a per-user ``validation_ratio`` split of it is carved
            here (seeded), models fit on the first part and are scored on the second.
        model: a model name with a search space (see ``SEARCH_SPACES``).
        trials: number of Optuna trials (TPE sampler seeded with ``seed``).
        metric: one of ``TUNABLE_METRICS``.
        params: fixed parameters applied under every trial's sampled ones.

    Returns:
        ``(best_params, best_value, study)``: the parameters to pass to ``create_model`` (fixed
        plus best sampled), the best validation score and the Optuna study.
    """
    import optuna

    from recstack.data.splits import stratified_split
    from recstack.evaluation.protocol import holdout_metrics

    space = search_space(model)
    if metric not in TUNABLE_METRICS:
        raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(TUNABLE_METRICS)}")
    if trials < 1:
        raise ConfigError(f"trials must be at least 1, got {trials}")
    fixed = dict(params or {})
    train, valid = stratified_split(dataset, ratio=validation_ratio, seed=seed)

    def objective(trial: optuna.Trial) -> float:
        candidate = {**fixed, **space(trial)}
        try:
            fitted = create_model(model, **candidate).fit(train)
        except ValueError as exc:
            raise ConfigError(f"{model}: {exc}") from exc
        return holdout_metrics(fitted, train, valid, k=k)[metric]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        study_name=f"recstack-{model}",
    )
    with ProgressTask(f"tuning {model}", total=trials, enabled=progress) as bar:

        def advance(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            best = study.best_value if study.best_trials else float("nan")
            bar.update(description=f"tuning {model} (best {metric}@{k} {best:.4f})")
            bar.advance(1)

        study.optimize(objective, n_trials=trials, callbacks=[advance])
    best = {**fixed, **space(optuna.trial.FixedTrial(study.best_params))}
    return best, float(study.best_value), study


def save_config(params: Mapping[str, Any], path: Path | str, *, model: str) -> Path:
    """Write ``model`` and its ``params`` as TOML (``[model] name`` and a ``[params]`` table).

    Values must be flat scalars (str, int, float, bool) or lists of them; ``None`` values are
    left out (the model's default, which is what None means in every model here, applies).
    """
    lines = ["[model]", f"name = {_toml_value(model)}", "", "[params]"]
    for key, value in params.items():
        if value is None:
            continue
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def load_config(path: Path | str) -> tuple[str, dict[str, Any]]:
    """Read a model config written by ``save_config`` (or by hand): ``(name, params)``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise ConfigError(f'{path}: missing [model] table with name = "<model>"')
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: [params] must be a table")
    name = model["name"]
    model_class(name)
    unknown = set(params) - set(model_class(name).defaults)
    if unknown:
        raise ConfigError(
            f"{path}: unknown parameter(s) for {name}: {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(model_class(name).defaults))}"
        )
    return name, dict(params)


def _toml_key(key: str) -> str:
    if key and all(c.isalnum() or c in "_-" for c in key):
        return key
    return _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        escaped = escaped.replace("\t", "\\t").replace("\r", "\\r")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if hasattr(value, "item"):  # numpy scalar
        return _toml_value(value.item())
    raise ConfigError(f"cannot write {type(value).__name__} value {value!r} to a TOML config")
