"""Time the synthetic e-learning generator at a given size and print events per second.

Example (the MovieLens-25M shape): python benchmarks/synthetic_speed.py --users 162000 \
    --items 62000 --events 25000000
"""

from __future__ import annotations

import argparse
import resource
import time

from recstack.data.synthetic import generate_synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=6_500)
    parser.add_argument("--items", type=int, default=2_500)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="show the progress bar")
    args = parser.parse_args()
    start = time.perf_counter()
    data = generate_synthetic(args.users, args.items, args.events, args.seed, args.progress)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = data.interactions["event_type"].value_counts().to_dict()
    print(
        f"{len(data.interactions):,} events, {args.users:,} users, {args.items:,} items: "
        f"{seconds:.2f} s, {len(data.interactions) / seconds:,.0f} events/s, "
        f"peak RSS {peak_mib:,.0f} MiB"
    )
    print("event types:", counts)


if __name__ == "__main__":
    main()
