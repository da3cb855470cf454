"""``recstack spark train-als``: Spark MLlib ALS (implicit preferences) as a recstack ALS model.

MLlib and recstack (through ``implicit``) solve the same implicit-feedback ALS of Hu, Koren &
Volinsky: confidence ``c = 1 + alpha * w`` on observed pairs, preference 1 there and 0
elsewhere. Event weights ``w`` come from the same ``EventWeighting`` the single-machine path
uses (summed per user and item), and MLlib's ``alpha`` is recstack's ``alpha``.

Regularisation differs. recstack/implicit add a constant ``lambda`` to every normal equation:
``(YᵀCᵤY + λI) xᵤ = YᵀCᵤpᵤ``. MLlib follows ALS-WR (Zhou et al., 2008) and scales its
``regParam`` by the number of observed items of the row being solved: user ``u`` gets
``regParam * n_u``, item ``i`` gets ``regParam * n_i``. One constant cannot equal a per-row
penalty, so the mapping matches the average user:

    ``regParam = lambda / mean_u(n_u)``,  ``mean_u(n_u) = nnz / n_users``

A user with an average number of items is then regularised exactly as recstack would; a
heavier user more, a lighter one less; an item with ``n_i`` users gets
``lambda * n_i / mean_u(n_u)``. The artifact records ``regularization = lambda`` (or, when a
raw ``regParam`` is given, ``regParam * mean_u(n_u)``), which is what serving's exact fold-in
uses for users the model never saw.

The factors, the id maps and the parameters are written as a standard ``ALSRecommender``
artifact, so the model registers, loads, folds in and serves like one trained by
``recstack train``.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from recstack.data.idmap import IdMap
from recstack.data.weights import EventWeighting
from recstack.errors import ConfigError
from recstack.models.als import ALSConfig, ALSRecommender, auto_alpha, auto_regularization
from recstack.models.base import ArtifactMeta, library_versions
from recstack.progress import ProgressTask


def mllib_reg_param(regularization: float, mean_items_per_user: float) -> float:
    """MLlib's ``regParam`` giving the average user recstack's penalty ``regularization``.

    >>> mllib_reg_param(0.05, 100.0)
    0.0005
    """
    if mean_items_per_user <= 0:
        raise ConfigError("no interactions to train on")
    return regularization / mean_items_per_user


def recstack_regularization(reg_param: float, mean_items_per_user: float) -> float:
    """The constant ``lambda`` an MLlib ``regParam`` amounts to for the average user.

    >>> recstack_regularization(0.0005, 100.0)
    0.05
    """
    return reg_param * mean_items_per_user


def resolved_config(
    config: ALSConfig, mean_weight: float, mean_per_user: float, reg_param: float | None
) -> ALSConfig:
    """``alpha`` and ``regularization`` filled in from the data as ``ALSRecommender`` fills
    them (``auto_alpha``, ``auto_regularization``) where not given; a raw ``reg_param``
    fixes ``regularization`` at ``reg_param * mean_per_user``.

    >>> c = resolved_config(ALSConfig(alpha=10.0), 1.0, 80.0, reg_param=None)
    >>> c.alpha, c.regularization
    (10.0, 60.5)
    >>> resolved_config(ALSConfig(alpha=10.0), 1.0, 80.0, reg_param=0.5).regularization
    40.0
    """
    alpha = auto_alpha(mean_weight) if config.alpha is None else config.alpha
    if reg_param is not None:
        lam = recstack_regularization(reg_param, mean_per_user)
    elif config.regularization is None:
        lam = auto_regularization(alpha, mean_weight, per_user=mean_per_user)
    else:
        lam = config.regularization
    return config.model_copy(update={"alpha": float(alpha), "regularization": float(lam)})


def weight_batches(batches: Any, weighting: EventWeighting) -> Any:
    """``mapInPandas`` body: ``(user_id, item_id, weight)`` by ``EventWeighting.weights``."""
    for frame in batches:
        value = frame["value"].astype("float64")
        weight = weighting.weights(frame["event_type"].astype(object), value)
        yield pd.DataFrame(
            {"user_id": frame["user_id"], "item_id": frame["item_id"], "weight": weight}
        )


def weighted_pairs(interactions: Any, weighting: EventWeighting) -> Any:
    """Summed weight per (user, item); events the weighting drops (NaN) are left out."""
    from functools import partial

    from pyspark.sql import functions as F

    body = partial(weight_batches, weighting=weighting)
    weighted = interactions.select("user_id", "item_id", "event_type", "value").mapInPandas(
        body, "user_id string, item_id string, weight float"
    )
    return (
        weighted.filter(~F.isnan("weight"))
        .groupBy("user_id", "item_id")
        .agg(F.sum("weight").cast("float").alias("weight"))
    )


def indexed_pairs(spark: Any, pairs: Any) -> tuple[Any, IdMap, IdMap]:
    """Pairs with contiguous ``u``/``i`` indices, and the id maps (ids in sorted order)."""
    from pyspark.sql import functions as F

    users = sorted(r[0] for r in pairs.select("user_id").distinct().collect())
    items = sorted(r[0] for r in pairs.select("item_id").distinct().collect())
    user_index = spark.createDataFrame(
        pd.DataFrame({"user_id": users, "u": np.arange(len(users), dtype=np.int32)})
    )
    item_index = spark.createDataFrame(
        pd.DataFrame({"item_id": items, "i": np.arange(len(items), dtype=np.int32)})
    )
    joined = pairs.join(F.broadcast(user_index), "user_id").join(F.broadcast(item_index), "item_id")
    return joined.select("u", "i", "weight"), IdMap(users), IdMap(items)


def train_spark_als(
    spark: Any,
    interactions: Any,
    *,
    params: dict[str, Any] | None = None,
    reg_param: float | None = None,
    weighting: EventWeighting | None = None,
    progress: bool = False,
) -> ALSRecommender:
    """Fit MLlib ALS on canonical interactions and return a recstack ``ALSRecommender``.

    ``params`` are ``ALSConfig`` parameters (factors, regularization, alpha, iterations,
    random_state); ``reg_param`` sets MLlib's ``regParam`` directly instead of mapping
    ``regularization`` (see the module docstring).
    """
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    config: ALSConfig = ALSRecommender(**(params or {})).config
    start = time.perf_counter()
    with ProgressTask("spark als", total=3, enabled=progress) as task:
        task.update(description="spark als: weighting and indexing")
        pairs = weighted_pairs(interactions, weighting or EventWeighting())
        indexed, users, items = indexed_pairs(spark, pairs)
        indexed = indexed.cache()
        totals = indexed.agg(F.count(F.lit(1)), F.avg("weight")).first()
        nnz, mean_weight = int(totals[0]), float(totals[1] or 1.0)
        if nnz == 0:
            raise ConfigError("no interactions to train on")
        mean_per_user = nnz / len(users)
        config = resolved_config(config, mean_weight, mean_per_user, reg_param)
        if reg_param is None:
            reg_param = mllib_reg_param(float(config.regularization), mean_per_user)
        task.advance()
        task.update(description=f"spark als: {config.iterations} iterations")
        if spark.sparkContext.getCheckpointDir() is None:
            spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="recstack-spark-ckpt-"))
        als = ALS(
            rank=config.factors,
            maxIter=config.iterations,
            regParam=reg_param,
            implicitPrefs=True,
            alpha=config.alpha,
            userCol="u",
            itemCol="i",
            ratingCol="weight",
            nonnegative=False,
            checkpointInterval=5,
            seed=config.random_state if config.random_state is not None else 0,
        )
        fitted = als.fit(indexed)
        task.advance()
        task.update(description="spark als: collecting factors")
        user_factors = _factors(fitted.userFactors, len(users), config.factors)
        item_factors = _factors(fitted.itemFactors, len(items), config.factors)
        indexed.unpersist()
        task.advance()
    model = ALSRecommender(**config.model_dump())
    model.users, model.items = users, items
    model.user_factors, model.item_factors = user_factors, item_factors
    versions = library_versions()
    versions["pyspark"] = spark.version
    model.meta = ArtifactMeta(
        model=model.name,
        params=model.get_params(),
        data_fingerprint=_fingerprint(users, items, nnz),
        n_users=len(users),
        n_items=len(items),
        n_interactions=nnz,
        train_seconds=round(time.perf_counter() - start, 3),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        metrics={"spark_reg_param": reg_param},
        versions=versions,
    )
    return model


def _factors(frame: Any, n: int, rank: int) -> np.ndarray:
    """MLlib's ``(id, features)`` rows as a dense float32 matrix in index order."""
    out = np.zeros((n, rank), dtype=np.float32)
    rows = frame.toPandas()
    if len(rows):
        out[rows["id"].to_numpy()] = np.stack(rows["features"].to_numpy()).astype(np.float32)
    return out


def _fingerprint(users: IdMap, items: IdMap, nnz: int) -> str:
    h = hashlib.sha256()
    h.update("\x1f".join(users.ids).encode())
    h.update("\x1e".join(items.ids).encode())
    h.update(str(nnz).encode())
    return h.hexdigest()[:16]
