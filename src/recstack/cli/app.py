"""The ``recstack`` command: one Typer app, one module per command group.

The command modules never import this one: each offers ``register(app)`` and this module
calls them, so the dependency runs one way. Every command follows the exit-status policy in
``recstack.cli.errors`` (1 bad data or state, 2 bad usage, 130 interrupted).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from recstack.cli import (
    experiment_commands,
    model_commands,
    monitor_commands,
    scheduler_commands,
    serve_commands,
    spark_commands,
    store_commands,
    stream_commands,
)
from recstack.cli.errors import EXIT_USAGE, print_error, settings_problems
from recstack.settings import get_settings

app = typer.Typer(
    name="recstack",
    help="Ingest interactions, train and evaluate recommenders, serve them over HTTP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def global_options(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="recstack home (store, artifacts); default $RECSTACK_HOME or ./.recstack.",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Ingest interactions, train and evaluate recommenders, serve them over HTTP."""
    if home is not None:
        os.environ["RECSTACK_HOME"] = str(home)
    get_settings.cache_clear()  # read the environment as it is now


def _register() -> None:
    """Add every command group to ``app``, in the order a user meets them; runs once."""
    if app.registered_commands:
        return
    store_commands.register(app)
    model_commands.register(app)
    serve_commands.register(app)
    experiment_commands.register(app)
    scheduler_commands.register(app)
    monitor_commands.register(app)
    spark_commands.register(app)
    stream_commands.register(app)


_register()


def main() -> None:
    """Entry point of the ``recstack`` script. An invalid setting in the environment, read by
    whichever command runs, is a usage error naming the variable, not a traceback."""
    try:
        app()
    except Exception as exc:
        problems = settings_problems(exc)
        if problems is None:
            raise
        print_error(f"invalid settings: {problems}")
        raise SystemExit(EXIT_USAGE) from None
