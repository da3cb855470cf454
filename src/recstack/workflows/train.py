"""Train a model on the store's data and register it (``recstack train``, ``POST /admin/train``).

One path from stored events to a registered version:
snapshot -> (holdout evaluation) -> fit on everything -> log + register -> (alias).
The holdout metrics are recorded with the version so a promotion can be judged on them; the
registered model itself is refit on all the data.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from recstack.data.dataset import Dataset
from recstack.evaluation.protocol import (
    check_protocol,
    check_request,
    evaluate_models,
    split_dataset,
)
from recstack.models.base import Recommender
from recstack.models.catalog import create_model
from recstack.monitoring.windows import data_window
from recstack.registry.cards import write_model_card
from recstack.registry.mlflow_registry import ModelRegistry, VersionInfo
from recstack.settings import Settings
from recstack.workflows.auto import AUTO, DEFAULT_BUDGET_SECONDS, auto_select
from recstack.workflows.dataset import StoreSnapshot, read_snapshot

# Called with the fitted model, its promoted version and the snapshot it was fitted on; the
# serving runtime passes one that writes the version's serving image from that snapshot.
PrepareServing = Callable[[Recommender, VersionInfo, StoreSnapshot], None]


def holdout_metric_names(metrics: Mapping[str, float], k: int) -> dict[str, float]:
    """Evaluation metrics as MLflow metric keys: ``ndcg`` at k=10 becomes ``ndcg_at_10``."""
    return {f"{key}_at_{k}": float(value) for key, value in metrics.items()}


def choose_model(
    data: Dataset, protocol: str, k: int, budget: float, progress: bool
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """``auto``: the family and parameters ``auto_select`` picks on the training part of the
    evaluation split (75/25, seed 42), with the registry tags that record the choice."""
    check_protocol(protocol)
    train, _ = split_dataset(data, protocol, 0.75, 42)
    choice = auto_select(train, budget_seconds=budget, k=k, progress=progress)
    return choice.model, choice.params, choice.summary()


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
    auto_budget: float = DEFAULT_BUDGET_SECONDS,
    prepare_serving: PrepareServing | None = None,
) -> VersionInfo:
    """Train ``model`` on the store's data and register it as a new version.

    Args:
        settings: store, registry and event weights.
        model: model name; ``params`` its parameters (defaults otherwise). ``auto`` picks and
            tunes a family within ``auto_budget`` seconds (``workflows.auto``) on the training
            part of the evaluation split, so the recorded holdout metrics stay unseen.
        evaluate: first fit on a holdout split (``protocol``, 75/25, seed 42) and record its
            metrics at ``k`` and charts with the version.
        promote: an alias (e.g. ``champion``) to point at the new version.
        name: registered model name (default ``settings.model_name``).
        dataset: train on this instead of a store snapshot.
        prepare_serving: after a promotion, called with the model, its version and the store
            snapshot it was fitted on (not with ``dataset``: no mark says what it holds).

    Returns the registered version (with its aliases after promotion).
    """
    params = dict(params or {})
    auto = model == AUTO
    if not auto:
        check_request({model: params}, protocol, 0.75, k, (k,))
    snapshot = read_snapshot(settings, progress=progress) if dataset is None else None
    data = dataset if snapshot is None else snapshot.dataset
    tags = {"recstack.evaluated": str(evaluate).lower()}
    if auto:
        model, params, auto_tags = choose_model(data, protocol, k, auto_budget, progress)
        tags.update(auto_tags)
    registry = ModelRegistry(settings)
    with tempfile.TemporaryDirectory(prefix="recstack-train-") as tmp:
        metrics: dict[str, float] = {}
        plots: list[Path] = []
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
            dataset_stats={**data.stats(), **data_window(data.timestamp)},
            plots=plots,
            tags=tags,
        )
    write_model_card(registry, version.name, version.version)
    if promote:
        version = registry.promote(version.name, version.version, promote)
        if prepare_serving is not None and snapshot is not None:
            prepare_serving(fitted, version, snapshot)
    return version
