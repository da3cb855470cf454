"""Spark ETL and ALS beside the single-machine path; ML-100K parity; a Spark model served.

Three parts, each printing a table and one JSON line:

- ``scale``: ``--n`` synthetic ratings in MovieLens-25M shape (162,541 users x 62,423 items,
  Zipf-popular items, heavy-tailed user activity; ``ratings.csv`` + ``movies.csv`` written in
  chunks) through ``recstack spark etl`` and Spark MLlib ALS on ``--master`` (``local[2]``),
  and through the single-machine path in the same run: ``load_movielens`` + ``Store.ingest``
  into SQLite (what ``recstack ingest movielens`` does) and implicit ALS. Seconds and rows/s.
- ``parity``: MovieLens-100K, one Spark stratified split (75/25) used by both sides, Spark ALS
  and implicit ALS at the same factors, iterations, alpha and lambda (MLlib's regParam mapped
  as ``recstack.distributed.als`` documents); NDCG@10 of each on the same test users.
- ``serve``: the Spark-trained model registered and promoted, the ML-100K store served by the
  real app (``load_engine`` + ``create_app`` through Starlette's TestClient, as the serving
  tests do); a posted event for a user and that user's next answer.

    flock /tmp/bench.lock python benchmarks/spark_scale.py --parts scale --n 2000000
    flock /tmp/bench.lock python benchmarks/spark_scale.py --parts parity,serve
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ML25M_USERS, ML25M_ITEMS = 162_541, 62_423


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="scale,parity,serve")
    parser.add_argument("--n", type=int, default=25_000_000, help="synthetic ratings (scale)")
    parser.add_argument("--users", type=int, default=ML25M_USERS)
    parser.add_argument("--items", type=int, default=ML25M_ITEMS)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--scale-factors", type=int, default=64)
    parser.add_argument("--scale-iterations", type=int, default=5)
    parser.add_argument("--factors", type=int, default=64, help="parity factors")
    parser.add_argument("--iterations", type=int, default=15, help="parity iterations")
    parser.add_argument("--ml100k", type=Path, default=Path("/work/shared/datasets/ml-100k"))
    parser.add_argument("--workdir", type=Path, default=None)
    return parser.parse_args(argv)


# ---- data -----------------------------------------------------------------------------------
def write_ml25m_shape(root: Path, n: int, n_users: int, n_items: int, seed: int = 0) -> None:
    """``ratings.csv`` (userId,movieId,rating,timestamp) with ``n`` rows and ``movies.csv``,
    generated and written in chunks of one million rows so memory stays flat."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    item_p = 1.0 / np.arange(1, n_items + 1) ** 0.9
    item_p /= item_p.sum()
    user_p = rng.pareto(1.2, n_users) + 1.0
    user_p /= user_p.sum()
    items_perm = rng.permutation(n_items) + 1
    start = 1_000_000_000
    with (root / "ratings.csv").open("w") as fh:
        fh.write("userId,movieId,rating,timestamp\n")
        done = 0
        while done < n:
            m = min(1_000_000, n - done)
            users = rng.choice(n_users, size=m, p=user_p) + 1
            items = items_perm[rng.choice(n_items, size=m, p=item_p)]
            ratings = rng.integers(1, 11, size=m) / 2.0
            stamps = start + rng.integers(0, 500_000_000, size=m)
            chunk = pd.DataFrame({"u": users, "i": items, "r": ratings, "t": stamps})
            chunk.to_csv(fh, header=False, index=False)
            done += m
    movies = pd.DataFrame(
        {
            "movieId": np.arange(1, n_items + 1),
            "title": [f"Movie {i} (2000)" for i in range(1, n_items + 1)],
            "genres": "Drama",
        }
    )
    movies.to_csv(root / "movies.csv", index=False)


