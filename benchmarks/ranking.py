"""Does the two-stage reranker beat the best single retriever? Figures for the ranking stage.

For each dataset and split: the tuned single retrievers (``benchmarks/configs``), reciprocal-
rank fusion of them, and ``two_stage`` over the same retrievers, all fitted on the same
training part; NDCG@10, P@1, recall@10 and catalogue coverage of top-10 lists with training
items removed; the paired bootstrap 95% CI of the per-user NDCG@10 difference between
``two_stage`` and the best single retriever; candidate recall of the merged lists; and the
in-process time to rerank 200 candidates for one user (p50/p99).

    flock /tmp/bench.lock python benchmarks/ranking.py --dataset ml-100k --seeds 42,43,44
    python benchmarks/ranking.py --dataset ml-latest-small --protocol temporal
    python benchmarks/ranking.py --dataset synthetic
    python benchmarks/ranking.py --home HOME   # the two_stage a home serves (e.g. the 25M set)

``--home`` also times ``recommend`` per user on batches of 1 to 64 users: a server scores one
request at a time, and the difference is what batching concurrent requests would save.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import DATASETS, model_specs, weighting  # noqa: E402

from recstack.data.dataset import Dataset  # noqa: E402
from recstack.evaluation import metrics as m  # noqa: E402
from recstack.evaluation.bootstrap import paired_bootstrap_ci  # noqa: E402
from recstack.evaluation.protocol import holdout_target, recommend_users, split_dataset  # noqa: E402
from recstack.models.catalog import create_model  # noqa: E402
from recstack.models.ranking.candidates import candidate_recall, rrf  # noqa: E402
from recstack.models.ranking.two_stage import TwoStageRecommender  # noqa: E402

ROOT = Path(__file__).resolve().parent


def load(name: str, seed: int) -> Dataset:
    if name == "synthetic":
        from recstack.data.synthetic import generate_synthetic

        data = generate_synthetic(2000, 500, 50_000, seed=seed)
        return Dataset.from_frame(data.interactions, items=data.items)
    from recstack.data.loaders import load_movielens

    data = load_movielens(DATASETS / name)
    return Dataset.from_frame(data.interactions, items=data.items, weighting=weighting("binary"))


def scores(rec: np.ndarray, relevant: Any, n_items: int, k: int) -> dict[str, Any]:
    hits = m.ranking_hits(rec, relevant)
    return {
        "ndcg": m.ndcg_per_user(hits, k),
        "p1": m.precision_per_user(hits, 1),
        "recall": m.recall_per_user(hits, k),
        "coverage": m.catalogue_coverage(rec[:, :k], n_items),
        "lists": rec[:, :k],
    }


def fused(models: list, train: Dataset, users: np.ndarray, k: int, depth: int = 100) -> np.ndarray:
    """Reciprocal-rank fusion of the models' top-``depth`` lists."""
    lists = [recommend_users(model, train, users, depth) for model in models]
    n = train.n_items
    total = np.zeros((len(users), n), dtype=np.float32)
    rows = np.arange(len(users))[:, None]
    for idx in lists:
        ranks = np.broadcast_to(np.arange(depth, dtype=np.float32), idx.shape)
        contrib = rrf(ranks.reshape(-1, 1), np.ones((idx.size, 1), bool)).reshape(idx.shape)
        np.add.at(
            total, (np.broadcast_to(rows, idx.shape), np.maximum(idx, 0)), contrib * (idx >= 0)
        )
    return np.argsort(-total, axis=1, kind="stable")[:, :k]


def percentiles(wall: list[float], cpu: list[float]) -> dict[str, float]:
    """p50/p99 of wall and thread CPU seconds, in milliseconds."""
    w, c = np.asarray(wall) * 1000, np.asarray(cpu) * 1000
    return {
        "p50_ms": round(float(np.percentile(w, 50)), 3),
        "p99_ms": round(float(np.percentile(w, 99)), 3),
        "cpu_p50_ms": round(float(np.percentile(c, 50)), 3),
        "cpu_p99_ms": round(float(np.percentile(c, 99)), 3),
    }


