"""Speed of the store's online event write path (``Store.add_events``) on a large store.

Builds a store with ``--events`` synthetic events (``generate_synthetic``), then posts new
events the way the HTTP API does: batches of ``--batch`` rows and single events, each call
one durable transaction. Prints rows/s (wall clock) and CPU µs per call of this process
(SQLite runs in-process; for PostgreSQL the server's CPU is not included).

    python benchmarks/store_event_rows.py                     # 1M events, SQLite
    python benchmarks/store_event_rows.py --events 200000     # a quick check
    RECSTACK_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python benchmarks/store_event_rows.py                 # SQLite and PostgreSQL

``--template FILE`` keeps the built SQLite store and copies it on later runs, so runs of
different code start from the same file. PostgreSQL runs in a fresh schema, dropped after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import sqlalchemy as sa

import recstack.store
from recstack.data.synthetic import generate_synthetic
from recstack.store import Store

EVENT_TYPES = ("view", "bookmark", "start", "complete", "rate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the store")
    parser.add_argument("--batch", type=int, default=1_000, help="rows per batch")
    parser.add_argument("--batches", type=int, default=40, help="batches to time per run")
    parser.add_argument("--singles", type=int, default=2_000, help="single events per run")
    parser.add_argument("--batch-threads", default="1,2", help="concurrent batch posters")
    parser.add_argument("--single-threads", default="1,8", help="concurrent single posters")
    parser.add_argument(
        "--synchronous",
        choices=["FULL", "NORMAL"],
        default=None,
        help="override SQLite's synchronous setting (for comparison; NORMAL is not durable)",
    )
    parser.add_argument("--new-users", type=float, default=0.05, help="share of unseen users")
    parser.add_argument("--template", type=Path, default=None, help="SQLite store to reuse")
    parser.add_argument("--pg-url", default=os.environ.get("RECSTACK_TEST_DATABASE_URL"))
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="comma-separated; postgres needs --pg-url"
    )
    parser.add_argument(
        "--event-ids",
        choices=["uuid4", "ordered"],
        default="uuid4",
        help="ids of posted events: random UUIDs, or time-ordered (data.event_ids.new_event_id)",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def writer(store: Store) -> Callable[[Sequence[Any]], int]:
    """``Store.add_events`` for rows; older versions took rows through ``event_rows``."""
    if hasattr(recstack.store, "EventRow"):
        return store.add_events
    from recstack.store.event_rows import add_event_rows

    return lambda rows: add_event_rows(store.engine, rows)


def build(store: Store, args: argparse.Namespace) -> tuple[int, int]:
    """Fill ``store`` with synthetic events; returns (users, items) it holds."""
    n_users, n_items = max(args.events // 20, 100), max(args.events // 400, 50)
    data = generate_synthetic(n_users, n_items, args.events, args.seed)
    started = time.perf_counter()
    store.ingest(data)
    print(f"built: {args.events:,} events in {time.perf_counter() - started:.1f} s")
    return n_users, n_items


class RowMaker:
    """API-like events: random event ids, known items, mostly known users."""

    def __init__(
        self, n_users: int, n_items: int, new_users: float, seed: int, ordered_ids: bool
    ) -> None:
        self.rng = np.random.default_rng(seed + 1)
        self.n_users, self.n_items, self.new_users = n_users, n_items, new_users
        self.now = 1_800_000_000
        self.ordered_ids = ordered_ids

    def event_id(self) -> str:
        if self.ordered_ids:  # as recstack.data.event_ids.new_event_id makes them
            return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"
        return uuid.uuid4().hex

    def rows(self, n: int) -> list[tuple]:
        rng = self.rng
        users = rng.integers(0, self.n_users, n).tolist()
        fresh = (rng.random(n) < self.new_users).tolist()
        items = rng.integers(0, self.n_items, n).tolist()
        kinds = rng.integers(0, len(EVENT_TYPES), n).tolist()
        ratings = rng.integers(1, 6, n).tolist()
        out = []
        for k in range(n):
            self.now += 1
            kind = EVENT_TYPES[kinds[k]]
            user = f"new-{uuid.uuid4().hex[:12]}" if fresh[k] else f"u{users[k]}"
            value = float(ratings[k]) if kind == "rate" else None
            out.append((self.event_id(), user, f"c{items[k]}", kind, value, self.now, None))
        return out


def time_calls(write: Callable, batches: list[list[tuple]], threads: int) -> dict[str, float]:
    """Rows/s by wall clock and process CPU µs per call over ``batches``, posted by
    ``threads`` concurrent callers (after two warm-up calls)."""
    for rows in batches[:2]:
        write(rows)
    timed = batches[2:]
    rows = sum(len(b) for b in timed)
    inserted: list[int] = []
    start = threading.Barrier(threads + 1)

    def post(share: list[list[tuple]]) -> None:
        start.wait()
        inserted.append(sum(write(b) for b in share))

    workers = [threading.Thread(target=post, args=(timed[k::threads],)) for k in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    wall, cpu = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert sum(inserted) == rows, (sum(inserted), rows)
    return {
        "rows_s": rows / wall,
        "calls_s": len(timed) / wall,
        "cpu_us": cpu / len(timed) * 1e6,
    }


def durability(store: Store) -> str:
    if store.engine.dialect.name != "sqlite":
        with store.engine.connect() as conn:
            return "synchronous_commit=" + conn.exec_driver_sql("SHOW synchronous_commit").scalar()
    with store.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    return f"journal_mode={mode} synchronous={['OFF', 'NORMAL', 'FULL', 'EXTRA'][sync]}"


def measure(store: Store, n_users: int, n_items: int, args: argparse.Namespace) -> list[str]:
    maker = RowMaker(n_users, n_items, args.new_users, args.seed, args.event_ids == "ordered")
    write = writer(store)
    name = store.engine.dialect.name
    lines = []
    for size, calls, threads in [
        *((args.batch, args.batches, int(t)) for t in args.batch_threads.split(",") if t),
        *((1, args.singles, int(t)) for t in args.single_threads.split(",") if t),
    ]:
        got = time_calls(write, [maker.rows(size) for _ in range(calls + 2)], threads)
        lines.append(
            f"{name:<10} {size:>5} rows x {threads:>2} threads  {got['rows_s']:>9,.0f} rows/s  "
            f"{got['calls_s']:>8,.0f} calls/s  {got['cpu_us']:>9,.0f} µs CPU / call"
        )
    return [*lines, f"{'':<10} ({durability(store)})"]


def override_synchronous(store: Store, mode: str | None) -> None:
    """Run ``PRAGMA synchronous=<mode>`` on every new connection (comparisons only)."""
    if mode is None or store.engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(store.engine, "connect")
    def _pragma(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA synchronous={mode}")


def sqlite_run(args: argparse.Namespace, workdir: Path) -> list[str]:
    path = workdir / "store.db"
    template = args.template
    if template is not None and template.exists():
        shutil.copyfile(template, path)
        n_users, n_items = max(args.events // 20, 100), max(args.events // 400, 50)
        store = Store(f"sqlite:///{path}")
        store.migrate()
    else:
        store = Store(f"sqlite:///{path}")
        store.migrate()
        n_users, n_items = build(store, args)
        if template is not None:
            store.close()
            shutil.copyfile(path, template)
    try:
        store.engine.dispose()  # connections opened from here on get the override
        override_synchronous(store, args.synchronous)
        return measure(store, n_users, n_items, args)
    finally:
        store.close()


def postgres_run(args: argparse.Namespace) -> list[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(args.pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.pg_url else "?"
    store = Store(f"{args.pg_url}{sep}options={quote(f'-csearch_path={schema}')}")
    try:
        store.migrate()
        n_users, n_items = build(store, args)
        return measure(store, n_users, n_items, args)
    finally:
        store.close()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    lines = [f"store of {args.events:,} events; code: {Path(recstack.store.__file__).parent}"]
    backends = args.backends.split(",")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory(prefix="recstack-bench-") as tmp:
            lines += sqlite_run(args, Path(tmp))
    if "postgres" in backends and args.pg_url:
        lines += postgres_run(args)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
