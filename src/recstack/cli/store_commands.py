"""``recstack init | stats``, ``recstack ingest ...`` and ``recstack datasets synthetic``.

Every ingest reads a source with the loaders, writes it with ``Store.ingest`` (one
transaction: a failure stores nothing), shows progress bars on stderr and ends with a one-line
summary. Settings come from the environment (``RECSTACK_HOME``, ``RECSTACK_DATABASE_URL``)
or the global ``--home`` option.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recstack.cli.console import emit_json, err, out, warn
from recstack.cli.errors import EXIT_USAGE, fail, user_errors
from recstack.cli.stores import open_store
from recstack.settings import get_settings

if TYPE_CHECKING:
    from recstack.data.loaders import ColumnMapping, LoadedData
    from recstack.store import IngestResult

ingest_app = typer.Typer(
    help="Load interactions and catalogues into the store (idempotent: re-running adds nothing).",
    no_args_is_help=True,
)
datasets_app = typer.Typer(help="Generate datasets to try recstack with.", no_args_is_help=True)

SHOWN_SKIPPED = 5


class OnError(StrEnum):
    """What to do with a malformed row."""

    fail = "fail"
    skip = "skip"


OnErrorOption = Annotated[
    OnError,
    typer.Option("--on-error", help="fail: stop at the first bad row; skip: drop and report them."),
]
MappingOption = Annotated[
    Path | None,
    typer.Option(
        "--mapping",
        help="TOML file naming the source column of each field.",
        exists=True,
        dir_okay=False,
    ),
]


def _summary(result: IngestResult) -> str:
    return (
        f"read {result.interactions_read:,} · inserted {result.interactions_inserted:,} · "
        f"duplicates {result.duplicates:,} · skipped {result.skipped:,} · "
        f"new users {result.users_created:,} · new items {result.items_created:,} · "
        f"updated items {result.items_updated:,} · {result.rows_per_second:,.0f} rows/s "
        f"in {result.seconds:.1f}s"
    )


def _ingest(data: LoadedData) -> None:
    """Write loaded data into the configured store and print the summary."""
    for problem in data.skipped[:SHOWN_SKIPPED]:
        warn(f"skipped {problem}")
    if len(data.skipped) > SHOWN_SKIPPED:
        warn(f"... and {len(data.skipped) - SHOWN_SKIPPED:,} more rows skipped")
    store = open_store(get_settings())
    try:
        with user_errors(database_note="; nothing was stored"):
            result = store.ingest(data, progress=True)
    finally:
        store.close()
    out().print(_summary(result), highlight=False, soft_wrap=True)


def init() -> None:
    """Create the recstack home and the store (migrated to the newest schema)."""
    with user_errors():
        settings = get_settings()
        settings.ensure_home()
        store = open_store(settings)
        try:
            stats = store.stats()
        finally:
            store.close()
        console = out()
        console.print(f"home:  {settings.home.resolve()}", highlight=False)
        console.print(f"store: {store.url} ({stats['database']})", highlight=False)
        console.print(
            f"holds {stats['users']:,} users, {stats['items']:,} items, "
            f"{stats['interactions']:,} interactions",
            highlight=False,
        )


def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Counts, density, event types and time range of the store."""
    with user_errors():
        store = open_store(get_settings())
        try:
            figures = store.stats()
        finally:
            store.close()
        if as_json:
            emit_json(figures)
            return
        from rich.table import Table

        table = Table(title=f"recstack store ({figures['database']})", show_header=False)
        for key in ("users", "items", "active_items", "interactions", "distinct_pairs"):
            table.add_row(key, f"{figures[key]:,}")
        table.add_row("density", f"{figures['density']:.6g}")
        table.add_row("first event", str(figures["first_timestamp"]))
        table.add_row("last event", str(figures["last_timestamp"]))
        for name, count in figures["event_types"].items():
            table.add_row(f"  {name}", f"{count:,}")
        out().print(table)


@ingest_app.command("movielens")
def ingest_movielens(
    path: Annotated[
        Path,
        typer.Argument(
            help="MovieLens directory (ml-100k, ml-latest-small, ml-25m ...).", exists=True
        ),
    ],
    on_error: OnErrorOption = OnError.fail,
) -> None:
    """Ingest a MovieLens dataset: ratings as ``rate`` events, movies with genres and tags."""
    with user_errors():
        from recstack.data.loaders import load_movielens

        _ingest(load_movielens(path, on_error=on_error.value, progress=True))


def _mapping(path: Path | None, **overrides: object) -> ColumnMapping:
    """The TOML mapping (or the default one) with the options given on the command line."""
    from recstack.data.loaders import ColumnMapping

    mapping = ColumnMapping.from_toml(path) if path is not None else ColumnMapping()
    given = {k: (None if v == "" else v) for k, v in overrides.items() if v is not None}
    if not given:
        return mapping
    return dataclasses.replace(mapping, **given)


