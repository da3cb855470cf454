"""The scheduler: starts retrains, drift checks and retention on their triggers, one at a time.

Triggers of a retrain: the cron ``retrain_schedule``; ``retrain_min_new_events`` events stored
since the data of the last promoted retrain; a drift check (``drift_schedule``) that finds
dataset drift (``retrain_on_drift``). A triggered retrain is skipped when one ran less than
``retrain_cooldown_seconds`` ago, or when no event arrived since the last one (nothing
changed). ``retention_days`` deletes old events on ``retention_schedule``.

Several scheduler processes may run (``recstack scheduler`` beside ``recstack serve
--with-scheduler`` on other hosts): the one holding the store lock ``scheduler`` acts, the
others stand by and take over when its lock expires (it renews it while alive). A retrain
holds the lock ``retrain`` while it runs (``workflows.retrain``), wherever it was started: the
scheduler does not start one while it is held. Every job is a record in the store's ``jobs``
table, visible at ``GET /v1/admin/jobs``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recstack.errors import ConfigError, NotFoundError
from recstack.settings import Settings
from recstack.workflows.cron import CronSchedule
from recstack.workflows.job_records import owner_name, run_recorded
from recstack.workflows.retention import enforce_retention

log = logging.getLogger("recstack.scheduler")

LEADER_LOCK = "scheduler"
RETRAIN_LOCK = "retrain"  # held by workflows.retrain.run_retrain while a retrain runs
LOCK_TTL_SECONDS = 60.0

RetrainAction = Callable[[Settings, Any, str, str | None], dict[str, Any]]
DriftAction = Callable[[Settings, Any], dict[str, Any]]
ChangeHook = Callable[[str, dict[str, Any]], None]


def _cron(settings_name: str, expression: str | None) -> CronSchedule | None:
    if expression is None or not expression.strip():
        return None
    try:
        return CronSchedule.parse(expression)
    except ConfigError as exc:
        raise ConfigError(f"{settings_name} (RECSTACK_{settings_name.upper()}): {exc}") from None


@dataclass(frozen=True)
class SchedulerConfig:
    """The scheduler's triggers, parsed and checked from the settings."""

    retrain: CronSchedule | None = None
    min_new_events: int | None = None
    drift: CronSchedule | None = None
    retrain_on_drift: bool = True
    cooldown_seconds: float = 3600.0
    retention_days: int | None = None
    retention: CronSchedule | None = None
    poll_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SchedulerConfig:
        """The config ``settings`` describe; ``ConfigError`` naming the setting when one is bad."""
        return cls(
            retrain=_cron("retrain_schedule", settings.retrain_schedule),
            min_new_events=settings.retrain_min_new_events,
            drift=_cron("drift_schedule", settings.drift_schedule),
            retrain_on_drift=settings.retrain_on_drift,
            cooldown_seconds=settings.retrain_cooldown_seconds,
            retention_days=settings.retention_days,
            retention=_cron("retention_schedule", settings.retention_schedule),
            poll_seconds=settings.scheduler_poll_seconds,
        )

    def describe(self) -> list[str]:
        """One line per active trigger (what ``recstack scheduler`` prints at start)."""
        lines = []
        if self.retrain is not None:
            lines.append(f"retrain on schedule '{self.retrain.expression}' (UTC)")
        if self.min_new_events is not None:
            lines.append(f"retrain after {self.min_new_events} new events")
        if self.drift is not None:
            then = ", retrain when drifted" if self.retrain_on_drift else ""
            lines.append(f"drift check on schedule '{self.drift.expression}'{then}")
        if self.retention_days is not None and self.retention is not None:
            lines.append(
                f"delete events older than {self.retention_days} days on "
                f"'{self.retention.expression}'"
            )
        if lines:
            lines.append(f"cooldown between retrains: {self.cooldown_seconds:g} s")
        return lines


def default_retrain(
    settings: Settings, store: Any, reason: str, drift_report_id: str | None
) -> dict[str, Any]:
    """The gated retrain of ``workflows.retrain`` (challenger vs champion, then promote)."""
    from recstack.workflows.retrain import run_retrain

    decision = run_retrain(settings, store=store, reason=reason, drift_report_id=drift_report_id)
    return decision.to_dict()


def default_drift(settings: Settings, store: Any) -> dict[str, Any]:
    """A drift report of recent events against the champion's data (``workflows.monitor``)."""
    from recstack.workflows.monitor import run_drift

    return run_drift(settings, store=store).to_dict()


