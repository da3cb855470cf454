"""How long an experiment's results take over N logged exposures (SQL aggregation + analysis).

Fills a fresh store (SQLite by default, ``--database-url`` for PostgreSQL) with ``--exposures``
exposures of a two-arm experiment over ``--users`` users and one click outcome per 10
exposures, then times ``workflows.experiments.experiment_results`` (the per-user GROUP BY in
the database, the user-level frame, ``analyse_experiment``). Loading the rows is not timed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--exposures", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--database-url")
    p.add_argument("--chunk", type=int, default=50_000)
    args = p.parse_args()

    from recstack.store import Store
    from recstack.workflows.experiments import experiment_results

    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'store.db'}"
    store = Store(url)
    store.migrate()
    arms = [
        {"name": "control", "model": "popularity", "weight": 0.5},
        {"name": "treatment", "model": "popularity", "weight": 0.5},
    ]
    store.experiments.create(
        {
            "key": "bench",
            "status": "running",
            "namespace": "default",
            "arms": arms,
            "bucket_start": 0,
            "traffic": 1.0,
            "salt": "bench",
        }  # fmt: skip
    )
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    item = [{"item_id": "i1", "position": 0, "score": 1.0}]
    for low in range(0, args.exposures, args.chunk):
        n = min(args.chunk, args.exposures - low)
        users = rng.integers(args.users, size=n)
        rows = [
            {"recommendation_id": f"r{low + j}", "served_at": float(low + j),
             "user_id": f"u{u}", "surface": "recommendations", "experiment": "bench",
             "arm": "treatment" if u % 2 else "control", "model": "popularity",
             "model_version": None, "items": item}
            for j, u in enumerate(users.tolist())
        ]  # fmt: skip
        store.exposures.add_exposures(rows)
        clicked = [r for r in rows if rng.random() < 0.1]
        store.exposures.add_outcomes(
            [{"event_id": f"e{r['recommendation_id']}", "recommendation_id": r["recommendation_id"],
              "experiment": "bench", "arm": r["arm"], "user_id": r["user_id"], "item_id": "i1",
              "event_type": "click", "value": None, "position": 0, "timestamp": 0}
             for r in clicked]
        )  # fmt: skip
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    result = experiment_results(store, "bench")
    seconds = time.perf_counter() - start
    store.close()
    print(
        json.dumps(
            {
                "database": url.split(":")[0],
                "exposures": args.exposures,
                "users": sum(a["users"] for a in result["arms"].values()),
                "load_s": round(loaded, 1),
                "results_s": round(seconds, 2),
                "ctr": {a: v["metrics"]["ctr"]["value"] for a, v in result["arms"].items()},
                "decision": result["decision"]["action"],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
