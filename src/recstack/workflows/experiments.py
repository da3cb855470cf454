"""Experiments end to end: create, start, ramp, stop, results — what the CLI, the admin API and
the dashboard call (one path).

Lifecycle: ``draft`` -> ``running`` -> ``stopped``, nothing else. Arms cannot change once an
experiment has started (its users would silently change treatment mid-way); a running
experiment's traffic can only rise (``ramp``). Every refusal is a ``ConfigError`` (bad input,
422) or ``ConflictError`` (wrong state or duplicate key, 409) and writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from recstack.errors import ConfigError, NotFoundError
from recstack.experiments.analysis import ArmSample, analyse_experiment
from recstack.experiments.assignment import allocate, check_ramp
from recstack.experiments.config import POPULARITY, TWO_STAGE, Experiment, validated
from recstack.settings import Settings


def create_experiment(store: Any, settings: Settings, data: Any) -> dict[str, Any]:
    """Validate ``data``, check every arm's model exists, store it as a draft."""
    experiment = Experiment.from_input(data)
    for arm in experiment.arms:
        check_model(settings, arm.model, arm.name)
    return store.experiments.create(experiment.as_dict())


def check_model(settings: Settings, ref: str, arm: str = "") -> None:
    """Refuse (``ConfigError``) a model reference the registry cannot resolve."""
    if ref == POPULARITY:
        return
    from recstack.registry import ModelRegistry

    name, _, rest = ref.rpartition(":")
    if ref == TWO_STAGE:
        name, rest = TWO_STAGE, settings.serving_alias
    name = name or settings.model_name
    label = f"arm {arm!r}: " if arm else ""
    if not settings.mlflow_tracking_uri and not (settings.home / "mlflow.db").exists():
        raise ConfigError(f"{label}unknown model {ref!r}: no model registry yet")
    registry = ModelRegistry(settings)
    try:
        if rest.isdigit():
            registry.get_version(name, int(rest))
        else:
            registry.resolve(name, alias=rest)
    except NotFoundError as exc:
        raise ConfigError(f"{label}unknown model {ref!r}: {exc}") from None


def get_experiment(store: Any, key: str) -> dict[str, Any]:
    found = store.experiments.get(key)
    if found is None:
        raise NotFoundError(f"unknown experiment {key!r}")
    return found


def list_experiments(store: Any, status: str | None = None) -> list[dict[str, Any]]:
    return store.experiments.list(status)


def start_experiment(store: Any, key: str) -> dict[str, Any]:
    """Start a draft: allocate its users in the namespace and mark it running."""

    def update(definition: dict[str, Any], running: list[dict[str, Any]]) -> dict[str, Any]:
        experiment = validated(definition)
        others = [validated(d) for d in running]
        start = allocate(experiment, others)
        now = datetime.now(UTC).isoformat()
        return {**definition, "status": "running", "bucket_start": start, "started_at": now}

    return store.experiments.change(key, ("draft",), update)


def start_challenger_test(
    store: Any, settings: Settings, version: int, traffic: float
) -> dict[str, Any]:
    """Create and start an A/B test of the champion against registered ``version``, half each.

    What a retrain does instead of promoting when its gate says ``on_pass=experiment``: the
    challenger earns the alias through the experiment's results, not the offline holdout.
    """
    name = settings.model_name
    definition = {
        "key": f"retrain-{name}-v{version}",
        "description": f"retrained {name} v{version} against the champion",
        "traffic": traffic,
        "arms": [
            {"name": "champion", "model": settings.serving_alias, "weight": 0.5},
            {"name": "challenger", "model": f"{name}:{version}", "weight": 0.5},
        ],
    }
    created = create_experiment(store, settings, definition)
    return start_experiment(store, created["key"])


def stop_experiment(store: Any, key: str) -> dict[str, Any]:
    """Stop a draft or running experiment: its users go back to the default slot."""

    def update(definition: dict[str, Any], _running: list[dict[str, Any]]) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        return {**definition, "status": "stopped", "stopped_at": now}

    return store.experiments.change(key, ("draft", "running"), update)