def champion_baseline(settings: Settings, store: Any) -> int:
    """An event mark standing for the champion's data: the store's mark less the events
    timestamped after the champion's training window (0, i.e. every event is new, when there
    is no champion or it recorded no window). Reads the registry and counts once."""
    from recstack.monitoring.windows import window_from_tags
    from recstack.registry.cards import run_tags
    from recstack.registry.mlflow_registry import ModelRegistry

    if settings.mlflow_tracking_uri is None and not (settings.home / "mlflow.db").exists():
        return 0  # no registry was ever created here
    registry = ModelRegistry(settings)
    try:
        champion = registry.resolve(settings.model_name, "champion")
    except NotFoundError:
        return 0
    window = window_from_tags(run_tags(registry, champion))
    if window is None:
        return 0
    mark = store.change_mark()["max_event_id"]
    return mark - store.operations.count_events_after(window[1])


@dataclass
class Tick:
    """What one pass of the scheduler decided: ``(action, detail)`` per trigger looked at."""

    at: datetime
    actions: list[dict[str, Any]] = field(default_factory=list)

    def add(self, action: str, **detail: Any) -> dict[str, Any]:
        entry = {"action": action, **detail}
        self.actions.append(entry)
        log.info("scheduler: %s %s", action, detail)
        return entry

    def kinds(self) -> list[str]:
        return [a["action"] for a in self.actions]


