"""``recstack serve`` (the HTTP API under uvicorn) and ``recstack keys`` (API key management)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from recstack.cli.app import app
from recstack.errors import RecstackError
from recstack.settings import get_settings

keys_app = typer.Typer(
    help="Create, list and revoke API keys (scopes: read < write < admin).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

SCOPES = ("read", "write", "admin")
SINGLE_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _fail(message: str, code: int = 1) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _store():  # noqa: ANN202 - recstack.store.Store, imported lazily
    from recstack.store import Store

    try:
        return Store.from_settings(get_settings())
    except RecstackError as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - e.g. database unreachable: one clear line
        raise _fail(f"cannot open the store: {type(exc).__name__}: {exc}") from None


SERVE_HELP = (
    "Serve the HTTP API (recommendations, events, admin) with uvicorn.\n\n"
    "Each worker builds its own app from the environment's settings (RECSTACK_*) and "
    "memory-maps the model, so workers share its arrays. With more than one worker, set "
    "RECSTACK_REDIS_URL so caches, rate limits, purges and reloads are shared between them; "
    "Prometheus metrics are aggregated across workers automatically.\n\n"
    "Workers run BLAS and OpenMP single-threaded (unless OPENBLAS_NUM_THREADS or "
    "OMP_NUM_THREADS is set): one request is too small to gain from threads."
)


@app.command(help=SERVE_HELP)
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the HTTP API with uvicorn (see ``SERVE_HELP``)."""
    import uvicorn

    from recstack.serving.broadcast import FileBroadcast
    from recstack.serving.generations import GENERATIONS_FILE, SharedGenerations

    settings = get_settings()
    _store().close()  # create/migrate once before the workers start, fail fast if unreachable
    for name in SINGLE_THREAD_ENV:  # workers give the parallelism; see app_from_env
        os.environ.setdefault(name, "1")
    multiproc_dir = None
    if workers > 1:
        multiproc_dir = tempfile.mkdtemp(prefix="recstack-workers-")
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", multiproc_dir)
        if not settings.redis_url:
            # events, purges, item upserts and reloads reach every worker through these files
            SharedGenerations.create(Path(multiproc_dir) / GENERATIONS_FILE)
            FileBroadcast.create(multiproc_dir)
            os.environ["RECSTACK_WORKER_STATE_DIR"] = multiproc_dir
            Console(stderr=True).print(
                "[yellow]note:[/yellow] several workers without RECSTACK_REDIS_URL: changes "
                "reach every worker through shared files, but each worker has its own response "
                "cache and rate-limit counters."
            )
    try:
        uvicorn.run(
            "recstack.serving.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            # uvicorn logs each request at INFO: above that level the line is built for nothing
            access_log=log_level.lower() in ("trace", "debug", "info"),
        )
    finally:
        if multiproc_dir is not None:
            shutil.rmtree(multiproc_dir, ignore_errors=True)


@keys_app.command("create")
def keys_create(
    scope: Annotated[str, typer.Option(help="read, write or admin.")] = "read",
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    if scope not in SCOPES:
        raise _fail(f"--scope must be one of {', '.join(SCOPES)}, got {scope!r}", 2)
    with _store() as store:
        key, record = store.create_api_key(scope, name)
    typer.echo(key)
    Console(stderr=True).print(
        f"created {record['scope']} key {record['prefix']}"
        f"{' (' + name + ')' if name else ''}; store it now, it is not shown again",
        highlight=False,
    )


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (prefix, scope, name, created, revoked) — never the secrets."""
    with _store() as store:
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
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="The key's prefix.")]) -> None:
    """Revoke a key; servers stop accepting it within a few seconds."""
    with _store() as store:
        revoked = store.revoke_api_key(prefix)
    if not revoked:
        raise _fail(f"no active key with prefix {prefix!r}")
    typer.echo(f"revoked {prefix}")
