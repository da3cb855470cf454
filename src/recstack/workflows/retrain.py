"""Retraining with a promotion gate (``recstack retrain``, ``POST /v1/admin/retrain``, the
scheduler), and rollback.

snapshot -> fit a challenger (the champion's family and parameters) on the events up to a recent
cut -> score challenger and champion on the events after it -> the gate decides -> the
challenger is refit on every event and registered either way (a refused one keeps its reason)
-> if promoted, ``champion`` moves to it and ``previous`` to the old champion, and running
servers are told to reload -> a decision record in the store and as MLflow tags, and the new
version's model card. One retrain at a time across processes (a lock in the store).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from recstack.data.dataset import Dataset
from recstack.errors import ConflictError, DataError, RecstackError
from recstack.models.base import Recommender
from recstack.models.catalog import create_model
from recstack.monitoring.config import GateConfig, parse_config
from recstack.monitoring.gate import decide
from recstack.monitoring.windows import data_window, window_from_tags
from recstack.progress import ProgressTask
from recstack.registry.cards import DECISION_TAG, run_tags, tag_version, write_model_card
from recstack.registry.mlflow_registry import ModelRegistry, VersionInfo
from recstack.settings import Settings
from recstack.store import jobs as locks
from recstack.store import monitoring as queries
from recstack.workflows.announce import announce_reload
from recstack.workflows.auto import auto_select
from recstack.workflows.dataset import MIN_INTERACTIONS
from recstack.workflows.experiments import start_challenger_test
from recstack.workflows.holdout import score_model, temporal_holdout
from recstack.workflows.monitor import champion_of, open_store

if TYPE_CHECKING:
    from recstack.store import Store

LOCK_NAME = "retrain"
LOCK_TTL_SECONDS = 6 * 3600.0

FitFunction = Callable[[str, Mapping[str, Any], Dataset], Recommender]
Notify = Callable[[], str]


def fit_like_champion(family: str, params: Mapping[str, Any], dataset: Dataset) -> Recommender:
    """A new model of the champion's family with its parameters, fitted on ``dataset``."""
    return create_model(family, **dict(params)).fit(dataset)


@dataclass
class RetrainDecision:
    """What a retrain (or a rollback) decided, with everything it was decided on."""

    id: str
    created_at: str
    action: str
    model_name: str
    promoted: bool
    reason: str
    champion: dict[str, Any]
    challenger: dict[str, Any] | None
    trigger: str = "manual"
    drift_report_id: str | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)
    data_window: dict[str, Any] = field(default_factory=dict)
    holdout: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, int] = field(default_factory=dict)
    notified: str = ""
    seconds: float = 0.0
    experiment: str | None = None  # the A/B test started instead of promoting

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _version_dict(info: VersionInfo, metrics: Mapping[str, float] | None = None) -> dict:
    return {
        "version": info.version,
        "model": info.model,
        "params": dict(info.params),
        "metrics": dict(metrics or {}),
    }


def failed(name: str, trigger: str, drift_report_id: str | None, exc: Exception) -> dict:
    """The decision record of a retrain that broke: nothing promoted, the error as reason."""
    return RetrainDecision(
        id=uuid.uuid4().hex,
        created_at=queries.utc_now(),
        action="retrain",
        model_name=name,
        promoted=False,
        reason=f"failed: {type(exc).__name__}: {exc}"[:1000],
        champion={},
        challenger=None,
        trigger=trigger,
        drift_report_id=drift_report_id,
    ).to_dict()


def run_retrain(
    settings: Settings,
    *,
    store: Store | None = None,
    registry: ModelRegistry | None = None,
    reason: str = "manual",
    drift_report_id: str | None = None,
    progress: bool | None = None,
    config: GateConfig | Mapping[str, Any] | None = None,
    fit: FitFunction | None = None,
    notify: Notify | None = None,
) -> RetrainDecision:
    """Fit a challenger, gate it against the champion, promote or refuse, record the decision.

    Args:
        reason: what triggered the retrain (``manual``, ``drift``, ``schedule``, ``events``).
        drift_report_id: the drift report that triggered it, kept in the record.
        config: the gate's thresholds (``GateConfig`` fields).
        fit: ``fit(family, params, dataset) -> fitted model`` (default: the champion's family
            and parameters); the challenger is fitted with it twice, on the holdout's train part
            and on every event.
        notify: tells running servers to reload after a promotion, returning how it did
            (default: ``announce_reload`` over Redis when configured).

    Raises ConfigError (bad thresholds), ConflictError (a retrain is already running),
    NotFoundError (no champion), DataError (too few new events to judge on). Nothing is
    registered or moved when it raises before the challenger is fitted.
    """
    cfg = parse_config(GateConfig, config)
    registry = registry or ModelRegistry(settings)
    fit = fit or fit_like_champion
    started = time.perf_counter()
    name = settings.model_name
    with open_store(settings, store) as st:
        owner = _owner()
        if not locks.acquire_lock(st.engine, LOCK_NAME, owner, LOCK_TTL_SECONDS):
            holder = locks.lock_holder(st.engine, LOCK_NAME) or {}
            raise ConflictError(
                "a retrain is already running "
                f"(held by {holder.get('owner', 'another process')} since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(holder.get('acquired_at', 0)))}"
                " UTC); wait for it to finish"
            )
        try:
            try:
                decision = _retrain(
                    settings, st, registry, cfg, fit, name, reason, drift_report_id, bool(progress)
                )
            except RecstackError:
                raise  # refused before anything ran (no champion, too few events, bad config)
            except Exception as exc:
                queries.save_decision(st.engine, failed(name, reason, drift_report_id, exc))
                raise
            if decision.promoted:
                decision.notified = (notify or (lambda: announce_reload(settings)))()
            decision.seconds = round(time.perf_counter() - started, 3)
            queries.save_decision(st.engine, decision.to_dict())
        finally:
            locks.release_lock(st.engine, LOCK_NAME, owner)
    return decision


