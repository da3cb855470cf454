"""Hyper-parameter search with Optuna (``recstack tune``).

``tune`` never sees a test split: the caller passes training data, and tune carves a validation
split out of it (per-user stratified), so the numbers it optimises stay honest. From the store,
``tune_from_store`` tunes on the training part of the very split ``evaluate`` makes, so the test
part that later judges the tuned model is never seen while tuning. The best parameters go to a
config file (``workflows.configs.save_config``) that ``recstack train`` and ``recstack evaluate``
read with ``--config``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from recstack.data.dataset import Dataset
from recstack.errors import ConfigError
from recstack.evaluation.protocol import check_protocol, holdout_metrics, split_dataset
from recstack.models.catalog import create_model, validate_params
from recstack.progress import ProgressTask
from recstack.settings import Settings
from recstack.workflows.dataset import load_dataset
from recstack.workflows.search_spaces import search_space

TUNABLE_METRICS: tuple[str, ...] = (
    "ndcg",
    "precision",
    "recall",
    "map",
    "map_all_relevant",
    "mrr",
    "hit_rate",
)


def check_tuning(
    model: str, metric: str, trials: int, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Validate a tuning request before any data is read; returns the fixed ``params`` checked.

    The fixed params go through the model catalogue, so a typo fails here with the list of
    valid parameters rather than in the first trial.
    """
    search_space(model)
    if metric not in TUNABLE_METRICS:
        raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(TUNABLE_METRICS)}")
    if trials < 1:
        raise ConfigError(f"trials must be at least 1, got {trials}")
    return validate_params(model, params, only_given=True)


def out_of_time(elapsed: float, longest_trial: float, timeout: float | None) -> bool:
    """Whether a search with ``timeout`` seconds should start no more trials: the next one,
    if it takes as long as the longest so far, would end past the timeout.

    >>> out_of_time(50.0, 8.0, 60.0), out_of_time(53.0, 8.0, 60.0), out_of_time(1e9, 8.0, None)
    (False, True, False)
    """
    return timeout is not None and elapsed + longest_trial > timeout


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
    timeout: float | None = None,
    trial_seconds: float = 0.0,
) -> tuple[dict[str, Any], float, Any]:
    """Search ``model``'s parameters maximising ``metric``@k on a validation split.

    Args:
        dataset: training data only; a per-user ``validation_ratio`` split of it is carved
            here (seeded), models fit on the first part and are scored on the second.
        model: a model name with a search space (see ``SEARCH_SPACES``).
        trials: number of Optuna trials (TPE sampler seeded with ``seed``).
        metric: one of ``TUNABLE_METRICS``.
        params: fixed parameters applied under every trial's sampled ones.
        timeout: start no trial that would end after this many seconds if it took as long
            as the longest so far (``trials`` is then a cap); ``trial_seconds`` is that
            estimate before any trial ended (for example the time one default fit took).

    Returns:
        ``(best_params, best_value, study)``: the parameters to pass to ``create_model`` (fixed
        plus best sampled), the best validation score and the Optuna study.
    """
    import optuna

    from recstack.data.splits import stratified_split

    fixed = check_tuning(model, metric, trials, params)
    space = search_space(model)
    train, valid = stratified_split(dataset, ratio=validation_ratio, seed=seed)

    def objective(trial: optuna.Trial) -> float:
        recommender = create_model(model, **{**fixed, **space(trial)})
        try:
            fitted = recommender.fit(train)
        except ValueError as exc:
            raise ConfigError(f"{model}: {exc}") from exc
        return holdout_metrics(fitted, train, valid, k=k)[metric]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        study_name=f"recstack-{model}",
    )
    started, longest = time.perf_counter(), float(trial_seconds)
    with ProgressTask(f"tuning {model}", total=trials, enabled=progress) as bar:

        def advance(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            nonlocal longest
            best = study.best_value if study.best_trials else float("nan")
            bar.update(description=f"tuning {model} (best {metric}@{k} {best:.4f})")
            bar.advance(1)
            if trial.duration is not None:
                longest = max(longest, trial.duration.total_seconds())
            if out_of_time(time.perf_counter() - started, longest, timeout):
                study.stop()

        if out_of_time(0.0, longest, timeout):
            raise ValueError("no trial fits in the time given")  # as optuna: none completed
        study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[advance])
    best = {**fixed, **space(optuna.trial.FixedTrial(study.best_params))}
    return best, float(study.best_value), study


def tune_from_store(
    settings: Settings,
    model: str,
    *,
    trials: int = 20,
    seed: int = 42,
    metric: str = "ndcg",
    k: int = 10,
    protocol: str = "stratified",
    ratio: float = 0.75,
    params: Mapping[str, Any] | None = None,
    progress: bool = False,
    dataset: Dataset | None = None,
) -> tuple[dict[str, Any], float, Any]:
    """Tune ``model`` on the training part of the evaluation split of the store's data.

    The split (``protocol``, ``ratio``, ``seed``) is the one ``evaluate`` makes, so its test
    part, which later judges the tuned model, is never seen while tuning.
    """
    check_tuning(model, metric, trials, params)
    check_protocol(protocol)
    data = dataset if dataset is not None else load_dataset(settings, progress=progress)
    train, _ = split_dataset(data, protocol, ratio, seed)
    return tune(train, model, trials, seed, metric, k, progress, params=params)
