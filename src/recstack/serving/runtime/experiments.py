"""Experiments in one worker: which arm serves a request, and the exposure record of every list.

``ExperimentRuntime`` holds the running experiments (read from the store at start and whenever
a worker broadcasts ``experiments``) and keeps each arm's model loaded in a slot of the
engine. A request without an explicit slot is assigned by ``experiments.assignment`` (the same
hash in every worker, so no state is shared); users outside every experiment get the default
slot and ``experiment: null``. Every served list — in an experiment or not — gets a
``recommendation_id`` and goes to the exposure writer, off the request path.

Arm slots are named ``<experiment>.<arm>``; an arm naming the serving alias uses the primary
slot itself, so a champion arm costs no second copy of the model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from recstack.data.event_ids import time_ordered_id
from recstack.errors import ConfigError, NotFoundError
from recstack.experiments.assignment import Assignment, assign_any
from recstack.experiments.config import POPULARITY, TWO_STAGE, Experiment, validated
from recstack.serving.runtime.exposures import ExposureWriter

if TYPE_CHECKING:
    from recstack.serving.runtime.state import AppState

log = logging.getLogger("recstack.serving")

ATTRIBUTE = "experiment_runtime"
REFRESH_SECONDS = 10.0  # a start or stop made outside this server (CLI) is served this soon
_create_lock = threading.Lock()


def arm_ref(model: str, serving_alias: str) -> str:
    """The slot reference an arm's ``model`` loads (``two_stage`` is the registered model
    ``two_stage`` under the serving alias).

    >>> arm_ref("two_stage", "champion"), arm_ref("recstack:3", "champion")
    ('two_stage:champion', 'recstack:3')
    """
    return f"{TWO_STAGE}:{serving_alias}" if model == TWO_STAGE else model


class ExperimentRuntime:
    """Running experiments, their slots, and the exposure writer of one worker."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.running: tuple[Experiment, ...] = ()
        self._writer: ExposureWriter | None = None
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    @property
    def writer(self) -> ExposureWriter | None:
        if not self.state.settings.exposure_logging:
            return None
        if self._writer is None and self.state.store is not None:
            with _create_lock:
                if self._writer is None:
                    add = self.state.store.exposures.add_exposures
                    self._writer = ExposureWriter(lambda queued: add(exposure_rows(queued)))
        return self._writer

    def start(self) -> None:
        """Read the running experiments and load their arms (a failure is logged: the
        worker serves without experiments rather than not at all)."""
        try:
            self.refresh()
        except Exception:  # noqa: BLE001
            log.exception("could not load the running experiments")
        self._stop.clear()  # an app's lifespan may run again after a close (test clients)
        self._poller = threading.Thread(target=self._poll, name="recstack-experiments", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        """Re-read the running experiments every ``REFRESH_SECONDS`` (changes made by the CLI,
        or a broadcast this worker missed)."""
        while not self._stop.wait(REFRESH_SECONDS):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - keep serving what is loaded
                log.exception("could not refresh the running experiments")

    def close(self) -> None:
        """Stop polling and write the exposures still queued (server shutdown); a later
        ``start`` gets a new writer, since this one's thread has ended."""
        self._stop.set()
        with _create_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def refresh(self) -> None:
        """Re-read the running experiments from the store and load every arm's slot."""
        store = self.state.store
        if store is None or not self.state.loaded:
            return
        with self._refresh_lock:
            running = tuple(validated(d) for d in store.experiments.list("running"))
            running = tuple(sorted(running, key=lambda e: (e.started_at or _EPOCH, e.key)))
            for experiment in running:
                self.load_arms(experiment)
            keep = {self.slot_of(e, a.name) for e in running for a in e.arms}
            for old in self.running:
                for arm in old.arms:
                    slot = self.slot_of(old, arm.name)
                    if slot not in keep and slot != self.state.engine.primary:
                        try:
                            self.state.unload_slot(slot)
                        except (NotFoundError, ConfigError):
                            pass
            self.running = running

    def load_arms(self, experiment: Experiment) -> None:
        """Load the slot of every arm of ``experiment`` into this worker's engine."""
        engine = self.state.engine
        for arm in experiment.arms:
            slot = self.slot_of(experiment, arm.name)
            if slot == engine.primary:
                continue
            ref = arm_ref(arm.model, self.state.settings.serving_alias)
            if engine.has_slot(slot) and self.state.slot_refs.get(slot) == ref:
                continue
            self.state.load_slot(slot, ref)

    def slot_of(self, experiment: Experiment, arm: str) -> str:
        model = experiment.arm(arm).model
        if model == self.state.settings.serving_alias and model != POPULARITY:
            return self.state.engine.primary
        return f"{experiment.key}.{arm}"

    # ---- requests -------------------------------------------------------------------------
    def assign(self, user_id: str | None) -> Assignment | None:
        """The experiment and arm serving ``user_id`` now (None: the default slot)."""
        if user_id is None or not self.running:
            return None
        now = datetime.now(UTC)
        live = [e for e in self.running if _within(e, now)]
        return assign_any(live, user_id) if live else None

    def record(
        self,
        body: dict[str, Any],
        *,
        surface: str,
        user_id: str | None,
        assignment: Assignment | None,
        arm: str | None = None,
        extras: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """``body`` with ``recommendation_id`` and ``experiment``; its exposure queued.

        ``extras`` adds per-position fields to the logged items (``team``, ``propensity``).
        """
        recommendation_id = time_ordered_id()  # appended to the exposure log's unique index
        tag = None
        if assignment is not None:
            tag = {"key": assignment.experiment.key, "arm": arm or assignment.arm}
        writer = self.writer
        if writer is not None:  # the row is built by the writer thread (``exposure_row``)
            writer.offer(
                (
                    recommendation_id,
                    time.time(),
                    user_id,
                    surface,
                    tag,
                    body.get("model"),
                    body["items"],
                    extras,
                )  # fmt: skip
            )
        self.state.metrics.exposure(surface, tag and tag["key"], tag and tag["arm"])
        body["recommendation_id"] = recommendation_id
        body["experiment"] = tag
        return body


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def exposure_rows(queued: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Queued exposures as rows of the ``exposures`` table (items with positions, scores and
    the per-position extras: ``team`` when interleaving, ``propensity`` when exploring)."""
    rows = []
    for rid, served_at, user_id, surface, tag, model, shown, extras in queued:
        items = [
            {"item_id": item["item_id"], "position": position, "score": item["score"]}
            for position, item in enumerate(shown)
        ]
        for item, extra in zip(items, extras or (), strict=False):
            item.update(extra)
        model = model or {}
        rows.append(
            {
                "recommendation_id": rid,
                "served_at": served_at,
                "user_id": user_id,
                "surface": surface,
                "experiment": tag["key"] if tag else None,
                "arm": tag["arm"] if tag else None,
                "model": str(model.get("name") or "unknown")[:64],
                "model_version": model.get("version"),
                "items": items,
            }
        )
    return rows


def _within(experiment: Experiment, now: datetime) -> bool:
    start, end = experiment.start, experiment.end
    if start is not None and _aware(start) > now:
        return False
    return end is None or _aware(end) > now


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def runtime_of(state: AppState) -> ExperimentRuntime:
    """The worker's ``ExperimentRuntime`` (made on first use)."""
    runtime = getattr(state, ATTRIBUTE, None)
    if runtime is None:
        with _create_lock:
            runtime = getattr(state, ATTRIBUTE, None)
            if runtime is None:
                runtime = ExperimentRuntime(state)
                setattr(state, ATTRIBUTE, runtime)
    return runtime
