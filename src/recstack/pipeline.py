"""The training and evaluation jobs the CLI, the HTTP admin endpoints and the demo all run.

Each job reads a snapshot of the store (weighted by the settings' event weights), so there is
one path from stored events to a registered model:
snapshot -> (holdout evaluation) -> fit on everything -> log + register -> (alias).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recstack.data.dataset import Dataset
from recstack.errors import ConfigError, DataError
from recstack.evaluation.protocol import (
    DEFAULT_KS,
    EvaluationResult,
    check_protocol,
    check_request,
    evaluate_models,
    split_dataset,
)
from recstack.models.catalog import create_model
from recstack.registry.mlflow_registry import ModelRegistry, VersionInfo
from recstack.settings import Settings

MIN_INTERACTIONS = 2
SECONDS_PER_DAY = 86_400


def load_dataset(settings: Settings, *, progress: bool = False) -> Dataset:
    """A snapshot of the store, weighted by ``settings.event_weights``.

    With ``settings.history_days`` set, only that many days of history (up to now) are read.
    Raises DataError when the store holds too little to train on.
    """
    from recstack.store import Store

    since = None
    if settings.history_days is not None:
        since = int(time.time()) - int(settings.history_days) * SECONDS_PER_DAY
    store = Store.from_settings(settings)
    try:
        dataset = store.snapshot(settings.weighting(), since=since, progress=progress)
    finally:
        store.close()
    if dataset.n_interactions < MIN_INTERACTIONS:
        raise DataError(
            f"the store at {settings.store_url} holds {dataset.n_interactions} interaction(s); "
            "ingest data first (recstack ingest ...)"
        )
    return dataset


def evaluate_from_store(
    settings: Settings,
    models: Sequence[str] | Mapping[str, Mapping[str, Any] | None],
    *,
    protocol: str = "stratified",
    ratio: float = 0.75,
    seed: int = 42,
    k: int = 10,
    ks: Sequence[int] = DEFAULT_KS,
    min_rating: float | None = None,
    progress: bool = False,
    dataset: Dataset | None = None,
) -> EvaluationResult:
    """Compare ``models`` offline on the store's data (see ``evaluate_models``)."""
    check_request(models, protocol, ratio, k, ks)
    data = dataset if dataset is not None else load_dataset(settings, progress=progress)
    return evaluate_models(
        data,
        models,
        protocol=protocol,
        ratio=ratio,
        seed=seed,
        k=k,
        ks=ks,
        progress=progress,
        min_rating=min_rating,
    )


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
    from recstack.tuning import TUNABLE_METRICS, search_space, tune

    search_space(model)
    check_protocol(protocol)
    if metric not in TUNABLE_METRICS:
        raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(TUNABLE_METRICS)}")
    data = dataset if dataset is not None else load_dataset(settings, progress=progress)
    train, _ = split_dataset(data, protocol, ratio, seed)
    return tune(train, model, trials, seed, metric, k, progress, params=params)


def holdout_metric_names(metrics: Mapping[str, float], k: int) -> dict[str, float]:
    """Evaluation metrics as MLflow metric keys: ``ndcg`` at k=10 becomes ``ndcg_at_10``."""
    return {f"{key}_at_{k}": float(value) for key, value in metrics.items()}


def train_and_register(
    settings: Settings,
    model: str,
    params: Mapping[str, Any] | None = None,
    *,
    evaluate: bool = True,
    protocol: str = "stratified",
    k: int = 10,
    promote: str | None = None,
    progress: bool = False,
    name: str | None = None,
    dataset: Dataset | None = None,
) -> VersionInfo:
    """Train ``model`` on the store's data and register it as a new version.

    Args:
        settings: store, registry and event weights.
        model: model name; ``params`` its parameters (defaults otherwise).
        evaluate: first fit on a holdout split (``protocol``, 75/25, seed 42) and record its
            metrics at ``k`` and charts with the version.
        promote: an alias (e.g. ``champion``) to point at the new version.
        name: registered model name (default ``settings.model_name``).
        dataset: train on this instead of a store snapshot.

    Returns the registered version (with its aliases after promotion).
    """
    params = dict(params or {})
    check_request({model: params}, protocol, 0.75, k, (k,))
    data = dataset if dataset is not None else load_dataset(settings, progress=progress)
    registry = ModelRegistry(settings)
    with tempfile.TemporaryDirectory(prefix="recstack-train-") as tmp:
        metrics: dict[str, float] = {}
        plots: list[Path] = []
        tags = {"recstack.evaluated": str(evaluate).lower()}
        if evaluate:
            from recstack.evaluation.plots import write_plots

            result = evaluate_models(
                data, {model: params}, protocol=protocol, k=k, ks=(k,), progress=progress
            )
            scored = result.models[0]
            metrics = holdout_metric_names(scored.metrics, k)
            plots = list(write_plots(result, Path(tmp)).values())
            tags.update(
                {
                    "recstack.eval.protocol": protocol,
                    "recstack.eval.users_evaluated": str(result.users_evaluated),
                    "recstack.eval.users_skipped": str(result.users_skipped),
                }
            )
        fitted = create_model(model, **params).fit(data, progress=progress)
        metrics["train_seconds"] = float(fitted.meta.train_seconds)
        version = registry.log_model(
            fitted,
            name=name or settings.model_name,
            metrics=metrics,
            dataset_stats=data.stats(),
            plots=plots,
            tags=tags,
        )
    if promote:
        version = registry.promote(version.name, version.version, promote)
    return version
