"""``recstack serve`` (the HTTP API under uvicorn) and ``recstack keys`` (API key management)."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer
from rich.table import Table

from recstack.cli.console import err, out
from recstack.cli.errors import EXIT_USAGE, fail, user_errors
from recstack.cli.stores import open_store
from recstack.settings import get_settings

keys_app = typer.Typer(
    help="Create, list and revoke API keys (scopes: read < write < admin).",
    no_args_is_help=True,
)

SCOPES = ("read", "write", "admin")


SERVE_HELP = (
    "Serve the HTTP API (recommendations, events, admin) with uvicorn.\n\n"
    "Each worker builds its own app from the environment's settings (RECSTACK_*) and "
    "memory-maps the model, so workers share its arrays. With more than one worker, set "
    "RECSTACK_REDIS_URL so caches, rate limits, purges and reloads are shared between them; "
    "Prometheus metrics are aggregated across workers automatically.\n\n"
    "Workers run BLAS and OpenMP single-threaded (unless OPENBLAS_NUM_THREADS or "
    "OMP_NUM_THREADS is set): one request is too small to gain from threads."
)


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    with_scheduler: Annotated[
        bool,
        typer.Option(
            "--with-scheduler",
            help="Also run the scheduler (retrain, drift, retention triggers; see "
            "`recstack scheduler --help`) beside the workers, stopped with them.",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API with uvicorn (see ``SERVE_HELP``)."""
    from recstack.serving.runtime import supervisor

    settings = get_settings()
    if with_scheduler:  # a bad schedule stops the command here, not in a background process
        from recstack.cli.scheduler_commands import check_scheduler_settings

        check_scheduler_settings()
    with user_errors():  # create/migrate once before the workers start, fail fast if unreachable
        open_store(settings).close()
    os.environ[supervisor.STORE_CHECKED_ENV] = settings.store_url
    options = supervisor.ServeOptions(
        host,
        port,
        workers,
        log_level,
        with_scheduler=with_scheduler,
        worker_timeout=settings.worker_timeout_seconds,
    )
    argv = options.argv()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # the workers' parent need not hold the command line's imports


@keys_app.command("create")
def keys_create(
    scope: Annotated[str, typer.Option(help="read, write or admin.")] = "read",
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    if scope not in SCOPES:
        fail(f"--scope must be one of {', '.join(SCOPES)}, got {scope!r}", EXIT_USAGE)
    with user_errors(), open_store(get_settings()) as store:
        key, record = store.create_api_key(scope, name)
    typer.echo(key)
    err().print(
        f"created {record['scope']} key {record['prefix']}"
        f"{' (' + name + ')' if name else ''}; store it now, it is not shown again",
        highlight=False,
    )


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (prefix, scope, name, created, revoked) — never the secrets."""
    with user_errors(), open_store(get_settings()) as store:
        records = store.list_api_keys()
    if as_json:
        typer.echo(json.dumps(records, default=str))
        return
    table = Table("prefix", "scope", "name", "created", "revoked")
    for r in records:
        table.add_row(
            str(r.get("prefix")),
            str(r.get("scope")),
            str(r.get("name") or ""),
            str(r.get("created_at") or ""),
            str(r.get("revoked_at") or ""),
        )
    out().print(table)


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="The key's prefix.")]) -> None:
    """Revoke a key; servers stop accepting it within a few seconds."""
    with user_errors(), open_store(get_settings()) as store:
        revoked = store.revoke_api_key(prefix)
    if not revoked:
        fail(f"no active key with prefix {prefix!r}")
    typer.echo(f"revoked {prefix}")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``keys ...`` to the root app."""
    app.command(help=SERVE_HELP)(serve)
    app.add_typer(keys_app, name="keys")