@ingest_app.command("interactions")
def ingest_interactions(
    file: Annotated[
        Path,
        typer.Argument(help="CSV, Parquet or JSONL file of events.", exists=True, dir_okay=False),
    ],
    mapping: MappingOption = None,
    user_col: Annotated[str | None, typer.Option(help="Column of user ids.")] = None,
    item_col: Annotated[str | None, typer.Option(help="Column of item ids.")] = None,
    event_type_col: Annotated[str | None, typer.Option(help="Column of event types.")] = None,
    value_col: Annotated[str | None, typer.Option(help="Column of values (ratings...).")] = None,
    timestamp_col: Annotated[str | None, typer.Option(help="Column of event times.")] = None,
    event_id_col: Annotated[str | None, typer.Option(help="Column of unique event ids.")] = None,
    context_col: Annotated[str | None, typer.Option(help="Column of JSON context.")] = None,
    timestamp_unit: Annotated[str | None, typer.Option(help="auto, s, ms or iso.")] = None,
    event_type: Annotated[
        str | None, typer.Option("--event-type", help="Event type for rows without one.")
    ] = None,
    on_error: OnErrorOption = OnError.fail,
) -> None:
    """Ingest events from your own file; columns are mapped by name (``""`` switches one off)."""
    with user_errors():
        from recstack.data.loaders import load_interactions

        columns = _mapping(
            mapping,
            user_id=user_col,
            item_id=item_col,
            event_type=event_type_col,
            value=value_col,
            timestamp=timestamp_col,
            event_id=event_id_col,
            context=context_col,
            timestamp_unit=timestamp_unit,
            default_event_type=event_type,
        )
        _ingest(load_interactions(file, columns, on_error=on_error.value, progress=True))


@ingest_app.command("items")
def ingest_items(
    file: Annotated[
        Path, typer.Argument(help="CSV, Parquet or JSONL catalogue.", exists=True, dir_okay=False)
    ],
    mapping: MappingOption = None,
    item_col: Annotated[str | None, typer.Option(help="Column of item ids.")] = None,
    title_col: Annotated[str | None, typer.Option(help="Column of titles.")] = None,
    text_col: Annotated[str | None, typer.Option(help="Column of descriptions.")] = None,
    attribute_col: Annotated[
        list[str] | None, typer.Option(help="Column copied into attributes (repeatable).")
    ] = None,
    active_col: Annotated[str | None, typer.Option(help="Boolean column of active items.")] = None,
    list_separator: Annotated[
        str | None, typer.Option(help="Splits attribute strings into lists (default |).")
    ] = None,
    on_error: OnErrorOption = OnError.fail,
) -> None:
    """Ingest or update the item catalogue (title, text, attributes, active)."""
    with user_errors():
        from recstack.data.loaders import load_items

        columns = _mapping(
            mapping,
            item_id=item_col,
            title=title_col,
            text=text_col,
            attributes=attribute_col or None,
            active=active_col,
            list_separator=list_separator,
        )
        _ingest(load_items(file, columns, on_error=on_error.value))


@ingest_app.command("users")
def ingest_users(
    file: Annotated[
        Path,
        typer.Argument(help="CSV, Parquet or JSONL file of users.", exists=True, dir_okay=False),
    ],
    mapping: MappingOption = None,
    user_col: Annotated[str | None, typer.Option(help="Column of user ids.")] = None,
    attribute_col: Annotated[
        list[str] | None, typer.Option(help="Column copied into attributes (repeatable).")
    ] = None,
    on_error: OnErrorOption = OnError.fail,
) -> None:
    """Ingest users and their attributes (segments, plans, skill levels...)."""
    with user_errors():
        from recstack.data.loaders import load_users

        columns = _mapping(mapping, user_id=user_col, attributes=attribute_col or None)
        _ingest(load_users(file, columns, on_error=on_error.value))


@ingest_app.command("amazon")
def ingest_amazon(
    reviews: Annotated[
        Path, typer.Argument(help="Amazon reviews JSONL (.gz ok).", exists=True, dir_okay=False)
    ],
    meta: Annotated[
        Path | None,
        typer.Option("--meta", help="Amazon product metadata JSONL.", exists=True, dir_okay=False),
    ] = None,
    on_error: OnErrorOption = OnError.fail,
) -> None:
    """Ingest Amazon reviews (ratings as ``rate`` events) and optional product metadata."""
    with user_errors():
        from recstack.data.loaders import load_amazon

        _ingest(load_amazon(reviews, meta, on_error=on_error.value, progress=True))


@datasets_app.command("synthetic")
def datasets_synthetic(
    users: Annotated[int, typer.Option("--users", min=1, help="Number of learners.")] = 2_000,
    items: Annotated[int, typer.Option("--items", min=3, help="Number of courses.")] = 300,
    events: Annotated[int, typer.Option("--events", min=0, help="Number of events.")] = 50_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 0,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write Parquet files here.", file_okay=False),
    ] = None,
    ingest: Annotated[bool, typer.Option("--ingest", help="Ingest into the store.")] = False,
) -> None:
    """Generate a synthetic e-learning dataset (courses, learners, view/start/complete funnel)."""
    if out_dir is None and not ingest:
        fail("say where the data goes: --out DIR and/or --ingest", EXIT_USAGE)
    with user_errors():
        from recstack.data.synthetic import generate_synthetic, write_loaded

        try:
            data = generate_synthetic(users, items, events, seed=seed, progress=True)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
        if out_dir is not None:
            for path in write_loaded(data, out_dir):
                out().print(f"wrote {path}", highlight=False)
        if ingest:
            _ingest(data)
        else:
            err().print(f"generated {data}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``init``, ``stats``, ``ingest ...`` and ``datasets ...`` to the root app."""
    app.command()(init)
    app.command()(stats)
    app.add_typer(ingest_app, name="ingest")
    app.add_typer(datasets_app, name="datasets")