# ---- parts ----------------------------------------------------------------------------------
def part_scale(spark, args: argparse.Namespace, work: Path) -> dict:  # noqa: ANN001
    from recstack.data.loaders import load_movielens
    from recstack.distributed.als import train_spark_als
    from recstack.distributed.etl import read_canonical, run_etl
    from recstack.models.als import ALSRecommender
    from recstack.store import Store

    raw = work / "ml25m-shape"
    t = time.perf_counter()
    write_ml25m_shape(raw, args.n, args.users, args.items)
    gen_s = time.perf_counter() - t
    row: dict = {"n": args.n, "users": args.users, "items": args.items, "generate_s": gen_s}

    t = time.perf_counter()
    etl = run_etl(spark, raw, work / "canonical")
    row["spark_etl_s"] = time.perf_counter() - t
    row["spark_etl_rows"] = etl.rows
    params = {
        "factors": args.scale_factors,
        "iterations": args.scale_iterations,
        "alpha": 10.0,
        "regularization": 1.0,
    }
    t = time.perf_counter()
    spark_model = train_spark_als(spark, read_canonical(spark, work / "canonical"), params=params)
    row["spark_als_s"] = time.perf_counter() - t
    row["als_pairs"] = spark_model.meta.n_interactions

    t = time.perf_counter()
    loaded = load_movielens(raw)
    row["single_load_s"] = time.perf_counter() - t
    store = Store(f"sqlite:///{work / 'store.db'}")
    store.migrate()
    result = store.ingest(loaded)
    row["single_ingest_s"] = row["single_load_s"] + result.seconds
    row["single_ingest_rows"] = result.interactions_inserted
    del loaded
    t = time.perf_counter()
    dataset = store.snapshot()
    snapshot_s = time.perf_counter() - t
    t = time.perf_counter()
    ALSRecommender(**params, num_threads=2).fit(dataset)
    row["implicit_als_s"] = time.perf_counter() - t
    row["snapshot_s"] = snapshot_s
    store.close()
    del dataset
    for key in ("spark_etl", "single_ingest"):
        row[f"{key}_rows_per_s"] = args.n / row[f"{key}_s"]
    for key in ("spark_als", "implicit_als"):
        row[f"{key}_pairs_per_s"] = row["als_pairs"] / row[f"{key}_s"]
    return row


def part_parity(spark, args: argparse.Namespace, work: Path) -> dict:  # noqa: ANN001
    from recstack.data.dataset import Dataset
    from recstack.distributed.als import mllib_reg_param, train_spark_als
    from recstack.distributed.etl import run_etl
    from recstack.distributed.splits import run_split
    from recstack.evaluation.metrics import ndcg_at_k
    from recstack.models.als import ALSRecommender

    run_etl(spark, args.ml100k, work / "ml100k")
    run_split(spark, work / "ml100k", work / "ml100k-split", "stratified", ratio=0.75, seed=42)
    train = pd.read_parquet(work / "ml100k-split" / "train")
    test = pd.read_parquet(work / "ml100k-split" / "test")
    train_ds = Dataset.from_frame(train)
    resolved = ALSRecommender(factors=args.factors, iterations=args.iterations).resolve_defaults(
        train_ds
    )
    params = {
        "factors": args.factors,
        "iterations": args.iterations,
        "alpha": resolved.alpha,
        "regularization": resolved.regularization,
        "random_state": 0,
    }
    t = time.perf_counter()
    single = ALSRecommender(**params).fit(train_ds)
    single_s = time.perf_counter() - t
    t = time.perf_counter()
    frame = spark.read.parquet(str(work / "ml100k-split" / "train"))
    distributed = train_spark_als(spark, frame, params=params)
    spark_s = time.perf_counter() - t

    def ndcg(model: ALSRecommender) -> tuple[float, int]:
        users = sorted(set(test["user_id"]) & set(model.users.ids))
        idx = model.users.indices(users)
        own = train_ds.matrix[train_ds.users.indices(users)]
        # the model's item order may differ from the Dataset's: re-index histories by id
        cols = model.items.indices(train_ds.items.ids[own.indices])
        history = own.copy()
        history.indices = cols.astype(history.indices.dtype)
        history = history.__class__(
            (history.data, history.indices, history.indptr), shape=(len(users), model.n_items)
        )
        top, _ = model.recommend(history, 10, users=idx)
        relevant_ids = test.groupby("user_id")["item_id"].apply(set)
        relevant = [
            {model.items.index(i) for i in relevant_ids[u] if i in model.items} for u in users
        ]
        return ndcg_at_k(top, relevant, 10), len(users)

    single_ndcg, n_users = ndcg(single)
    spark_ndcg, _ = ndcg(distributed)
    mean_per_user = train_ds.matrix.nnz / train_ds.n_users
    return {
        "train_rows": len(train),
        "test_rows": len(test),
        "users_evaluated": n_users,
        **{k: params[k] for k in ("factors", "iterations", "alpha", "regularization")},
        "mllib_reg_param": mllib_reg_param(params["regularization"], mean_per_user),
        "implicit_ndcg@10": single_ndcg,
        "spark_ndcg@10": spark_ndcg,
        "relative_gap": (spark_ndcg - single_ndcg) / single_ndcg,
        "implicit_fit_s": single_s,
        "spark_fit_s": spark_s,
    }


