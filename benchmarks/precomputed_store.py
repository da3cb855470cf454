"""Precomputed lists into the store and back: rows/s of ``store_scores`` and of a slot load.

Writes ``--users`` x ``--k`` synthetic rows in the layout ``recstack spark score`` writes
(Parquet ``user_id, rank, item_id, score``, several part files, each user's rows together),
then for each backend (``--backends sqlite,postgres``; PostgreSQL from ``--pg-url``):

- ``write``: ``store_scores`` into an empty store (one new set);
- ``replace``: the same again over the existing set (new generation, flip, old rows deleted);
- ``load``: ``PrecomputedStore.load`` plus the model the serving slot builds
  (``load_precomputed`` over the store's catalogue).

Prints a table and one JSON line. Run under the machine-wide lock:

    flock /tmp/bench.lock python benchmarks/precomputed_store.py --users 200000 --k 20
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument(
        "--pg-insert", action="store_true", help="PostgreSQL: executemany INSERT instead of COPY"
    )
    return parser.parse_args(argv)


def write_scores(root: Path, users: int, k: int, items: int, files: int) -> int:
    rng = np.random.default_rng(0)
    per_file = -(-users // files)
    for f in range(files):
        lo, hi = f * per_file, min(users, (f + 1) * per_file)
        n = hi - lo
        user = np.repeat(np.arange(lo, hi), k)
        picks = rng.integers(0, items, size=(n, k))
        scores = -np.sort(-rng.random((n, k), dtype=np.float32), axis=1)
        pd.DataFrame(
            {
                "user_id": pd.Series(user).map("u{}".format),
                "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), n),
                "item_id": pd.Series(picks.ravel()).map("i{}".format),
                "score": scores.ravel(),
            }
        ).to_parquet(root / f"part-{f:05d}.parquet", index=False)
    return users * k


def pg_schema_url(base: str) -> tuple[str, str]:
    from urllib.parse import quote

    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with sa.create_engine(base).begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    return f"{base}?options={quote(f'-csearch_path={schema}')}", schema


def drop_schema(base: str, schema: str) -> None:
    import sqlalchemy as sa

    with sa.create_engine(base).begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def run_backend(url: str, scores: Path, rows: int, items: int) -> dict[str, float]:
    from recstack.data.loaders import LoadedData
    from recstack.serving.runtime.loader import load_precomputed
    from recstack.store import Store
    from recstack.workflows.precomputed import store_scores

    store = Store(url)
    store.migrate()
    catalogue = pd.DataFrame({"item_id": [f"i{n}" for n in range(items)]})
    empty = pd.DataFrame({"user_id": [], "item_id": [], "event_type": [], "timestamp": []}).astype(
        {"timestamp": "int64"}
    )
    store.ingest(LoadedData(interactions=empty, items=catalogue, source="bench"))
    out: dict[str, float] = {}
    for label in ("write", "replace"):
        start = time.perf_counter()
        info = store_scores(store, scores, "bench")
        seconds = time.perf_counter() - start
        assert info.n_rows == rows
        out[f"{label}_s"] = round(seconds, 2)
        out[f"{label}_rows_per_s"] = round(rows / seconds)
    start = time.perf_counter()
    lists = store.precomputed.load("bench")
    out["load_s"] = round(time.perf_counter() - start, 2)
    out["load_rows_per_s"] = round(rows / (time.perf_counter() - start))
    assert len(lists.item_idx) == rows
    start = time.perf_counter()
    items_map, _ = store.catalogue()
    model, _ = load_precomputed(store, "bench", items_map)
    out["slot_load_s"] = round(time.perf_counter() - start, 2)
    out["slot_bytes"] = int(model.indptr.nbytes + model.item_idx.nbytes + model.list_scores.nbytes)
    store.close()
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.pg_insert:
        import recstack.store.precomputed

        recstack.store.precomputed.PG_COPY = False
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        scores = Path(tmp) / "scores"
        scores.mkdir()
        rows = write_scores(scores, args.users, args.k, args.items, args.files)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                results[backend] = run_backend(
                    f"sqlite:///{Path(tmp) / 'store.db'}", scores, rows, args.items
                )
            else:
                url, schema = pg_schema_url(args.pg_url)
                try:
                    results[backend] = run_backend(url, scores, rows, args.items)
                finally:
                    drop_schema(args.pg_url, schema)
    print(f"{args.users:,} users x k={args.k} = {rows:,} rows, {args.items:,} items")
    print(f"{'backend':<10}{'write rows/s':>14}{'replace rows/s':>16}{'load rows/s':>14}"
          f"{'slot load s':>13}")  # fmt: skip
    for backend, r in results.items():
        print(
            f"{backend:<10}{r['write_rows_per_s']:>14,}{r['replace_rows_per_s']:>16,}"
            f"{r['load_rows_per_s']:>14,}{r['slot_load_s']:>13}"
        )
    copy = not args.pg_insert
    print(json.dumps({"users": args.users, "k": args.k, "rows": rows, "pg_copy": copy, **results}))


if __name__ == "__main__":
    main()
