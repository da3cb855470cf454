"""Speed and recall@10 of the served HNSW search on the item vectors of recstack homes.

    python benchmarks/hnsw_recall.py HOME [HOME ...] [--m 16,32] [--filter 0.4]

For each home, loads its registered factor model (as ``serving_load.py`` builds it), builds
``FaissHNSWIndex`` graphs with each ``--m`` (efConstruction as the index's default for M 16,
100 above, as the code before the serving redesign built them) and searches 1,000 of the
model's own user vectors with a random ``--filter`` share of the items allowed, as an attribute
filter allows them, at the index's ``ef_search``. Prints µs per search (one thread) and recall
of the exact top 10 among the allowed items, filtered and unfiltered.

A fast search is only worth its recall: on a model whose vectors are degenerate for the graph
(the 25M home ALS trained with the defaults before they were scaled to the data), searches
end early and return few of the true top 10.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from recstack.index.faiss_index import HNSW_EF_CONSTRUCTION, HNSW_M, FaissHNSWIndex
from recstack.registry import ModelRegistry
from recstack.settings import Settings


def factors(home: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    settings = Settings(home=home)
    registry = ModelRegistry(settings)
    info = registry.resolve(settings.model_name, settings.serving_alias)
    model = registry.load(settings.model_name, version=info.version)
    items = np.ascontiguousarray(model.item_vectors(), dtype=np.float32)
    users = np.ascontiguousarray(model.user_factors, dtype=np.float32)
    return items, users, model.get_params()


def measure(index: FaissHNSWIndex, queries: np.ndarray, mask: np.ndarray | None,
            exact: np.ndarray) -> dict[str, float]:  # fmt: skip
    start = time.perf_counter()
    found = [index.search(q, 10, mask)[0][0] for q in queries]
    us = (time.perf_counter() - start) / len(queries) * 1e6
    recall = np.mean(
        [len(set(f.tolist()) & set(e.tolist())) / 10 for f, e in zip(found, exact, strict=True)]
    )
    return {"us": round(us, 1), "recall@10": round(float(recall), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("homes", nargs="+", type=Path)
    p.add_argument("--m", default=f"{HNSW_M},32", help="comma-separated HNSW M values")
    p.add_argument("--filter", type=float, default=0.4, help="share of items a filter allows")
    p.add_argument("--queries", type=int, default=1000)
    args = p.parse_args()
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    for home in args.homes:
        items, users, params = factors(home)
        queries = users[rng.integers(0, len(users), args.queries)]
        mask = rng.random(len(items)) < args.filter
        allowed = np.flatnonzero(mask)
        exact_all = np.argsort(-(queries @ items.T), axis=1)[:, :10]
        exact_filtered = allowed[np.argsort(-(queries @ items[allowed].T), axis=1)[:, :10]]
        for m in (int(x) for x in args.m.split(",")):
            efc = HNSW_EF_CONSTRUCTION if m == HNSW_M else 100
            index = FaissHNSWIndex(M=m, ef_construction=efc).build(items)
            with threadpool_limits(1):
                index.search(queries[:50], 10, mask)  # warm
                row = {
                    "home": str(home),
                    "model": {
                        k: params[k] for k in ("factors", "regularization", "alpha") if k in params
                    },  # fmt: skip
                    "M": m,
                    "ef_construction": efc,
                    "ef_search": index.ef_search,
                    "filtered": measure(index, queries, mask, exact_filtered),
                    "unfiltered": measure(index, queries, None, exact_all),
                }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
