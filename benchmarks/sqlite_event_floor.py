"""What SQLite alone allows for durable event writes into a large store, with and without the
(user, time) index: the floor under ``serving_load.py``'s batched-events figure.

Writes batches of random events straight into a COPY of a store's database (``--db``, for
example ``HOME/recstack.db`` of a ``serving_load.py`` home, copied first: events are added to
it) with the server's pragmas (WAL, ``synchronous=FULL``), one transaction per batch, and prints
wall and CPU milliseconds per batch and the events/s one writer reaches. ``--drop-user-index``
drops ``ix_interactions_user_ts`` first, to show what that index costs. ``--synchronous
NORMAL``, ``--mmap-mib``, ``--checkpoint-pages`` and ``--sorted`` try what might make the indexed
write cheaper (no fsync per commit, reads through a memory map, rarer checkpoints, each batch
inserted in index order). Run it alone.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import time
from pathlib import Path

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
        if args.sorted:
            rows.sort(key=lambda row: (row[1], row[5]))
        db.executemany(INSERT, rows)
        db.execute("COMMIT")

    for k in range(20):  # warm the cache and the WAL
        write(k)
    cpu, wall = time.process_time(), time.perf_counter()
    for k in range(20, 20 + args.batches):
        write(k)
    cpu = (time.process_time() - cpu) / args.batches * 1000
    wall = (time.perf_counter() - wall) / args.batches * 1000
    index = "without" if args.drop_user_index else "with"
    print(
        f"{stored:,} stored events, {index} the (user, time) index, synchronous="
        f"{args.synchronous}, batches of {args.batch:,}:"
    )
    print(
        f"  {wall:.1f} ms wall, {cpu:.1f} ms CPU per batch = {args.batch / wall * 1000:,.0f} "
        "events/s for one writer"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
