"""ALS training speed at scale: recstack's ALSRecommender vs calling implicit directly.

Generates a synthetic dataset (``recstack.data.synthetic`` when available, otherwise a quick
power-law generator), builds one Dataset and its CSR matrix, then times on that same matrix:

* ``implicit.cpu.als.AlternatingLeastSquares.fit`` called directly, and
* ``ALSRecommender.fit`` (the recstack wrapper: confidence, thread limits, progress, meta),

and prints both times and their ratio (the wrapper should stay within 1.2x). Finally it asks
EASE for the same catalogue to show the clear size error it gives instead of running out of
memory. The target run (MovieLens-25M scale) is::

    python benchmarks/als_scale.py --users 162000 --items 62000 --events 25000000

Check it at small size first, e.g. ``--users 20000 --items 8000 --events 1000000``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recstack.data.dataset import Dataset
from recstack.data.idmap import IdMap
from recstack.errors import ConfigError
from recstack.models.als import ALSRecommender
from recstack.models.ease import EASERecommender


def powerlaw_dataset(n_users: int, n_items: int, n_events: int, seed: int) -> Dataset:
    """Events with Zipf-like item popularity and log-normal user activity (repeats summed)."""
    rng = np.random.default_rng(seed)
    item_p = 1.0 / np.arange(1, n_items + 1) ** 0.8
    item_p /= item_p.sum()
    user_p = rng.lognormal(0.0, 1.0, n_users)
    user_p /= user_p.sum()
    users = rng.choice(n_users, size=n_events, p=user_p).astype(np.int32)
    items = rng.permutation(n_items)[rng.choice(n_items, size=n_events, p=item_p)]
    return Dataset.from_arrays(
        IdMap(np.arange(n_users)),
        IdMap(np.arange(n_items)),
        users,
        items.astype(np.int32),
        np.ones(n_events, dtype=np.float32),
        np.arange(n_events, dtype=np.int64),
    )


def synthetic_dataset(n_users: int, n_items: int, n_events: int, seed: int) -> Dataset | None:
    """The project's e-learning generator as a Dataset, or None when it is not available."""
    try:
        from recstack.data.synthetic import generate_synthetic
    except ImportError:
        return None
    loaded = generate_synthetic(n_users, n_items, n_events, seed=seed, progress=True)
    return Dataset.from_frame(loaded.interactions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=8_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--regularization", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="fits per library (best is shown)")
    parser.add_argument(
        "--generator",
        choices=["auto", "synthetic", "powerlaw"],
        default="auto",
        help="auto: recstack.data.synthetic if importable, else the power-law generator",
    )
    args = parser.parse_args()

    start = time.perf_counter()
    dataset = None
    if args.generator in ("auto", "synthetic"):
        dataset = synthetic_dataset(args.users, args.items, args.events, args.seed)
        if dataset is None and args.generator == "synthetic":
            parser.error("recstack.data.synthetic is not available")
    if dataset is None:
        dataset = powerlaw_dataset(args.users, args.items, args.events, args.seed)
    generated = time.perf_counter() - start
    start = time.perf_counter()
    matrix = dataset.matrix  # built once, shared by both runs
    print(
        f"data: {dataset.n_users:,} users x {dataset.n_items:,} items, "
        f"{dataset.n_interactions:,} events, {matrix.nnz:,} nonzeros "
        f"(generated in {generated:.1f}s, CSR in {time.perf_counter() - start:.1f}s)"
    )

    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    def fit_implicit() -> None:
        with threadpool_limits(1, "blas"):
            AlternatingLeastSquares(
                factors=args.factors,
                regularization=args.regularization,
                alpha=args.alpha,
                iterations=args.iterations,
                num_threads=args.threads,
                random_state=args.seed,
            ).fit(matrix, show_progress=False)

    def fit_recstack() -> None:
        ALSRecommender(
            factors=args.factors,
            regularization=args.regularization,
            alpha=args.alpha,
            iterations=args.iterations,
            num_threads=args.threads,
            random_state=args.seed,
        ).fit(dataset, progress=False)

    timings: dict[str, list[tuple[float, float]]] = {"implicit": [], "recstack": []}
    for round_ in range(args.repeat):  # alternate the order so neither always runs first
        order = [("implicit", fit_implicit), ("recstack", fit_recstack)]
        for name, fit in order if round_ % 2 == 0 else order[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            fit()
            timings[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    best = {name: min(runs) for name, runs in timings.items()}
    for name, label in (("implicit", "implicit ALS fit"), ("recstack", "recstack ALSRecommender")):
        wall, cpu = best[name]
        print(f"{label:26s} {wall:8.2f} s wall  {cpu:8.2f} s cpu   (best of {args.repeat})")
    ratio_wall = best["recstack"][0] / best["implicit"][0]
    ratio_cpu = best["recstack"][1] / best["implicit"][1]
    print(f"ratio recstack / implicit: {ratio_wall:8.2f} wall  {ratio_cpu:8.2f} cpu")

    ease = EASERecommender()
    if dataset.n_items <= int(ease.params["max_items"]):
        print(f"EASE: {dataset.n_items:,} items fit under max_items; no size error to show")
        return
    start = time.perf_counter()
    try:
        ease.fit(dataset)
    except ConfigError as err:
        print(f"EASE refused in {time.perf_counter() - start:.3f}s: {err}")


if __name__ == "__main__":
    main()
