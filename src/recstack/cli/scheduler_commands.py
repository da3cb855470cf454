"""``recstack scheduler`` (retrains, drift checks and retention on their triggers),
``recstack retention`` (delete old events now) and ``recstack audit`` (admin actions)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.table import Table

from recstack.cli.console import emit_json, err, out, warn
from recstack.cli.errors import user_errors
from recstack.cli.stores import open_store
from recstack.settings import get_settings

SCHEDULER_MODULE = "recstack.serving.runtime.scheduler_process"
SCHEDULER_HELP = (
    "Run the scheduler: retrain on a cron schedule (RECSTACK_RETRAIN_SCHEDULE), after N new "
    "events (RECSTACK_RETRAIN_MIN_NEW_EVENTS) and when a scheduled drift check "
    "(RECSTACK_DRIFT_SCHEDULE) finds drift, with a cooldown (RECSTACK_RETRAIN_COOLDOWN_SECONDS); "
    "delete events older than RECSTACK_RETENTION_DAYS. Several schedulers may run: one acts, "
    "the others stand by (a lock in the store). Jobs show at GET /v1/admin/jobs."
)


def check_scheduler_settings() -> list[str]:
    """The active triggers, or exit 2 naming the bad setting (used by ``serve`` too)."""
    from recstack.workflows.scheduler import SchedulerConfig

    with user_errors():
        return SchedulerConfig.from_settings(get_settings()).describe()


def scheduler(
    once: Annotated[bool, typer.Option("--once", help="Run one pass now and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --once: print JSON.")] = False,
) -> None:
    """Run the scheduler in this process until interrupted (see ``SCHEDULER_HELP``)."""
    settings = get_settings()
    triggers = check_scheduler_settings()
    with user_errors():
        store = open_store(settings)
    if not once:
        store.close()
        for line in triggers:
            err().print(f"scheduler: {line}", highlight=False)
        if not triggers:
            warn("nothing to schedule yet (see recstack scheduler --help)")
        sys.stdout.flush()
        sys.stderr.flush()
        argv = [sys.executable, "-m", SCHEDULER_MODULE]
        os.execv(argv[0], argv)  # the same process the server's --with-scheduler starts
    from recstack.workflows.announce import announce_reload
    from recstack.workflows.scheduler import Scheduler

    def on_change(kind: str, _result: dict) -> None:
        err().print(announce_reload(settings, reason=kind), highlight=False)

    with user_errors(), store:
        tick = Scheduler(settings, store, on_change=on_change).tick()
    if as_json:
        emit_json({"at": tick.at.isoformat(), "actions": tick.actions})
        return
    if not tick.actions:
        out().print("nothing was due")
    for action in tick.actions:
        detail = ", ".join(f"{k}={v}" for k, v in action.items() if k != "action")
        out().print(f"{action['action']}: {detail}", highlight=False)


def retention(
    days: Annotated[
        int | None, typer.Option(min=1, help="Days to keep (default RECSTACK_RETENTION_DAYS).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows deleted per transaction.")] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete stored events older than the retention window now, in batches."""
    from recstack.workflows.retention import enforce_retention

    settings = get_settings()
    if days is None and settings.retention_days is None:
        from recstack.cli.errors import EXIT_USAGE, fail

        fail("no retention window: pass --days or set RECSTACK_RETENTION_DAYS", EXIT_USAGE)
    with user_errors(), open_store(settings) as store:
        result = enforce_retention(
            settings, store, days=days, batch_size=batch_size, progress=not as_json
        )
    if as_json:
        emit_json(result)
    else:
        out().print(
            f"deleted {result['deleted']} event(s) older than {result['days']} days",
            highlight=False,
        )


def audit(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Entries to show.")] = 50,
    key_prefix: Annotated[str | None, typer.Option(help="Only this key's actions.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Admin actions taken through the API, newest first."""
    with user_errors(), open_store(get_settings()) as store:
        entries = store.operations.list_audit(limit=limit, key_prefix=key_prefix)
    if as_json:
        emit_json(entries)
        return
    table = Table("time", "key", "action", "target", "status")
    for e in entries:
        table.add_row(
            str(e["at"]), e["key_prefix"], e["action"], e["target"] or "", str(e["status"])
        )
    out().print(table)


def register(app: typer.Typer) -> None:
    """Add ``scheduler``, ``retention`` and ``audit`` to the root app."""
    app.command(help=SCHEDULER_HELP)(scheduler)
    app.command()(retention)
    app.command()(audit)