def ramp_experiment(store: Any, key: str, traffic: float) -> dict[str, Any]:
    """Raise a running (or draft) experiment's traffic; users already in it keep their arm."""

    def update(definition: dict[str, Any], running: list[dict[str, Any]]) -> dict[str, Any]:
        experiment = validated(definition)
        if not 0 < traffic <= 1:
            raise ConfigError(f"traffic must be in (0, 1]; got {traffic}")
        if experiment.status == "running":
            check_ramp(experiment, traffic, [validated(d) for d in running])
        return validated({**definition, "traffic": traffic}).as_dict()

    return store.experiments.change(key, ("draft", "running"), update)


def user_samples(
    store: Any, experiment: Experiment, until: float | None = None, *, from_log: bool = False
) -> pd.DataFrame:
    """One row per (arm, user) of the experiment (see ``ExposureStore.user_metrics``)."""
    return store.exposures.user_metrics(
        experiment.key,
        experiment.click_events,
        experiment.conversion_events,
        until,
        from_log=from_log,
    )


def arm_samples(frame: pd.DataFrame, experiment: Experiment) -> dict[str, ArmSample]:
    """The user-level frame as one ``ArmSample`` per arm (empty arms included)."""
    samples = {}
    for arm in experiment.arm_names:
        rows = frame[frame["arm"] == arm]
        samples[arm] = ArmSample(
            exposures=rows["exposures"].to_numpy(np.float64),
            clicks=rows["clicks"].to_numpy(np.float64),
            conversions=rows["conversions"].to_numpy(np.float64),
            value=rows["value"].to_numpy(np.float64),
        )
    return samples


def experiment_results(
    store: Any, key: str, *, alpha: float = 0.05, mde: float = 0.05, from_log: bool = False
) -> dict[str, Any]:
    """Per-arm metrics, SRM, lifts, sequential status and the decision (or, for interleaving,
    the preference test). A running experiment is judged by the always-valid test, since its
    results are read while traffic still arrives.

    Read from the per-user rollups; ``from_log=True`` recomputes them from every logged
    exposure and outcome instead (the same figures, at a cost that grows with the log)."""
    experiment = validated(get_experiment(store, key))
    head = {"key": key, "status": experiment.status, "mode": experiment.mode}
    if experiment.mode == "interleave":
        return {**head, **interleaving_results(store, experiment, from_log=from_log)}
    frame = user_samples(store, experiment, from_log=from_log)
    samples = arm_samples(frame, experiment)
    thin = [arm for arm, sample in samples.items() if sample.users < 2]
    if thin:
        return {
            **head,
            "arms": {
                arm: {"users": s.users, "exposures": int(s.exposures.sum())}
                for arm, s in samples.items()
            },  # fmt: skip
            "decision": {
                "action": "keep running",
                "reason": f"arm(s) {', '.join(thin)} have fewer than 2 users so far",
            },
        }
    analysis = analyse_experiment(
        samples,
        {arm.name: arm.weight for arm in experiment.arms},
        experiment.arm_names[0],
        alpha=alpha,
        primary=experiment.primary_metric,
        guardrails=experiment.guardrails,
        looks=1 if experiment.status == "running" else None,
        mde=mde,
    )
    positions = store.exposures.clicks_by_position(key, experiment.click_events, from_log=from_log)
    analysis["clicks_by_position"] = {
        str(arm): [[int(p), int(c)] for p, c in zip(g["position"], g["clicks"], strict=True)]
        for arm, g in positions.groupby("arm")
    }
    return {**head, **analysis}


def interleaving_results(
    store: Any, experiment: Experiment, *, from_log: bool = False
) -> dict[str, Any]:
    """Users preferring each arm by credited clicks, and the sign test."""
    from recstack.experiments.interleaving import preference_test

    users = user_samples(store, experiment, from_log=from_log)["user_id"].unique()
    credits = store.exposures.credits(experiment.key, experiment.click_events)
    table = credits.pivot_table(index="user_id", columns="arm", values="clicks", fill_value=0)
    table = table.reindex(index=users, columns=experiment.arm_names, fill_value=0).fillna(0)
    a, b = experiment.arm_names
    result = preference_test(table[a].to_numpy(), table[b].to_numpy())
    winner = {"a": a, "b": b}.get(result.winner or "", None)
    return {
        "users": len(users),
        "preference": {
            f"wins_{a}": result.wins_a,
            f"wins_{b}": result.wins_b,
            "ties": result.ties,
            "delta": result.delta,
            "p_value": result.p_value,
            "winner": winner if result.p_value < 0.05 else None,
        },
    }
