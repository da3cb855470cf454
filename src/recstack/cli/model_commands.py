"""``recstack evaluate | tune | train`` and ``recstack models list | promote | rollback``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from recstack.cli.console import emit_json
from recstack.cli.console import out as stdout  # commands take an ``out`` option
from recstack.cli.errors import user_errors
from recstack.errors import ConfigError
from recstack.settings import Settings

DEFAULT_MODELS = "popularity,itemknn,ease,als,bpr"

models_app = typer.Typer(help="Registered model versions and their aliases.", no_args_is_help=True)


def _model_specs(models: str | None, configs: list[Path]) -> dict[str, dict[str, Any]]:
    from recstack.workflows.configs import load_config

    specs: dict[str, dict[str, Any]] = {}
    if models:
        specs = {name.strip(): {} for name in models.split(",") if name.strip()}
    for path in configs:
        name, params = load_config(path)
        specs[name] = params
    if not specs:
        specs = {name: {} for name in DEFAULT_MODELS.split(",")}
    return specs


def evaluate_command(
    models: str | None = typer.Option(
        None, "--models", help=f"Comma-separated model names (default: {DEFAULT_MODELS})."
    ),
    protocol: str = typer.Option("stratified", help="stratified, temporal or leave_last."),
    ratio: float = typer.Option(0.75, help="Share of each user's interactions used to train."),
    seed: int = typer.Option(42, help="Split seed."),
    k: int = typer.Option(10, help="Cut-off of the headline metrics."),
    min_rating: float | None = typer.Option(
        None, "--min-rating", help="Only test interactions weighing at least this are relevant."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    out: Path | None = typer.Option(
        None, help="Report directory (default: HOME/reports/TIMESTAMP)."
    ),
    config: list[Path] = typer.Option(
        [], "--config", help="Model config TOML (repeatable); adds that model with its params."
    ),
) -> None:
    """Compare models offline on the store's data and write a report."""
    from recstack.evaluation.report import summary_line, table_rows, write_report
    from recstack.workflows.evaluate import evaluate_from_store

    with user_errors():
        settings = Settings()
        specs = _model_specs(models, config)
        result = evaluate_from_store(
            settings,
            specs,
            protocol=protocol,
            ratio=ratio,
            seed=seed,
            k=k,
            min_rating=min_rating,
            progress=True,
        )
        target = out or settings.home / "reports" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        paths = write_report(result, target)
    if as_json:
        emit_json({**result.to_dict(), "report": {key: str(p) for key, p in paths.items()}})
        return
    header, rows = table_rows(result)
    table = Table(title=f"Evaluation @{result.k}", caption=summary_line(result))
    for i, title in enumerate(header):
        table.add_column(title, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    stdout().print(table)
    stdout().print(f"report: {paths['html']}")


def tune_command(
    model: str = typer.Argument(..., help="Model to tune (als, ease, itemknn, bpr, ...)."),
    trials: int = typer.Option(20, help="Number of Optuna trials."),
    metric: str = typer.Option("ndcg", help="Metric to maximise."),
    k: int = typer.Option(10, help="Cut-off of the metric."),
    seed: int = typer.Option(42, help="Seed of the split and of the sampler."),
    out: Path | None = typer.Option(None, help="Write the best config here (TOML)."),
    config: Path | None = typer.Option(
        None, "--config", help="Fixed params (TOML) kept in every trial."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Search a model's parameters on a validation split of the training data."""
    from recstack.workflows.configs import load_config, save_config
    from recstack.workflows.tune import tune_from_store

    with user_errors():
        fixed: dict[str, Any] = {}
        if config is not None:
            name, fixed = load_config(config)
            if name != model:
                raise ConfigError(f"{config} configures {name!r}, not {model!r}")
        best, value, study = tune_from_store(
            Settings(),
            model,
            trials=trials,
            seed=seed,
            metric=metric,
            k=k,
            params=fixed,
            progress=True,
        )
        written = save_config(best, out, model=model) if out is not None else None
    if as_json:
        emit_json(
            {
                "model": model,
                "metric": f"{metric}@{k}",
                "best_value": value,
                "best_params": best,
                "trials": len(study.trials),
                "config": str(written) if written else None,
            }
        )
        return
    table = Table(
        title=f"Best {model} after {len(study.trials)} trials: {metric}@{k} = {value:.4f}"
    )
    table.add_column("param")
    table.add_column("value", justify="right")
    for key, val in best.items():
        table.add_row(key, str(val))
    stdout().print(table)
    if written:
        stdout().print(f"config written to {written}")


def train_command(
    model: str | None = typer.Option(
        None,
        "--model",
        help="Model to train (or take it from --config); 'auto' picks and tunes a family.",
    ),
    budget: float = typer.Option(
        120.0, "--budget", help="Seconds --model auto may spend choosing and tuning."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="Model config TOML (name and params)."
    ),
    promote: str | None = typer.Option(
        None, "--promote", help="Alias to point at the new version."
    ),
    evaluate: bool = typer.Option(
        True, "--evaluate/--no-evaluate", help="Record holdout metrics first."
    ),
    protocol: str = typer.Option("stratified", help="Holdout split for the metrics."),
    k: int = typer.Option(10, help="Cut-off of the recorded metrics."),
    name: str | None = typer.Option(
        None, "--name", help="Registered model name (default: RECSTACK_MODEL_NAME)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Train on the store's data, register a new version, optionally promote it."""
    from recstack.serving.runtime.loader import serving_preparation
    from recstack.workflows.configs import load_config
    from recstack.workflows.train import train_and_register

    with user_errors():
        params: dict[str, Any] = {}
        if config is not None:
            configured, params = load_config(config)
            if model and model != configured:
                raise ConfigError(f"{config} configures {configured!r}, not {model!r}")
            model = configured
        if not model:
            raise ConfigError("name a model with --model NAME or --config FILE")
        settings = Settings()
        version = train_and_register(
            settings,
            model,
            params,
            evaluate=evaluate,
            protocol=protocol,
            k=k,
            promote=promote,
            progress=True,
            name=name,
            auto_budget=budget,
            prepare_serving=serving_preparation(settings),
        )
    if as_json:
        emit_json(version.to_dict())
        return
    aliases = f" ({', '.join(version.aliases)})" if version.aliases else ""
    stdout().print(f"registered {version.name} version {version.version}{aliases}: {version.model}")
    for key in sorted(version.metrics):
        stdout().print(f"  {key} = {version.metrics[key]:.4f}")


@models_app.command("list")
def list_command(
    name: str | None = typer.Argument(None, help="Only this registered model."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List registered versions with their aliases and headline metrics."""
    from recstack.registry import ModelRegistry

    with user_errors():
        versions = ModelRegistry(Settings()).list_versions(name)
    if as_json:
        emit_json({"versions": [v.to_dict() for v in versions]})
        return
    table = Table(title="Registered models")
    for column in ("name", "version", "model", "aliases", "ndcg", "created"):
        table.add_column(column, justify="right" if column in ("version", "ndcg") else "left")
    for v in versions:
        ndcg = next((val for key, val in sorted(v.metrics.items()) if key.startswith("ndcg")), None)
        table.add_row(
            v.name,
            str(v.version),
            v.model,
            ", ".join(v.aliases),
            "" if ndcg is None else f"{ndcg:.4f}",
            v.created_at,
        )
    stdout().print(table if versions else "no registered models yet")


@models_app.command("promote")
def promote_command(
    name: str = typer.Argument(..., help="Registered model name."),
    version: int = typer.Argument(..., help="Version to promote."),
    alias: str = typer.Option("champion", help="Alias to point at the version."),
) -> None:
    """Point an alias (champion by default) at a version."""
    from recstack.registry import ModelRegistry

    with user_errors():
        info = ModelRegistry(Settings()).promote(name, version, alias)
    stdout().print(f"{info.name} version {info.version} is now {alias}")


@models_app.command("rollback")
def rollback_command(
    name: str = typer.Argument(..., help="Registered model name."),
    alias: str = typer.Option("champion", help="Alias to move back."),
) -> None:
    """Move an alias back to the version that held it before."""
    from recstack.registry import ModelRegistry

    with user_errors():
        info = ModelRegistry(Settings()).rollback(name, alias)
    stdout().print(f"{alias} of {info.name} rolled back to version {info.version}")


def register(app: typer.Typer) -> None:
    """Add ``evaluate``, ``tune``, ``train`` and ``models ...`` to the root app."""
    app.command("evaluate")(evaluate_command)
    app.command("tune")(tune_command)
    app.command("train")(train_command)
    app.add_typer(models_app, name="models")