def part_serve(spark, args: argparse.Namespace, work: Path) -> dict:  # noqa: ANN001
    from fastapi.testclient import TestClient

    from recstack.data.loaders import load_movielens
    from recstack.distributed.etl import run_etl
    from recstack.distributed.register import train_and_register_spark
    from recstack.serving.api.app import create_app
    from recstack.serving.runtime.loader import load_engine
    from recstack.settings import Settings
    from recstack.store import Store

    if not (work / "ml100k").exists():
        run_etl(spark, args.ml100k, work / "ml100k")
    settings = Settings(home=work / "home", database_url=f"sqlite:///{work / 'home' / 'store.db'}")
    settings.ensure_home()
    version = train_and_register_spark(
        settings, spark, work / "ml100k", params={"factors": 64, "iterations": 10},
        promote="champion",
    )  # fmt: skip
    store = Store.from_settings(settings)
    store.ingest(load_movielens(args.ml100k))
    engine, report = load_engine(settings, store)
    keys = {s: store.create_api_key(s, f"bench-{s}")[0] for s in ("read", "write")}
    app = create_app(settings, engine, store)
    user = "196"
    with TestClient(app) as client:
        read = {"Authorization": f"Bearer {keys['read']}"}
        write = {"Authorization": f"Bearer {keys['write']}"}
        before = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}, headers=read)
        before_items = [i["item_id"] for i in before.json()["items"]]
        posted = client.post(
            "/v1/events",
            json={"user_id": user, "item_id": before_items[0], "event_type": "purchase"},
            headers=write,
        )
        after = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}, headers=read)
        after_items = [i["item_id"] for i in after.json()["items"]]
        fresh = client.post(
            "/v1/events",
            json={"user_id": "spark-newcomer", "item_id": "50", "event_type": "purchase"},
            headers=write,
        )
        cold = client.get("/v1/users/spark-newcomer/recommendations", params={"k": 5}, headers=read)
    store.close()
    return {
        "registered": f"{version.name} v{version.version} {version.aliases}",
        "served_model": engine.model_info.as_dict(),
        "load_notes": report.notes,
        "before": before_items,
        "post_status": posted.status_code,
        "post_body": posted.json(),
        "after": after_items,
        "purchased_item_gone": before_items[0] not in after_items,
        "newcomer_post": fresh.status_code,
        "newcomer_top5": [i["item_id"] for i in cold.json()["items"]],
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from recstack.distributed.session import spark_session

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="recstack-spark-bench-"))
    spark = spark_session(args.master, extra={"spark.driver.memory": args.driver_memory})
    try:
        for part in parts:
            fn = {"scale": part_scale, "parity": part_parity, "serve": part_serve}[part]
            started = time.perf_counter()
            result = fn(spark, args, work)
            result["part_s"] = time.perf_counter() - started
            print(f"== {part} (master {args.master})")
            for key, value in result.items():
                shown = f"{value:,.4f}" if isinstance(value, float) else value
                print(f"  {key:28s} {shown}")
            print(json.dumps({"part": part, **result}, default=str))
    finally:
        spark.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