class Scheduler:
    """Checks the triggers (``tick``) and runs what is due, one job at a time.

    Args:
        settings: the triggers (see ``SchedulerConfig``) and what the jobs need.
        store: the store holding events, job records and locks.
        retrain, drift: the jobs' work (default: ``workflows.retrain`` / ``workflows.monitor``).
        on_change: called with ``("promoted", result)`` / ``("retention", result)`` after a job
            that changed what servers should serve (the CLI tells the workers to reload).
        started_at: triggers fire for schedule times after this (default: now).
    """

    def __init__(
        self,
        settings: Settings,
        store: Any,
        *,
        config: SchedulerConfig | None = None,
        retrain: RetrainAction = default_retrain,
        drift: DriftAction = default_drift,
        on_change: ChangeHook | None = None,
        started_at: datetime | None = None,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.config = config or SchedulerConfig.from_settings(settings)
        self.retrain_action = retrain
        self.drift_action = drift
        self.on_change = on_change
        self.owner = owner or owner_name()
        self.last_check = started_at or datetime.now(UTC)
        self.leader = False
        self._baseline: int | None = None

    @property
    def ops(self) -> Any:
        return self.store.operations

    # ---- one pass -----------------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> Tick:
        """Look at every trigger once and run what is due (synchronously)."""
        now = now or datetime.now(UTC)
        since, self.last_check = self.last_check, now
        tick = Tick(now)
        self.leader = self.ops.acquire_lock(LEADER_LOCK, self.owner, LOCK_TTL_SECONDS)
        if not self.leader:
            holder = self.ops.lock_holder(LEADER_LOCK)
            tick.add("standby", reason=f"scheduler {holder and holder['owner']} is active")
            return tick
        cfg = self.config
        if cfg.retention_days is not None and cfg.retention is not None:
            if cfg.retention.due(since, now):
                self._retention(tick)
        triggers: list[tuple[str, str | None]] = []
        if cfg.drift is not None and cfg.drift.due(since, now):
            report = self._drift(tick)
            if report is not None and report.get("drifted") and cfg.retrain_on_drift:
                triggers.append(("drift", report.get("id")))
        if cfg.retrain is not None and cfg.retrain.due(since, now):
            triggers.append(("schedule", None))
        if cfg.min_new_events is not None:
            new = self.new_events_since_champion()
            if new >= cfg.min_new_events:
                triggers.append(("events", None))
        if triggers:
            self._retrain(tick, now, triggers)
        return tick

    def _retention(self, tick: Tick) -> None:
        def work(_job_id: str) -> dict[str, Any]:
            return enforce_retention(self.settings, self.store, now=tick.at.timestamp())

        request = {"days": self.config.retention_days}
        job = run_recorded(self.ops, "retention", request, work, started=tick.at)
        tick.add("retention", job_id=job["id"], status=job["status"], result=job["result"])
        if job["status"] == "succeeded" and job["result"]["deleted"] and self.on_change:
            self.on_change("retention", job["result"])

    def _drift(self, tick: Tick) -> dict[str, Any] | None:
        def work(_job_id: str) -> dict[str, Any]:
            return self.drift_action(self.settings, self.store)

        job = run_recorded(self.ops, "drift", {"trigger": "schedule"}, work, started=tick.at)
        tick.add("drift", job_id=job["id"], status=job["status"], error=job["error"])
        return job["result"] if job["status"] == "succeeded" else None

    def _retrain(self, tick: Tick, now: datetime, triggers: list[tuple[str, str | None]]) -> None:
        reason = "+".join(name for name, _ in triggers)
        drift_id = next((ref for name, ref in triggers if name == "drift"), None)
        last = self.ops.list_jobs(kind="retrain", limit=1)
        if last:
            started = last[0]["started_at"] or last[0]["created_at"]
            waited = (now - started).total_seconds()
            if waited < self.config.cooldown_seconds:
                tick.add(
                    "skip",
                    trigger=reason,
                    reason=f"cooldown: the last retrain started {waited:.0f} s ago "
                    f"(retrain_cooldown_seconds = {self.config.cooldown_seconds:g})",
                )
                return
        mark = self.store.change_mark()["max_event_id"]
        tried = self._last_mark(promoted_only=False)
        if tried is not None and mark <= tried:
            tick.add("skip", trigger=reason, reason="nothing changed since the last retrain")
            return
        holder = self.ops.lock_holder(RETRAIN_LOCK)
        if holder is not None:  # the retrain itself takes the lock; this only avoids a clash
            tick.add("skip", trigger=reason, reason=f"a retrain is running ({holder['owner']})")
            return

        def work(_job_id: str) -> dict[str, Any]:
            result = self.retrain_action(self.settings, self.store, reason, drift_id)
            return {**result, "mark": mark}

        def beat() -> None:
            self.ops.renew_lock(LEADER_LOCK, self.owner, LOCK_TTL_SECONDS)

        request = {"trigger": reason, "drift_report_id": drift_id, "mark": mark}
        job = run_recorded(self.ops, "retrain", request, work, beat=beat, started=now)
        result = job["result"] or {}
        tick.add(
            "retrain",
            trigger=reason,
            job_id=job["id"],
            status=job["status"],
            promoted=result.get("promoted"),
            error=job["error"],
        )
        if job["status"] == "succeeded" and result.get("promoted") and self.on_change:
            self.on_change("promoted", result)

    # ---- data marks ---------------------------------------------------------------------------
    def _last_mark(self, *, promoted_only: bool) -> int | None:
        """The event mark of the newest finished retrain (promoted only, if asked)."""
        for job in self.ops.list_jobs(kind="retrain", status="succeeded", limit=50):
            result = job["result"] or {}
            if promoted_only and not result.get("promoted"):
                continue
            if "mark" in result:
                return int(result["mark"])
        return None

    def new_events_since_champion(self) -> int:
        """Events stored after the data of the last promoted retrain; before the scheduler
        promoted one, the events timestamped after the champion's training window."""
        mark = self.store.change_mark()["max_event_id"]
        base = self._last_mark(promoted_only=True)
        if base is None:
            if self._baseline is None:
                self._baseline = champion_baseline(self.settings, self.store)
            base = self._baseline
        return mark - base

    # ---- the loop -----------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event) -> None:
        """Tick every ``poll_seconds`` until ``stop`` is set; the leader lock is renewed in
        between, and given back at the end."""
        renewer = threading.Thread(target=self._renew, args=(stop,), daemon=True)
        renewer.start()
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception:  # noqa: BLE001 - a failed pass is logged; the next one retries
                    log.exception("scheduler pass failed")
                stop.wait(self.config.poll_seconds)
        finally:
            self.close()

    def _renew(self, stop: threading.Event) -> None:
        while not stop.wait(LOCK_TTL_SECONDS / 3):
            if self.leader:
                try:
                    self.leader = self.ops.renew_lock(LEADER_LOCK, self.owner, LOCK_TTL_SECONDS)
                except Exception:  # noqa: BLE001 - retried at the next beat
                    log.warning("could not renew the scheduler lock", exc_info=True)

    def close(self) -> None:
        """Give the leader lock back so another scheduler can take over at once."""
        try:
            self.ops.release_lock(LEADER_LOCK, self.owner)
        except Exception:  # noqa: BLE001 - it expires on its own
            log.warning("could not release the scheduler lock", exc_info=True)
        self.leader = False
