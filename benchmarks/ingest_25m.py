"""Bulk ingest and snapshot speed of the store on SQLite and PostgreSQL.

Generates a synthetic e-learning dataset (``generate_synthetic``), ingests it into a fresh
store per backend, re-ingests it (idempotency: nothing new), and reads it back with
``Store.snapshot``. Prints a table and one JSON line with rows/s and seconds.

    python benchmarks/ingest_25m.py                      # 25M events, both backends
    python benchmarks/ingest_25m.py --events 500000      # a quick check

PostgreSQL runs in a fresh schema of ``--pg-url`` that is dropped afterwards; SQLite in a
temporary directory (or ``--sqlite-dir``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from recstack.data.synthetic import generate_synthetic
from recstack.store import Store

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=162_000)
    parser.add_argument("--items", type=int, default=62_000)
    parser.add_argument("--events", type=int, default=25_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--sqlite-dir", type=Path, default=None)
    parser.add_argument("--chunk-size", type=int, default=500_000)
    parser.add_argument("--no-reingest", action="store_true", help="skip the second ingest")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    return parser.parse_args(argv)


def measure(url: str, data, args: argparse.Namespace) -> dict:  # noqa: ANN001 - LoadedData
    """Ingest, optionally re-ingest, and snapshot into the store at ``url``."""
    store = Store(url)
    try:
        store.migrate()
        cpu = time.process_time()
        result = store.ingest(data, progress=args.progress, chunk_size=args.chunk_size)
        row = {
            "events": result.interactions_read,
            "inserted": result.interactions_inserted,
            "ingest_s": round(result.seconds, 2),
            "ingest_rows_per_s": round(result.rows_per_second),
            "ingest_client_cpu_s": round(time.process_time() - cpu, 2),
        }
        if not args.no_reingest:
            again = store.ingest(data, chunk_size=args.chunk_size)
            row["reingest_s"] = round(again.seconds, 2)
            row["reingest_inserted"] = again.interactions_inserted
        started = time.perf_counter()
        dataset = store.snapshot(progress=args.progress)
        seconds = time.perf_counter() - started
        row["snapshot_s"] = round(seconds, 2)
        row["snapshot_rows_per_s"] = round(dataset.n_interactions / seconds) if seconds else 0
        row["snapshot_interactions"] = dataset.n_interactions
        started = time.perf_counter()
        store.stats()
        row["stats_s"] = round(time.perf_counter() - started, 2)
        return row
    finally:
        store.close()


def run_sqlite(data, args: argparse.Namespace) -> dict:  # noqa: ANN001
    with tempfile.TemporaryDirectory(dir=args.sqlite_dir) as tmp:
        return measure(f"sqlite:///{Path(tmp) / 'bench.db'}", data, args)


def run_postgres(data, args: argparse.Namespace) -> dict:  # noqa: ANN001
    schema = f"rs_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(args.pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.pg_url else "?"
    try:
        return measure(f"{args.pg_url}{sep}options={quote(f'-csearch_path={schema}')}", data, args)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgres"}
    if unknown:
        console.print(f"unknown backend(s): {', '.join(sorted(unknown))}")
        return 2
    started = time.perf_counter()
    data = generate_synthetic(
        args.users, args.items, args.events, seed=args.seed, progress=args.progress
    )
    generate_s = time.perf_counter() - started
    results = {}
    for backend in backends:
        console.print(f"[bold]{backend}[/bold]: ingesting {len(data.interactions):,} events")
        runner = run_sqlite if backend == "sqlite" else run_postgres
        results[backend] = runner(data, args)

    table = Table(
        title=f"store: {args.events:,} events, {args.users:,} users, {args.items:,} items"
    )
    columns = [
        "ingest_s",
        "ingest_rows_per_s",
        "reingest_s",
        "snapshot_s",
        "snapshot_rows_per_s",
        "stats_s",
    ]
    table.add_column("backend")
    for column in columns:
        table.add_column(column, justify="right")
    for backend, row in results.items():
        table.add_row(backend, *(f"{row[c]:,}" if c in row else "-" for c in columns))
    Console().print(table)
    print(
        json.dumps(
            {
                "benchmark": "ingest_25m",
                "events": args.events,
                "users": args.users,
                "items": args.items,
                "seed": args.seed,
                "generate_s": round(generate_s, 2),
                "results": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
