"""How long an experiment's results take over N logged exposures, from the rollups and from the log.

Fills a fresh store (SQLite by default, ``--database-url`` for PostgreSQL) with ``--exposures``
exposures of a two-arm experiment over ``--users`` users and one click outcome per 10
exposures, through ``store.exposures.add_exposures`` / ``add_outcomes`` (which also keep the
per-user rollups), then times ``workflows.experiments.experiment_results``:

- ``results_s``: as served, from the rollups (one row per user and event type, the
  user-level frame, ``analyse_experiment``), the first call of the process, as a CLI run
  pays it; ``results_again_s`` the same call once more, after the from-log one;
- ``from_log_s`` (unless ``--no-log``): ``from_log=True``, the per-user GROUP BY over every
  raw exposure and outcome, which is what the results cost before the rollups.

Both must give the same results dict (checked). ``write_rows_per_s`` is the exposures written
per second of ``add_exposures`` (raw rows and rollup together); building the rows is not timed.
The tables are emptied first and, on PostgreSQL, afterwards (use a scratch database), unless
``--keep``: a store already holding ``--exposures`` exposures of the experiment is read as it
is and left filled, so a large store is filled once and only the reads are timed again
(``--store PATH`` names the SQLite file to keep). ``--bulk`` (SQLite) writes the
same rows as plain inserts with the log's secondary indexes dropped, rebuilds them, then fills
the rollups with the migration's backfill: the state a store upgraded to 0006 is in, loaded in
minutes instead of the hours 10M single-batch writes take on a busy machine (no write rate).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--exposures", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--database-url")
    p.add_argument("--chunk", type=int, default=50_000)
    p.add_argument("--no-log", action="store_true", help="skip the from-log timing")
    p.add_argument("--store", type=Path, help="the SQLite file (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="reuse a filled store, leave it filled")
    p.add_argument("--bulk", action="store_true", help="fill by bulk insert + backfill (SQLite)")
    args = p.parse_args()

    from recstack.store import Store

    path = args.store or Path(tempfile.mkdtemp()) / "store.db"
    url = args.database_url or f"sqlite:///{path}"
    store = Store(url)
    store.migrate()
    if args.keep and store.exposures.count("bench") == args.exposures:
        _measure(store, url, args, loaded=None, writing=None)
        return 0
    _empty(store)
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
    if args.bulk:
        _bulk_fill(store, args, rng)
        _measure(store, url, args, loaded=time.perf_counter() - start, writing=None)
        return 0
    writing = 0.0
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
        began = time.perf_counter()
        store.exposures.add_exposures(rows)
        writing += time.perf_counter() - began
        clicked = [r for r in rows if rng.random() < 0.1]
        store.exposures.add_outcomes(
            [{"event_id": f"e{r['recommendation_id']}", "recommendation_id": r["recommendation_id"],
              "experiment": "bench", "arm": r["arm"], "user_id": r["user_id"], "item_id": "i1",
              "event_type": "click", "value": None, "position": 0, "timestamp": 0}
             for r in clicked]
        )  # fmt: skip
    _measure(store, url, args, loaded=time.perf_counter() - start, writing=writing)
    return 0


def _measure(
    store: Any, url: str, args: Any, *, loaded: float | None, writing: float | None
) -> None:
    from recstack.workflows.experiments import experiment_results

    start = time.perf_counter()
    result = experiment_results(store, "bench")
    seconds = time.perf_counter() - start
    from_log = None
    if not args.no_log:
        start = time.perf_counter()
        raw = experiment_results(store, "bench", from_log=True)
        from_log = time.perf_counter() - start
        same = json.dumps(raw, sort_keys=True, default=str)
        assert same == json.dumps(result, sort_keys=True, default=str), "results differ"
    start = time.perf_counter()
    experiment_results(store, "bench")
    again = time.perf_counter() - start
    if args.database_url and not args.keep:
        _empty(store)
    store.close()
    print(
        json.dumps(
            {
                "database": url.split(":")[0],
                "exposures": args.exposures,
                "users": sum(a["users"] for a in result["arms"].values()),
                "load_s": None if loaded is None else round(loaded, 1),
                "write_rows_per_s": None if writing is None else round(args.exposures / writing),
                "results_s": round(seconds, 2),
                "results_again_s": round(again, 2),
                "from_log_s": None if from_log is None else round(from_log, 2),
                "ctr": {a: v["metrics"]["ctr"]["value"] for a, v in result["arms"].items()},
                "decision": result["decision"]["action"],
            },
            indent=2,
        )
    )


def _bulk_fill(store: Any, args: Any, rng: np.random.Generator) -> None:
    """The rows the writers would log (same generator), inserted in bulk (SQLite only)."""
    import importlib.util

    import sqlalchemy as sa

    from recstack.store.migrate import MIGRATIONS_DIR
    from recstack.store.tables import exposures, outcomes

    if store.engine.dialect.name != "sqlite":
        raise SystemExit("--bulk fills SQLite stores only")
    path = MIGRATIONS_DIR / "versions" / "0006_exposure_rollups.py"
    spec = importlib.util.spec_from_file_location("rollups_migration", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    indexes = [*exposures.indexes, *outcomes.indexes]
    with store.engine.begin() as conn:
        for index in indexes:
            conn.execute(sa.schema.DropIndex(index))
    items = '[{"item_id":"i1","position":0,"score":1.0}]'
    for low in range(0, args.exposures, args.chunk):
        n = min(args.chunk, args.exposures - low)
        users = rng.integers(args.users, size=n)
        rows = [
            (f"r{low + j}", float(low + j), f"u{u}", "recommendations", "bench",
             "treatment" if u % 2 else "control", "popularity", None, items)
            for j, u in enumerate(users.tolist())
        ]  # fmt: skip
        clicked = [
            (f"e{r[0]}", r[0], "bench", r[5], r[2], "i1", "click", None, 0, 0)
            for r in rows
            if rng.random() < 0.1
        ]
        with store.engine.begin() as conn:
            raw = conn.connection.driver_connection
            raw.executemany("INSERT INTO exposures (recommendation_id, served_at, user_id, "
                            "surface, experiment, arm, model, model_version, items) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)  # fmt: skip
            raw.executemany("INSERT INTO outcomes (event_id, recommendation_id, experiment, "
                            "arm, user_id, item_id, event_type, value, position, timestamp) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", clicked)  # fmt: skip
    with store.engine.begin() as conn:
        for index in indexes:
            conn.execute(sa.schema.CreateIndex(index))
        for statement in migration.BACKFILL:
            conn.exec_driver_sql(statement)


def _empty(store: Any) -> None:
    from recstack.store.tables import EXPERIMENT_TABLES

    with store.engine.begin() as conn:
        for table in EXPERIMENT_TABLES:
            conn.exec_driver_sql(f"DELETE FROM {table}")


if __name__ == "__main__":
    raise SystemExit(main())
