"""Memory a serving worker's live histories take after many events (``UserHistories``).

    python benchmarks/live_history_memory.py                  # 25M-sized: 162K users x 154
    python benchmarks/live_history_memory.py --batches 100

Builds a snapshot of ``--users`` users with ``--per-user`` items each over ``--items`` items
(the shape of ``serving_load.py``'s 25M set), then applies ``--batches`` batches of 1,000
random events through ``add_many`` as a server's batched ``POST /v1/events`` does, and prints
the bytes of the live rows themselves against the memory Python holds for them (tracemalloc):
the difference is what the rows keep alive besides themselves. Synthetic, no store needed.
"""

from __future__ import annotations

import argparse
import tracemalloc

import numpy as np
import scipy.sparse as sp

from recstack.data.idmap import IdMap
from recstack.progress import ProgressTask
from recstack.serving.engine.histories import UserHistories


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=162_000)
    parser.add_argument("--items", type=int, default=62_000)
    parser.add_argument("--per-user", type=int, default=154)
    parser.add_argument("--batches", type=int, default=500, help="batches of 1,000 events")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    indices = rng.integers(0, args.items, size=(args.users, args.per_user))
    matrix = sp.csr_matrix(
        (
            np.ones(indices.size, dtype=np.float32),
            np.sort(indices, axis=1).ravel().astype(np.int32),
            np.arange(0, indices.size + 1, args.per_user, dtype=np.int64),
        ),
        shape=(args.users, args.items),
    )
    matrix.sum_duplicates()
    names = [f"u{i}" for i in range(args.users)]
    histories = UserHistories(IdMap(names), matrix)
    tracemalloc.start()
    with ProgressTask("events", total=args.batches * 1000) as task:
        for _ in range(args.batches):
            users = [names[i] for i in rng.integers(0, args.users, 1000)]
            items = rng.integers(0, args.items, 1000)
            histories.add_many(users, items, np.ones(1000, dtype=np.float32))
            task.advance(1000)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows = list(histories._live.values())
    own = sum(items.nbytes + weights.nbytes for items, weights in rows)
    print(
        f"{args.batches * 1000:,} events over {args.users:,} users: {len(rows):,} live rows, "
        f"{own / 2**20:,.0f} MiB in the rows, {held / 2**20:,.0f} MiB held "
        f"({held / max(own, 1):.1f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
