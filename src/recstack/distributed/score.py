"""``recstack spark score``: top-k for every user of a factor model, written as Parquet.

Each Spark task rebuilds the model from broadcast arrays (factors, id maps, parameters, no
file access on the executors) and scores its users with the model's own ``recommend``,
excluding what each user has already interacted with, so the lists are the ones the model
gives through the single-machine path for known users.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from recstack.data.idmap import IdMap
from recstack.data.weights import EventWeighting
from recstack.distributed.als import weighted_pairs
from recstack.distributed.output import staged_output, write_manifest
from recstack.errors import ConfigError
from recstack.models.base import Recommender
from recstack.progress import ProgressTask

SCORES_DDL = "user_id string, rank int, item_id string, score float"
_MODELS: dict[str, Recommender] = {}  # per worker process: broadcast token -> rebuilt model


def _model_state(model: Recommender) -> dict[str, Any]:
    return {
        "name": model.name,
        "params": model.get_params(),
        "users": model.users.to_list(),
        "items": model.items.to_list(),
        "state": model._state(),
        "token": uuid.uuid4().hex,
    }


def _rebuild(broadcast: Any) -> Recommender:
    value = broadcast.value
    cached = _MODELS.get(value["token"])
    if cached is None:
        from recstack.models.catalog import create_model

        cached = create_model(value["name"], **value["params"])
        cached.users, cached.items = IdMap(value["users"]), IdMap(value["items"])
        cached._set_state(value["state"])
        _MODELS.clear()
        _MODELS[value["token"]] = cached
    return cached


def score_batches(
    batches: Iterator[pa.RecordBatch], model_bc: Any, k: int
) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: rows ``(u, items, weights)`` to ``(user_id, rank, item_id, score)``."""
    model = _rebuild(model_bc)
    user_ids, item_ids = model.users.ids, model.items.ids
    for batch in batches:
        if batch.num_rows == 0:
            continue
        users = batch.column("u").to_numpy(zero_copy_only=False).astype(np.int64)
        items = batch.column("items")
        weights = batch.column("weights")
        lengths = np.asarray(items.value_lengths().fill_null(0), dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        flat_items = items.flatten().to_numpy(zero_copy_only=False).astype(np.int32)
        flat_weights = weights.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        history = sp.csr_matrix(
            (flat_weights, flat_items, indptr), shape=(len(users), model.n_items)
        )
        idx, scores = model.recommend(history, k, users=users)
        rank = np.tile(np.arange(1, idx.shape[1] + 1, dtype=np.int32), len(users))
        flat_idx = idx.ravel()
        valid = flat_idx >= 0
        yield pa.RecordBatch.from_pydict(
            {
                "user_id": pa.array(np.repeat(user_ids[users], idx.shape[1])[valid], pa.string()),
                "rank": pa.array(rank[valid], pa.int32()),
                "item_id": pa.array(item_ids[flat_idx[valid]], pa.string()),
                "score": pa.array(scores.ravel()[valid], pa.float32()),
            }
        )


def score_all_users(
    spark: Any,
    model: Recommender,
    interactions: Any,
    out: Path | str,
    *,
    k: int = 10,
    weighting: EventWeighting | None = None,
    partitions: int = 8,
    progress: bool = False,
) -> int:
    """Write the top ``k`` of every user the model knows to ``out`` (Parquet); returns rows.

    Seen items come from ``interactions`` (canonical rows, usually the ETL output).
    """
    from pyspark.sql import functions as F

    if k < 1:
        raise ConfigError("k must be at least 1")
    if not len(model.users):
        raise ConfigError("the model knows no users to score")
    with ProgressTask("spark score", total=2, enabled=progress) as task, staged_output(out) as tmp:
        pairs = weighted_pairs(interactions, weighting or EventWeighting())
        user_index = spark.createDataFrame(
            [(uid, i) for i, uid in enumerate(model.users.to_list())], "user_id string, u int"
        )
        item_index = spark.createDataFrame(
            [(iid, i) for i, iid in enumerate(model.items.to_list())], "item_id string, i int"
        )
        seen = (
            pairs.join(F.broadcast(user_index), "user_id")
            .join(F.broadcast(item_index), "item_id")
            .groupBy("u")
            .agg(F.collect_list("i").alias("items"), F.collect_list("weight").alias("weights"))
        )
        everyone = spark.range(len(model.users)).select(F.col("id").cast("int").alias("u"))
        rows = everyone.join(seen, "u", "left").repartition(partitions)
        task.advance()
        model_bc = spark.sparkContext.broadcast(_model_state(model))
        body = partial(score_batches, model_bc=model_bc, k=k)
        rows.mapInArrow(body, SCORES_DDL).write.parquet(str(tmp / "data"))
        model_bc.destroy()
        data = tmp / "data"
        for child in data.iterdir():
            child.rename(tmp / child.name)
        data.rmdir()
        written = spark.read.parquet(str(tmp)).count()
        write_manifest(
            tmp,
            {
                "job": "score",
                "k": k,
                "rows": written,
                "users": len(model.users),
                "model": model.name,
                "fingerprint": model.meta.data_fingerprint,
            },
        )
        task.advance()
    return written
