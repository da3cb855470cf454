"""The ``recstack`` command: one Typer app, one module per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="recstack",
    help="Ingest interactions, train and evaluate recommenders, serve them over HTTP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each command module registers its commands on ``app`` when imported.
    from recstack.cli import (
        model_commands,  # noqa: F401
        serve_commands,  # noqa: F401
        store_commands,  # noqa: F401
    )


def main() -> None:
    """Entry point of the ``recstack`` script."""
    _register()
    app()