def timed(calls: list[Callable[[], object]]) -> dict[str, float]:
    """Run each call once with BLAS and OpenMP on one thread, as a server worker runs them
    (a second BLAS thread halves ALS's product here and hides its CPU from the thread's clock):
    wall time, and the thread's CPU time (less sensitive to other work on a shared machine)."""
    wall, cpu = [], []
    with threadpool_limits(1):
        for call in calls:
            start, start_cpu = time.perf_counter(), time.thread_time()
            call()
            wall.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
    return percentiles(wall, cpu)


def rerank_latency(
    model: TwoStageRecommender, train: Dataset, n: int = 200, reps: int = 300
) -> dict[str, float]:
    """Milliseconds to score ``n`` given candidates for one known user (retriever lists,
    features, booster)."""
    rng = np.random.default_rng(0)
    users = rng.integers(0, train.n_users, size=reps)
    picks = [rng.choice(train.n_items, size=min(n, train.n_items), replace=False) for _ in users]
    return timed(
        [
            partial(model.score_items, train.matrix[u], np.array([u]), items)
            for u, items in zip(users, picks, strict=True)
        ]
    )


def recommend_latency(
    model: TwoStageRecommender, train: Dataset, k: int = 10, reps: int = 300
) -> dict[str, float]:
    """Milliseconds for one known user's top-``k`` over the whole catalogue (every
    retriever's list, features and booster for the merged candidates, then the top k)."""
    users = np.random.default_rng(1).integers(0, train.n_users, size=reps)
    return timed([partial(model.recommend, train.matrix[u], k, users=np.array([u])) for u in users])


def batched_latency(
    model: TwoStageRecommender, train: Dataset, k: int = 10, n: int = 512
) -> dict[str, float]:
    """Microseconds per user of ``recommend`` on batches of 1 to 64 known users (the same
    ``n`` users each time): what scoring concurrent requests together would save."""
    users = np.random.default_rng(2).integers(0, train.n_users, size=n)
    rows = train.matrix[users]
    out = {}
    for size in (1, 4, 16, 64):
        start = time.perf_counter()
        for lo in range(0, n, size):
            model.recommend(rows[lo : lo + size], k, users=users[lo : lo + size])
        out[str(size)] = round((time.perf_counter() - start) / n * 1e6)
    return out


def served_latency(home: Path, first_trees: int = 0) -> dict[str, Any]:
    """Time the ``two_stage`` champion a recstack home serves, on the users of its store: with
    its trees compiled, as a server scores them, and before that with LightGBM's predict."""
    from recstack.registry import ModelRegistry
    from recstack.serving.runtime.loader import compiled_root
    from recstack.settings import Settings
    from recstack.store import Store

    settings = Settings(home=home)
    registry = ModelRegistry(settings)
    info = registry.resolve(settings.model_name, settings.serving_alias)
    model = registry.load(settings.model_name, version=info.version)
    if not isinstance(model, TwoStageRecommender):
        raise SystemExit(f"{home}: the served model is {info.model}, not two_stage")
    store = Store.from_settings(settings)
    try:
        data = store.snapshot(settings.weighting())
    finally:
        store.close()
    booster = {
        "rerank_200": rerank_latency(model, data),
        "recommend_10": recommend_latency(model, data),
    }
    start = time.perf_counter()
    model.compile_scoring(compiled_root(settings))  # as a serving worker does after loading
    compile_s = time.perf_counter() - start
    return {
        "home": str(home),
        "version": info.version,
        "users": data.n_users,
        "items": data.n_items,
        "interactions": data.n_interactions,
        "candidates_per_retriever": model.config.candidates,
        "retrievers": model.config.retrievers,
        "trees": int(model.booster.num_trees()),
        "compiled": model._compiled is not None,
        "compile_or_load_s": round(compile_s, 2),
        "rerank_200": rerank_latency(model, data),
        "recommend_10": recommend_latency(model, data),
        "recommend_10_us_per_user_by_batch": batched_latency(model, data),
        "booster_interpreted": booster,
        **({"first_trees": first_trees_latency(model, data, first_trees)} if first_trees else {}),
    }


