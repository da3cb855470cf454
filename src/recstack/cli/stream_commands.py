"""``recstack consume`` (Redis Stream -> store) and ``recstack stream publish | parked``.

``consume`` is a long-running worker: run as many as the stream needs, each with its own
``--consumer`` name (host-pid by default), all in one ``--group``. SIGTERM or Ctrl-C finishes
the batch in hand (stored and acknowledged) and exits 0. See ``recstack.workflows.consume``
for the delivery contract.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from recstack.cli.console import emit_json, out
from recstack.cli.errors import EXIT_USAGE, fail, user_errors
from recstack.cli.stores import open_store
from recstack.errors import DataError
from recstack.settings import get_settings

stream_app = typer.Typer(help="Publish events to a Redis Stream, inspect parked messages.")

StreamOption = Annotated[str, typer.Option(help="Stream key.")]
RedisOption = Annotated[
    str | None, typer.Option(help="Redis URL; default $RECSTACK_REDIS_URL.", show_default=False)
]
DEFAULT_STREAM = "recstack:events"


def _redis(url: str | None) -> Any:
    import redis

    url = url or get_settings().redis_url
    if not url:
        fail("no Redis to read from: set RECSTACK_REDIS_URL or pass --redis-url", EXIT_USAGE)
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        fail(f"cannot reach Redis at {url}: {exc}")
    return client


def consume(
    stream: StreamOption = DEFAULT_STREAM,
    group: Annotated[str, typer.Option(help="Consumer group.")] = "recstack",
    consumer: Annotated[
        str | None, typer.Option(help="This consumer's name; default host-pid.")
    ] = None,
    dead_letter: Annotated[
        str | None, typer.Option(help="Stream for parked messages; default <stream>:dead.")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Messages per batch.")] = 200,
    claim_idle_ms: Annotated[
        int, typer.Option(min=1, help="Reclaim other consumers' messages pending this long.")
    ] = 30_000,
    max_deliveries: Annotated[
        int, typer.Option(min=1, help="Park a message delivered this often without an ack.")
    ] = 5,
    create_items: Annotated[
        bool, typer.Option(help="Create unknown items instead of parking their events.")
    ] = False,
    idle_exit: Annotated[
        float | None,
        typer.Option(help="Exit after this many seconds with nothing to read (batch jobs)."),
    ] = None,
    redis_url: RedisOption = None,
) -> None:
    """Read events from a Redis Stream into the store, at least once and idempotently.

    A batch is acknowledged only after the store committed it; events already stored (same
    event id) are skipped; bad messages are parked in the dead-letter stream with their reason.
    """
    import redis

    from recstack.progress import ProgressTask
    from recstack.workflows.consume import StreamConsumer, StreamOptions, default_consumer

    client = _redis(redis_url)
    options = StreamOptions(
        stream=stream,
        group=group,
        consumer=consumer or default_consumer(),
        dead_letter=dead_letter,
        batch=batch,
        claim_idle_ms=claim_idle_ms,
        max_deliveries=max_deliveries,
        create_items=create_items,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    store = open_store(get_settings())
    try:
        with user_errors(), ProgressTask(f"consuming {stream}") as bar:

            def report(stats: Any) -> None:
                bar.update(
                    completed=stats.read,
                    description=f"consuming {stream}: stored {stats.stored:,} · duplicates "
                    f"{stats.duplicates:,} · parked {stats.parked:,}",
                )

            try:
                stats = StreamConsumer(client, store, options).run(
                    stop, idle_exit_s=idle_exit, on_batch=report
                )
            except redis.RedisError as exc:  # unacknowledged messages stay pending: no loss
                fail(f"Redis failed: {exc}; unacknowledged messages stay pending")
    finally:
        store.close()
    out().print(
        f"read {stats.read:,} · stored {stats.stored:,} · duplicates {stats.duplicates:,} · "
        f"parked {stats.parked:,} (in {options.dead_stream}) · reclaimed {stats.reclaimed:,}",
        highlight=False,
        soft_wrap=True,
    )


@stream_app.command("publish")
def publish(
    path: Annotated[Path, typer.Argument(help="JSON Lines file, one event object per line.")],
    stream: StreamOption = DEFAULT_STREAM,
    redis_url: RedisOption = None,
) -> None:
    """Append the events of a JSON Lines file to a stream (one message per event)."""
    from recstack.workflows.stream_messages import publish_events

    with user_errors():
        events = []
        for line_no, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"not JSON: {exc.msg}", file=str(path), line=line_no) from None
            if not isinstance(event, dict):
                raise DataError("each line must be a JSON object", file=str(path), line=line_no)
            events.append(event)
        ids = publish_events(_redis(redis_url), stream, events)
    out().print(f"published {len(ids):,} events to {stream}", highlight=False)


@stream_app.command("parked")
def parked(
    stream: StreamOption = DEFAULT_STREAM,
    dead_letter: Annotated[str | None, typer.Option(help="Default <stream>:dead.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    redis_url: RedisOption = None,
) -> None:
    """Show parked messages with their reasons, newest first."""
    key = dead_letter or f"{stream}:dead"
    entries = _redis(redis_url).xrevrange(key, count=limit)
    rows = []
    for entry_id, fields in entries:
        text = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
        rows.append(
            {
                "parked_id": entry_id.decode(),
                "source_id": text.pop("_source_id", ""),
                "reason": text.pop("_reason", ""),
                "consumer": text.pop("_consumer", ""),
                "parked_at": text.pop("_parked_at", ""),
                "fields": text,
            }
        )
    if as_json:
        emit_json(rows)
        return
    table = Table("source id", "reason", "message")
    for row in rows:
        table.add_row(row["source_id"], row["reason"], json.dumps(row["fields"])[:80])
    out().print(table)


def register(app: typer.Typer) -> None:
    """Add ``consume`` and the ``stream`` group to the ``recstack`` app."""
    app.command("consume")(consume)
    app.add_typer(stream_app, name="stream")
