"""The scheduler as a process: ``recstack scheduler``, or beside the workers of
``recstack serve --with-scheduler`` (the supervisor starts it and stops it with them).

It runs ``workflows.scheduler.Scheduler`` until SIGTERM/SIGINT, and tells the servers what
changed: after a promotion or a retention run, a ``reload`` message over Redis (every worker of
every replica) or, without Redis, through the shared files of this host's workers
(``RECSTACK_WORKER_STATE_DIR``, set by the supervisor). Retention also deletes the serving
images, which hold the deleted events.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

from recstack.serving.runtime.broadcast import make_broadcast
from recstack.serving.runtime.image import delete_images
from recstack.settings import Settings, get_settings

log = logging.getLogger("recstack.scheduler")
NOTHING_TO_DO = (
    "nothing to schedule: set RECSTACK_RETRAIN_SCHEDULE, RECSTACK_RETRAIN_MIN_NEW_EVENTS, "
    "RECSTACK_DRIFT_SCHEDULE or RECSTACK_RETENTION_DAYS"
)


def change_notifier(settings: Settings, key_prefix: str = "recstack:") -> Any:
    """``on_change(kind, result)`` for the scheduler: reload every reachable worker."""

    def on_change(kind: str, result: dict[str, Any]) -> None:
        if kind == "retention":
            delete_images(settings.home)
        broadcast = make_broadcast(settings.redis_url, settings.worker_state_dir, key_prefix)
        if broadcast is None:
            log.warning(
                "%s: no Redis and no shared worker directory; servers pick the change up at "
                "their next reload (POST /v1/admin/reload)",
                kind,
            )
            return
        try:
            broadcast.publish("reload", reason=kind)
            log.info("%s: asked every worker to reload", kind)
        finally:
            broadcast.stop()  # never started listening: this closes its connection or file

    return on_change


def run(settings: Settings, stop: threading.Event) -> None:
    """Run the scheduler on ``settings`` until ``stop`` is set."""
    from recstack.store import Store
    from recstack.workflows.scheduler import Scheduler, SchedulerConfig

    config = SchedulerConfig.from_settings(settings)
    for line in config.describe():
        log.info("scheduler: %s", line)
    if not config.describe():
        log.warning("scheduler: %s", NOTHING_TO_DO)
    store = Store.from_settings(settings)
    try:
        Scheduler(settings, store, config=config, on_change=change_notifier(settings)).run_forever(
            stop
        )
    finally:
        store.close()


def main() -> None:
    from recstack.serving.runtime.logs import configure_logging

    settings = get_settings()
    configure_logging(settings, os.environ.get("RECSTACK_LOG_LEVEL", "INFO"))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        run(settings, stop)
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback, for a bad setting
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
