"""``recstack monitor drift | reports | report | decisions | card``, ``recstack retrain`` and
``recstack rollback``: the monitoring loop from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from recstack.cli.console import emit_json
from recstack.cli.console import out as stdout
from recstack.cli.errors import user_errors
from recstack.errors import ConfigError
from recstack.settings import Settings

monitor_app = typer.Typer(
    help="Drift reports, promotion decisions and model cards.", no_args_is_help=True
)

SET_HELP = "A threshold as NAME=VALUE (repeatable), e.g. --set share=0.6."


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``["share=0.6", "current_days=7"]`` as ``{"share": 0.6, "current_days": 7}``."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected NAME=VALUE")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    return values


@monitor_app.command("drift")
def drift_command(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    threshold: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Compare the events since the champion's training data with that data; store the report."""
    from recstack.workflows.monitor import run_drift

    with user_errors():
        report = run_drift(Settings(), config=parse_settings(threshold), progress=not as_json)
    if as_json:
        emit_json(report.to_dict())  # {"id", "drifted", "share", "signals", ...}
        return
    table = Table(title=f"Drift report {report.id}")
    for column in ("signal", "method", "value", "threshold", "verdict"):
        table.add_column(column)
    for s in report.signals:
        op = "<=" if s.kind == "p_value" else ">="
        table.add_row(
            s.name,
            s.method,
            f"{s.value:.4g}",
            f"{op} {s.threshold:g}",
            "DRIFT" if s.drifted else "",
        )
    stdout().print(table)
    verdict = "DRIFT" if report.drifted else "no drift"
    stdout().print(f"{verdict}: {report.share:.0%} of {len(report.signals)} signals drifted")
    for note in report.skipped:
        stdout().print(f"skipped {note}")


@monitor_app.command("reports")
def reports_command(
    limit: int = typer.Option(20, min=1, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List stored drift reports."""
    from recstack.workflows.monitor import list_drift_reports

    with user_errors():
        reports = list_drift_reports(Settings(), limit=limit)
    if as_json:
        emit_json({"reports": [r.to_dict() for r in reports]})
        return
    for r in reports:
        stdout().print(f"{r.id}  {r.created_at}  drifted={r.drifted}  share={r.share:.2f}")


@monitor_app.command("report")
def report_command(
    report_id: str = typer.Argument(..., help="Report id."),
    html: Path | None = typer.Option(None, "--html", help="Write the HTML page here."),
) -> None:
    """Print a stored drift report as JSON (and write its HTML page)."""
    from recstack.workflows.monitor import get_drift_report

    with user_errors():
        report, page = get_drift_report(Settings(), report_id)
    if html is not None:
        html.write_text(page, encoding="utf-8")
    emit_json(report.to_dict())


@monitor_app.command("decisions")
def decisions_command(
    limit: int = typer.Option(20, min=1, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List promotion, refusal and rollback decisions."""
    from recstack.workflows.retrain import list_decisions

    with user_errors():
        records = list_decisions(Settings(), limit=limit)
    if as_json:
        emit_json({"decisions": records})
        return
    for r in records:
        stdout().print(f"{r['created_at']}  {r['action']}  {r['reason']}")


@monitor_app.command("card")
def card_command(
    version: int | None = typer.Argument(None, help="Version (default: the alias's)."),
    alias: str = typer.Option("champion", help="Alias to read when no version is given."),
) -> None:
    """Print a registered version's model card (Markdown)."""
    from recstack.registry.cards import read_model_card

    with user_errors():
        card = read_model_card(Settings(), version=version, alias=alias)
    typer.echo(card)


def retrain_command(
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
    threshold: list[str] = typer.Option([], "--set", help="A gate threshold as NAME=VALUE."),
    drift_report: str | None = typer.Option(
        None, "--drift-report", help="Id of the drift report that prompted this retrain."
    ),
    reason: str = typer.Option("manual", help="What triggered it (kept in the record)."),
) -> None:
    """Fit a challenger like the champion, gate it, promote or refuse it, record the decision."""
    from recstack.workflows.retrain import run_retrain

    with user_errors():
        decision = run_retrain(
            Settings(),
            reason=reason,
            drift_report_id=drift_report,
            progress=not as_json,
            config=parse_settings(threshold),
        )
    if as_json:
        emit_json(decision.to_dict())
        return
    stdout().print(decision.reason)
    if decision.notified:
        stdout().print(decision.notified)


def rollback_command(
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Point the champion back at the previous version and tell running servers."""
    from recstack.workflows.rollback import run_rollback

    with user_errors():
        decision = run_rollback(Settings())
    if as_json:
        emit_json(decision.to_dict())
        return
    stdout().print(decision.reason)
    stdout().print(decision.notified)


def register(app: typer.Typer) -> None:
    """Add ``monitor ...``, ``retrain`` and ``rollback`` to the root app."""
    app.add_typer(monitor_app, name="monitor")
    app.command("retrain")(retrain_command)
    app.command("rollback")(rollback_command)
