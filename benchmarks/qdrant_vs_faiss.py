"""Qdrant vs FAISS HNSW on a MovieLens-25M-sized catalogue: recall@10 against exact, latency.

The item vectors are real ALS factors: ``ALSRecommender`` (64 factors) is fitted on a
power-law interaction set with 62,423 items (MovieLens-25M's movie count) and its item
factors are indexed; the queries are its user factors. Each item gets a payload — a genre
(from the factor cluster it leans to, so genres are not independent of the vectors) and a
release year — for the filtered case of seed 003 ("Comedy from 1990 on").

In one run, on the same vectors and queries, it measures:

* exact search (``ExactIndex``, numpy/BLAS): the ground truth and a latency baseline;
* FAISS HNSW (``FaissHNSWIndex`` with the serving settings M=16, ef_construction=80,
  ef_search=128): build time, recall@10, per-query latency (p50/p95) and batch throughput;
* Qdrant (``QdrantIndex``) at ``--qdrant`` (default ``:memory:``, qdrant-client's local mode,
  which searches exactly; pass ``http://host:6333`` for a server's HNSW graph): the same;
* the filtered query for each: FAISS and exact through the equivalent item mask, Qdrant
  through its payload filter.

Run it alone on the machine (``flock /tmp/bench.lock``)::

    python benchmarks/qdrant_vs_faiss.py --items 62423 --users 20000 --events 2000000
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from als_scale import powerlaw_dataset  # noqa: E402

from recstack.index import ExactIndex, FaissHNSWIndex, QdrantIndex  # noqa: E402
from recstack.index.payload_filter import where_mask  # noqa: E402
from recstack.models.als import ALSRecommender  # noqa: E402
from recstack.testing.index_contract import recall_at_k  # noqa: E402

GENRES = [
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western", "(no genres listed)",
]  # fmt: skip
WHERE = {"genre": "Comedy", "year": {"gte": 1990}}
K = 10


def als_vectors(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, float]:
    dataset = powerlaw_dataset(args.users, args.items, args.events, args.seed)
    start = time.perf_counter()
    model = ALSRecommender(factors=args.factors, iterations=args.iterations, random_state=0)
    model.fit(dataset)
    seconds = time.perf_counter() - start
    rng = np.random.default_rng(args.seed)
    users = rng.choice(len(model.user_factors), args.queries, replace=False)
    return model.item_vectors().astype(np.float32), model.user_factors[users], seconds


def payloads_for(vectors: np.ndarray, seed: int) -> list[dict]:
    """Genres from the factor a vector leans to most (plus a random second one), years skewed
    recent like a film catalogue."""
    rng = np.random.default_rng(seed)
    lean = np.argmax(vectors, axis=1) % len(GENRES)
    second = rng.integers(0, len(GENRES), len(vectors))
    years = np.clip(2020 - rng.exponential(20.0, len(vectors)).astype(int), 1900, 2019)
    return [
        {"genre": sorted({GENRES[a], GENRES[b]}), "year": int(y)}
        for a, b, y in zip(lean, second, years, strict=True)
    ]


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def latency(search: Callable[[np.ndarray], object], queries: np.ndarray) -> tuple[float, float]:
    """p50 and p95 milliseconds of one-query searches."""
    times = []
    for q in queries:
        start = time.perf_counter()
        search(q[None, :])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=62_423)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument(
        "--filtered-queries",
        type=int,
        default=20,
        help="queries of the filtered case (qdrant-client's local mode checks the filter on "
        "every point in Python: ~0.1 ms per point and query on 62K items)",
    )
    parser.add_argument("--qdrant", default=":memory:", help=":memory:, a directory or a URL")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    vectors, queries, fit_s = als_vectors(args)
    payloads = payloads_for(vectors, args.seed)
    mask = where_mask(payloads, WHERE)
    print(
        f"vectors: ALS item factors {vectors.shape[0]:,} x {vectors.shape[1]} "
        f"(implicit ALS on {args.users:,} users x {args.items:,} items x {args.events:,} "
        f"power-law events, fit {fit_s:.1f}s); {len(queries):,} queries = ALS user factors "
        f"(first {len(queries[: args.latency_queries]):,} one at a time for latency); filter "
        f"{WHERE} allows {int(mask.sum()):,} items, on the first {args.filtered_queries} queries",
        flush=True,
    )
    exact = ExactIndex().build(vectors)
    truth, _ = exact.search(queries, K)
    fq = queries[: args.filtered_queries]
    truth_f, _ = exact.search(fq, K, mask=mask)
    lq = queries[: args.latency_queries]
    lfq = fq[: args.latency_queries]

    rows = []
    _, exact_batch = timed(lambda: exact.search(queries, K))
    rows.append(("exact (numpy)", 0.0, 1.0, 1.0, *latency(lambda q: exact.search(q, K), lq),
                 len(queries) / exact_batch,
                 latency(lambda q: exact.search(q, K, mask=mask), lfq)[0]))  # fmt: skip

    faiss, build_s = timed(lambda: FaissHNSWIndex().build(vectors))
    got, batch_s = timed(lambda: faiss.search(queries, K))
    got_f, _ = timed(lambda: faiss.search(fq, K, mask=mask))
    rows.append(("FAISS HNSW M16 ef128", build_s, recall_at_k(got[0], truth),
                 recall_at_k(got_f[0], truth_f), *latency(lambda q: faiss.search(q, K), lq),
                 len(queries) / batch_s,
                 latency(lambda q: faiss.search(q, K, mask=mask), lfq)[0]))  # fmt: skip

    qdrant, build_s = timed(lambda: QdrantIndex(args.qdrant).build(vectors, payloads))
    got, batch_s = timed(lambda: qdrant.search(queries, K))
    got_f, _ = timed(lambda: qdrant.search_where(fq, K, WHERE))
    mode = "server" if qdrant.server else "local mode, exact"
    rows.append((f"Qdrant ({mode})", build_s, recall_at_k(got[0], truth),
                 recall_at_k(got_f[0], truth_f), *latency(lambda q: qdrant.search(q, K), lq),
                 len(queries) / batch_s,
                 latency(lambda q: qdrant.search_where(q, K, WHERE), lfq)[0]))  # fmt: skip

    head = (
        f"{'index':<28}{'build s':>9}{'recall@10':>11}{'filt. r@10':>11}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'batch q/s':>11}{'filt. p50 ms':>14}"
    )
    print(head)
    print("-" * len(head))
    for name, build, rec, rec_f, p50, p95, qps, fp50 in rows:
        print(
            f"{name:<28}{build:>9.1f}{rec:>11.4f}{rec_f:>11.4f}{p50:>9.3f}{p95:>9.3f}"
            f"{qps:>11,.0f}{fp50:>14.3f}"
        )


if __name__ == "__main__":
    main()
