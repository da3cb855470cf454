"""What SQLite alone allows for durable event writes into a large store, with and without the
(user, time) index: the floor under ``serving_load.py``'s batched-events figure.

Writes batches of random events straight into a COPY of a store's database (``--db``, for
example ``HOME/recstack.db`` of a ``serving_load.py`` home, copied first: events are added to
it) with the server's pragmas (WAL, ``synchronous=FULL``), one transaction per batch, and prints
wall and CPU milliseconds per batch and the events/s one writer reaches. ``--drop-user-index``
drops ``ix_interactions_user_ts`` first, to show what that index costs. ``--synchronous
NORMAL``, ``--mmap-mib``, ``--checkpoint-pages`` and ``--sorted`` try what might make the indexed
write cheaper (no fsync per commit, reads through a memory map, rarer checkpoints, each batch
inserted in index order). ``--side-index`` does what a store does since the user index moved
to a side file (``recstack.store.user_index``): it drops the index, builds the side file once
(untimed), then times the writes and the background merges, each run of ``MERGE_ROWS`` events
merged as the server's writer would start it, and prints both per event. Run it alone.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import time
from pathlib import Path

from recstack.store import Store, user_index

INSERT = (
    'INSERT INTO interactions (event_id, user_id, item_id, event_type, value, "timestamp", '
    "context) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="a copy of a store's database")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=100, help="timed batches (after 20)")
    parser.add_argument("--cache-kib", type=int, default=64 * 1024, help="the writer's cache")
    parser.add_argument("--drop-user-index", action="store_true")
    parser.add_argument("--sorted", action="store_true", help="insert each batch by user")
    parser.add_argument(
        "--side-index",
        action="store_true",
        help="the user index in a side file, merged in runs (recstack.store.user_index)",
    )
    parser.add_argument("--mmap-mib", type=int, default=0, help="PRAGMA mmap_size (0: off)")
    parser.add_argument("--checkpoint-pages", type=int, default=8192, help="wal_autocheckpoint")
    parser.add_argument(
        "--synchronous",
        default="FULL",
        choices=("FULL", "NORMAL"),
        help="NORMAL: no fsync per commit (WAL: a kill -9 loses nothing, a power cut may)",
    )
    args = parser.parse_args()
    db = sqlite3.connect(args.db, isolation_level=None)
    for pragma in (
        "journal_mode=WAL",
        f"synchronous={args.synchronous}",
        "wal_autocheckpoint=8192",
    ):
        db.execute(f"PRAGMA {pragma}")
    db.execute(f"PRAGMA cache_size=-{args.cache_kib}")
    db.execute(f"PRAGMA wal_autocheckpoint={args.checkpoint_pages}")
    db.execute(f"PRAGMA mmap_size={args.mmap_mib * 1024 * 1024}")
    if args.drop_user_index:
        db.execute("DROP INDEX IF EXISTS ix_interactions_user_ts")
    if args.side_index:  # as a store upgrades: migration 0008, then the side file is built
        started = time.perf_counter()
        with Store(f"sqlite:///{args.db}") as store:
            store.migrate()
        print(f"migrated, side file built: {time.perf_counter() - started:.1f} s")
    stored = db.execute("SELECT max(id) FROM interactions").fetchone()[0] or 0
    users = db.execute("SELECT max(id) FROM users").fetchone()[0]
    items = db.execute("SELECT max(id) FROM items").fetchone()[0]
    rng, tag = random.Random(1), f"floor-{time.time_ns()}"

    def write(k: int) -> None:
        rows = [
            (
                f"{tag}-{k}-{j}",
                rng.randint(1, users),
                rng.randint(1, items),
                "view",
                None,
                1_800_000_000 + k,
                None,
            )
            for j in range(args.batch)
        ]
        db.execute("BEGIN IMMEDIATE")
        if args.side_index:
            db.execute(user_index.GUARD)
        if args.sorted:
            rows.sort(key=lambda row: (row[1], row[5]))
        db.executemany(INSERT, rows)
        db.execute("COMMIT")

    merging = [0.0, 0.0, 0]  # wall, CPU, runs

    def merge_if_due() -> None:
        if not args.side_index or user_index.tail(db) < user_index.MERGE_ROWS:
            return
        cpu_at, wall_at = time.process_time(), time.perf_counter()
        user_index.merge(str(args.db), at_least=user_index.MERGE_ROWS)
        merging[0] += time.perf_counter() - wall_at
        merging[1] += time.process_time() - cpu_at
        merging[2] += 1

    for k in range(20):  # warm the cache and the WAL
        write(k)
    cpu, wall = time.process_time(), time.perf_counter()
    for k in range(20, 20 + args.batches):
        write(k)
        merge_if_due()
    cpu = (time.process_time() - cpu) / args.batches * 1000
    wall = (time.perf_counter() - wall) / args.batches * 1000
    if args.side_index:
        events = args.batches * args.batch
        print(
            f"  of which {merging[2]} merges: {merging[0] / events * 1e6:.1f} us wall, "
            f"{merging[1] / events * 1e6:.1f} us CPU per event"
        )
    index = (
        "with the user index in a side file"
        if args.side_index
        else ("without" if args.drop_user_index else "with") + " the (user, time) index"
    )
    print(
        f"{stored:,} stored events, {index}, synchronous="
        f"{args.synchronous}, batches of {args.batch:,}:"
    )
    print(
        f"  {wall:.1f} ms wall, {cpu:.1f} ms CPU per batch = {args.batch / wall * 1000:,.0f} "
        "events/s for one writer"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
