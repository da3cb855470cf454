"""``recstack experiments create | list | start | ramp | stop | results | ope | simulate``.

The same workflow functions as ``/v1/experiments`` (``recstack.workflows.experiments``);
running servers pick up a start or stop made here within ``REFRESH_SECONDS`` (or at once when
it is made through the API).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import typer
from rich.table import Table

from recstack.cli.console import emit_json
from recstack.cli.console import out as stdout
from recstack.cli.errors import user_errors
from recstack.cli.stores import open_store
from recstack.errors import ConfigError
from recstack.settings import Settings

experiments_app = typer.Typer(
    help="A/B tests and interleaving experiments over the served models.", no_args_is_help=True
)


def _definition(file: Path | None, key: str | None, arms: list[str], traffic: float | None) -> dict:
    """The experiment from a JSON/TOML file and/or options (``--arm NAME=MODEL:WEIGHT``)."""
    data: dict = {}
    if file is not None:
        text = file.read_text()
        try:
            data = tomllib.loads(text) if file.suffix == ".toml" else json.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"{file}: not valid {file.suffix.lstrip('.') or 'JSON'}: {exc}"
            ) from None
    if key is not None:
        data["key"] = key
    if traffic is not None:
        data["traffic"] = traffic
    if arms:
        data["arms"] = [_arm(spec) for spec in arms]
    return data


def _arm(spec: str) -> dict:
    name, sep, rest = spec.partition("=")
    model, colon, weight = rest.rpartition(":")
    if not sep or not colon:
        raise ConfigError(f"--arm {spec!r}: write NAME=MODEL:WEIGHT (e.g. b=challenger:0.5)")
    try:
        return {"name": name, "model": model, "weight": float(weight)}
    except ValueError:
        raise ConfigError(f"--arm {spec!r}: the weight {weight!r} is not a number") from None


@experiments_app.command("create")
def create_command(
    file: Path | None = typer.Option(None, "--file", help="Definition as JSON or TOML."),
    key: str | None = typer.Option(None, "--key", help="Experiment key."),
    arm: list[str] = typer.Option([], "--arm", help="NAME=MODEL:WEIGHT (repeatable)."),
    traffic: float | None = typer.Option(None, help="Share of all users (0-1]."),
    start: bool = typer.Option(False, "--start", help="Start it at once."),
) -> None:
    """Define an experiment (a draft unless --start)."""
    from recstack.workflows import experiments as flows

    with user_errors():
        settings = Settings()
        store = open_store(settings)
        try:
            created = flows.create_experiment(store, settings, _definition(file, key, arm, traffic))
            if start:
                created = flows.start_experiment(store, created["key"])
        finally:
            store.close()
    emit_json(created)


@experiments_app.command("list")
def list_command(
    status: str | None = typer.Option(None, help="draft, running or stopped."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every experiment, oldest first."""
    from recstack.workflows import experiments as flows

    with user_errors():
        store = open_store(Settings())
        try:
            found = flows.list_experiments(store, status)
        finally:
            store.close()
    if as_json:
        emit_json(found)
        return
    table = Table("key", "status", "mode", "traffic", "arms")
    for e in found:
        arms = ", ".join(f"{a['name']}={a['model']}:{a['weight']:g}" for a in e["arms"])
        table.add_row(e["key"], e["status"], e["mode"], f"{e['traffic']:.0%}", arms)
    stdout().print(table)


def _change(action: str, key: str, traffic: float | None = None) -> None:
    from recstack.workflows import experiments as flows

    with user_errors():
        store = open_store(Settings())
        try:
            if action == "start":
                result = flows.start_experiment(store, key)
            elif action == "stop":
                result = flows.stop_experiment(store, key)
            else:
                result = flows.ramp_experiment(store, key, float(traffic or 0))
        finally:
            store.close()
    emit_json(result)


@experiments_app.command("start")
def start_command(key: str) -> None:
    """Start a draft experiment."""
    _change("start", key)


@experiments_app.command("stop")
def stop_command(key: str) -> None:
    """Stop an experiment: its users go back to the default model."""
    _change("stop", key)


@experiments_app.command("ramp")
def ramp_command(key: str, traffic: float = typer.Option(..., help="New share (only up).")) -> None:
    """Raise an experiment's traffic; no assigned user changes arm."""
    _change("ramp", key, traffic)


@experiments_app.command("results")
def results_command(
    key: str,
    html: Path | None = typer.Option(None, "--html", help="Also write the HTML report here."),
    alpha: float = typer.Option(0.05, help="Significance level."),
) -> None:
    """Per-arm metrics, SRM, lifts and the decision (JSON)."""
    from recstack.workflows import experiments as flows

    with user_errors():
        store = open_store(Settings())
        try:
            result = flows.experiment_results(store, key, alpha=alpha)
            if html is not None:
                from recstack.workflows.experiment_report import report_html

                html.write_text(report_html(store, key))
        finally:
            store.close()
    emit_json(result)


@experiments_app.command("ope")
def ope_command(
    key: str,
    target: list[str] = typer.Option(
        ...,
        "--target",
        help="Model to evaluate: popularity, an alias or NAME:VERSION (repeatable).",
    ),
) -> None:
    """Estimate other models' CTR per slot from an exploring experiment's logs (IPS, SNIPS,
    doubly robust)."""
    from recstack.workflows.experiment_ope import ope_estimates

    with user_errors():
        settings = Settings()
        store = open_store(settings)
        try:
            result = ope_estimates(store, settings, key, list(target), progress=True)
        finally:
            store.close()
    emit_json(result)


@experiments_app.command("simulate")
def simulate_command(
    arm: list[str] = typer.Option(
        ..., "--arm", help="NAME=MODEL_FAMILY (repeatable; the first is the control)."
    ),
    users: int = typer.Option(5000, help="Simulated users."),
    sessions: int = typer.Option(3, help="Lists shown to each user."),
    seed: int = typer.Option(42, help="Split and simulation seed."),
) -> None:
    """Rehearse an A/B of model families on the store's data with a held-out click model."""
    from recstack.workflows.experiment_sim import simulate_experiment

    with user_errors():
        arms = {}
        for spec in arm:
            name, sep, family = spec.partition("=")
            if not sep or not name or not family:
                raise ConfigError(f"--arm {spec!r}: write NAME=MODEL_FAMILY (e.g. b=als)")
            arms[name] = family
        settings = Settings()
        store = open_store(settings)
        try:
            result = simulate_experiment(
                store, settings, arms, users=users, sessions=sessions, seed=seed, progress=True
            )
        finally:
            store.close()
    emit_json(result)


def register(app: typer.Typer) -> None:
    """Add ``experiments ...`` to the root app."""
    app.add_typer(experiments_app, name="experiments")