def _retrain(
    settings: Settings,
    store: Store,
    registry: ModelRegistry,
    cfg: GateConfig,
    fit: FitFunction,
    name: str,
    trigger: str,
    drift_report_id: str | None,
    progress: bool,
) -> RetrainDecision:
    with ProgressTask("retraining", total=5, enabled=progress) as bar:
        champion = champion_of(registry, name)
        champion_model = registry.load(name, version=champion.version)
        window = window_from_tags(run_tags(registry, champion))
        dataset = store.snapshot(settings.weighting(), since=settings.history_since())
        if dataset.n_interactions < MIN_INTERACTIONS:
            raise DataError(f"the store holds {dataset.n_interactions} interaction(s)")
        holdout = temporal_holdout(dataset, window[1] if window else None, cfg.holdout_share)
        if holdout.target.users.size < cfg.min_holdout_users:
            raise DataError(
                f"{holdout.target.users.size} user(s) to judge the challenger on after the cut "
                f"(need {cfg.min_holdout_users}); wait for more events"
            )
        bar.update(description="fitting the challenger")
        bar.advance(1)
        family, params = champion.model, champion_model.get_params()
        if cfg.challenger == "auto":
            choice = auto_select(holdout.train, budget_seconds=cfg.auto_budget_seconds, k=cfg.k)
            family, params = choice.model, choice.params
        candidate = fit(family, params, holdout.train)
        bar.update(description="scoring champion and challenger")
        bar.advance(1)
        champion_metrics = score_model(champion_model, holdout, cfg.k)
        challenger_metrics = score_model(candidate, holdout, cfg.k)
        verdict = decide(champion_metrics, challenger_metrics, cfg)
        bar.update(description="refitting on every event")
        bar.advance(1)
        final = fit(family, params, dataset)
        split = (
            f"temporal holdout: events after {holdout.cut} (epoch s); "
            f"{holdout.describe()['users_scored']} users scored at k={cfg.k}"
        )
        metrics = {f"{key}_at_{cfg.k}": value for key, value in challenger_metrics.items()}
        version = registry.log_model(
            final,
            name=name,
            metrics=metrics,
            dataset_stats={**dataset.stats(), **data_window(dataset.timestamp)},
            tags={
                "recstack.evaluated": "true",
                "recstack.eval.protocol": "temporal",
                "recstack.gate.split": split,
                "recstack.retrain.trigger": trigger,
            },
        )
        bar.update(description="recording the decision")
        bar.advance(1)
        aliases: dict[str, int] = {}
        experiment = None
        if verdict.promoted and cfg.on_pass == "experiment":
            started = start_challenger_test(
                store, settings, version.version, cfg.experiment_traffic
            )
            experiment = started["key"]
            verdict = replace(
                verdict,
                promoted=False,
                reason=f"{verdict.reason}; A/B experiment {experiment!r} started instead",
            )
        elif verdict.promoted:
            registry.promote(name, version.version, "champion")
            registry.promote(name, champion.version, "previous")
            aliases = {"champion": version.version, "previous": champion.version}
        decision = RetrainDecision(
            id=uuid.uuid4().hex,
            created_at=queries.utc_now(),
            action="retrain",
            model_name=name,
            promoted=verdict.promoted,
            reason=verdict.reason,
            champion=_version_dict(champion, champion_metrics),
            challenger=_version_dict(version, challenger_metrics),
            trigger=trigger,
            drift_report_id=drift_report_id,
            thresholds=cfg.model_dump(),
            data_window={
                "champion": {"start": window[0], "end": window[1]} if window else None,
                "challenger": data_window(dataset.timestamp),
                "fingerprint": dataset.fingerprint,
            },
            holdout={**holdout.describe(), "split": split},
            checks=[c.to_dict() for c in verdict.checks],
            aliases=aliases,
            experiment=experiment,
        )
        summary = {
            "id": decision.id,
            "promoted": decision.promoted,
            "reason": decision.reason,
            "drift_report_id": drift_report_id,
            "champion_version": champion.version,
            "checks": decision.checks,
        }
        tag_version(
            registry,
            name,
            version.version,
            {
                DECISION_TAG: summary,
                "recstack.gate.promoted": str(decision.promoted).lower(),
                "recstack.gate.reason": decision.reason,
                "recstack.gate.champion_version": str(champion.version),
            },
        )
        write_model_card(registry, name, version.version, summary)
        bar.advance(1)
    return decision


def list_decisions(
    settings: Settings, *, store: Store | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """The newest decision records first."""
    with open_store(settings, store) as st:
        return queries.list_decisions(st.engine, limit)


def require_champion(settings: Settings) -> VersionInfo:
    """The champion a retrain would challenge; NotFoundError (saying how to get one) if none."""
    return champion_of(ModelRegistry(settings), settings.model_name)


def retrain_running(settings: Settings, *, store: Store | None = None) -> dict[str, Any] | None:
    """The live retrain lock's holder (``owner``, ``acquired_at``...), or None when free."""
    with open_store(settings, store) as st:
        return locks.lock_holder(st.engine, LOCK_NAME)