def first_trees_latency(model: TwoStageRecommender, data: Dataset, trees: int) -> dict[str, Any]:
    """Reranking with all the booster's trees against only its first ``trees`` (e.g. one
    booster of a bag), both compiled, in alternating blocks: what the other trees cost."""
    from recstack.models.ranking import lgbm

    full = (model.booster, model._compiled)
    with tempfile.TemporaryDirectory() as cache:
        model.booster = lgbm.booster_from_text(full[0].model_to_string(num_iteration=trees))
        model._compiled = None
        model.compile_scoring(Path(cache))
        first = (model.booster, model._compiled)
        blocks: dict[str, list[dict[str, float]]] = {"all": [], f"first_{trees}": []}
        for _ in range(2):
            for name, (booster, compiled) in zip(blocks, (full, first), strict=True):
                model.booster, model._compiled = booster, compiled
                blocks[name].append(rerank_latency(model, data))
    model.booster, model._compiled = full
    return blocks


def latency_only(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Fit ``two_stage`` on the split's training part and time reranking only: with its trees
    compiled, as a server scores them, and with LightGBM's predict."""
    dataset = load(args.dataset, seed)
    train, _ = split_dataset(dataset, args.protocol, 0.75, seed)
    names = args.retrievers.split(",")
    specs = model_specs(names, args.configs)
    params = {"retrievers": ",".join(names), "retriever_params": json.dumps(specs), "seed": seed}
    if args.protocol == "temporal":
        params["split"] = "global"
    params.update(json.loads(args.params))
    two = TwoStageRecommender(**params).fit(train)
    interpreted = rerank_latency(two, train)
    with tempfile.TemporaryDirectory() as cache:
        two.compile_scoring(Path(cache))  # as a serving worker scores, when lleaves is installed
        return {
            "seed": seed,
            "trees": int(two.booster.num_trees()),
            "compiled": two._compiled is not None,
            "rerank_200": rerank_latency(two, train),
            "rerank_200_interpreted": interpreted,
        }


def run(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    dataset = load(args.dataset, seed)
    split_seed = 42 if args.dataset == "synthetic" else seed
    train, test = split_dataset(dataset, args.protocol, 0.75, split_seed)
    target = holdout_target(train, test)
    names = args.retrievers.split(",")
    specs = model_specs(names, args.configs)
    k = 10
    rows: dict[str, dict[str, Any]] = {}
    singles = []
    for name in names:
        start = time.perf_counter()
        model = create_model(name, **specs[name]).fit(train)
        fit_s = time.perf_counter() - start
        rec = recommend_users(model, train, target.users, k)
        rows[name] = {**scores(rec, target.relevant, train.n_items, k), "fit_s": fit_s}
        singles.append(model)
    rec = fused(singles, train, target.users, k)
    rows["rrf"] = {**scores(rec, target.relevant, train.n_items, k), "fit_s": 0.0}
    params = {"retrievers": ",".join(names), "retriever_params": json.dumps(specs), "seed": seed}
    if args.protocol == "temporal":  # learn from a time cut of the training part, like the split
        params["split"] = "global"
    params.update(json.loads(args.params))
    start = time.perf_counter()
    two = TwoStageRecommender(**params).fit(train)
    fit_s = time.perf_counter() - start
    rec = recommend_users(two, train, target.users, k)
    rows["two_stage"] = {**scores(rec, target.relevant, train.n_items, k), "fit_s": fit_s}
    h = train.matrix[target.users]
    cands = two.candidates(h, target.users)
    recall = candidate_recall(cands, target.relevant, names)
    best = max(names, key=lambda n: rows[n]["ndcg"].mean())
    diff = paired_bootstrap_ci(rows["two_stage"]["ndcg"], rows[best]["ndcg"], seed=seed)
    warm = np.diff(train.matrix.indptr)[target.users] > 0  # users with a training history
    return {
        "seed": seed,
        "table": {
            n: {
                "ndcg@10": round(float(r["ndcg"].mean()), 4),
                "p@1": round(float(r["p1"].mean()), 4),
                "recall@10": round(float(r["recall"].mean()), 4),
                "coverage": round(float(r["coverage"]), 4),
                "fit_s": round(r["fit_s"], 1),
            }
            for n, r in rows.items()
        },
        "best_single": best,
        "ndcg_ratio": round(float(rows["two_stage"]["ndcg"].mean() / rows[best]["ndcg"].mean()), 4),
        "p1_ratio": round(
            float(rows["two_stage"]["p1"].mean() / max(rows[best]["p1"].mean(), 1e-9)), 4
        ),
        "coverage_ratio": round(
            rows["two_stage"]["coverage"] / max(rows[best]["coverage"], 1e-9), 4
        ),
        "ndcg_diff_ci95": [round(x, 4) for x in diff],
        "warm_users": int(warm.sum()),
        "warm_ndcg@10": {n: round(float(r["ndcg"][warm].mean()), 4) for n, r in rows.items()},
        # lists without signal (no history: tied scores in hashed order) cover the catalogue
        # like random lists do; the warm users' coverage compares what the models chose
        "warm_coverage": {
            n: round(float(m.catalogue_coverage(r["lists"][warm], train.n_items)), 4)
            for n, r in rows.items()
        },
        "candidate_recall": {
            "positives": recall.positives,
            "found": recall.found,
            "missed": recall.missed,
            "recall": round(recall.recall, 4),
            "per_retriever": recall.per_retriever,
        },
        "training": two.report,
        "rerank_200": None if args.skip_latency else rerank_latency(two, train),
    }


def blas_kernels() -> list[str]:
    """The BLAS libraries loaded and the kernels each chose for this CPU. OpenBLAS picks its
    kernels at run time (``DYNAMIC_ARCH``): AVX-512 ones ("SkylakeX") round differently from
    AVX2 ones ("Haswell", "Zen"), which moves NDCG@10 in the third or fourth decimal, so a
    figure names them; ``OPENBLAS_CORETYPE=Haswell`` reproduces an AVX2 machine's figures."""
    return sorted(
        {
            f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
            for i in threadpool_info()
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", choices=["ml-100k", "ml-latest-small", "synthetic"], default="ml-100k"
    )
    parser.add_argument("--protocol", choices=["stratified", "temporal"], default="stratified")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds (split and model)")
    parser.add_argument("--retrievers", default="ease,als,itemknn")
    parser.add_argument("--configs", default=str(ROOT / "configs"))
    parser.add_argument("--params", default="{}", help="JSON of extra two_stage params")
    parser.add_argument(
        "--latency-only", action="store_true", help="only fit two_stage and time reranking"
    )
    parser.add_argument(
        "--skip-latency", action="store_true", help="skip the in-process reranking timing"
    )
    parser.add_argument(
        "--home",
        type=Path,
        help="time the two_stage champion this recstack home serves, on its stored users "
        "(e.g. one built by serving_load.py --model two_stage), instead of fitting one",
    )
    parser.add_argument(
        "--first-trees",
        type=int,
        default=0,
        help="with --home: also time reranking with only the booster's first N trees "
        "(one booster of a bag of three: a third of them)",
    )
    args = parser.parse_args(argv)
    if args.home is not None:
        print(json.dumps(served_latency(args.home, args.first_trees)), flush=True)
        return 0
    for seed in [int(s) for s in args.seeds.split(",")]:
        out = latency_only(args, seed) if args.latency_only else run(args, seed)
        out.update(dataset=args.dataset, protocol=args.protocol, blas=blas_kernels())
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
