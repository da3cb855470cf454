"""Train ALS in Spark on an ETL output directory and register it like ``recstack train`` does.

The model is logged to the same MLflow registry under the same name (``settings.model_name``
unless given), with its parameters, data sizes and library versions, tagged as trained by
Spark, and optionally pointed at by an alias (``--promote champion``) so servers load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recstack.distributed.als import train_spark_als
from recstack.distributed.etl import read_canonical
from recstack.registry.mlflow_registry import ModelRegistry, VersionInfo
from recstack.settings import Settings


def train_and_register_spark(
    settings: Settings,
    spark: Any,
    source: Path | str,
    *,
    params: dict[str, Any] | None = None,
    reg_param: float | None = None,
    promote: str | None = None,
    name: str | None = None,
    progress: bool = False,
) -> VersionInfo:
    """Fit MLlib ALS on the canonical Parquet at ``source``, register it, maybe promote it."""
    interactions = read_canonical(spark, source)
    model = train_spark_als(
        spark,
        interactions,
        params=params,
        reg_param=reg_param,
        weighting=settings.weighting(),
        progress=progress,
    )
    stats = {
        "n_users": model.meta.n_users,
        "n_items": model.meta.n_items,
        "n_interactions": model.meta.n_interactions,
        "fingerprint": model.meta.data_fingerprint,
    }
    registry = ModelRegistry(settings)
    version = registry.log_model(
        model,
        name=name or settings.model_name,
        metrics={
            "train_seconds": float(model.meta.train_seconds),
            "spark_reg_param": float(model.meta.metrics["spark_reg_param"]),
        },
        dataset_stats=stats,
        tags={
            "recstack.evaluated": "false",
            "recstack.trained_by": "spark",
            "recstack.spark.master": spark.sparkContext.master,
            "recstack.spark.source": str(Path(source).absolute()),
        },
    )
    if promote:
        version = registry.promote(version.name, version.version, promote)
    return version
