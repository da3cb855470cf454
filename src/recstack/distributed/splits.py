"""The single-machine splits (``recstack.data.splits``) as Spark jobs over canonical Parquet.

Same rules, computed per user with window functions instead of numpy:

- ``stratified``: per user, a random order; rank ``r`` of ``n_u`` goes to train when
  ``r / n_u <= ratio`` (so ``floor(ratio * n_u)`` rows train), users with fewer than
  ``min_interactions`` rows train entirely. The random order is a hash of the seed and the
  event id rather than numpy's generator over the snapshot's row order, so it does not depend
  on how Spark partitions the data; each user's train and test sizes equal the single-machine
  ones, the rows drawn differ.
- ``temporal``: the cut is the timestamp at 0-based position ``round(ratio * n)`` in time
  order (Python's rounding, as there); rows strictly before it train.
- ``leave_last``: each user's ``n`` most recent rows test, users with ``n`` or fewer rows
  train entirely; among equal timestamps the larger event id counts as more recent (the
  single-machine split uses row order, which Parquet does not keep).
"""

from __future__ import annotations

from typing import Any

from recstack.errors import ConfigError

PROTOCOLS = ("stratified", "temporal", "leave_last")


def stratified_split(
    frame: Any, ratio: float = 0.75, seed: int = 42, min_interactions: int = 1
) -> tuple[Any, Any]:
    """Per-user random ``ratio`` to train (``(train, test)`` DataFrames)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    _check_ratio(ratio)
    key = F.xxhash64(F.lit(int(seed)), F.col("event_id"))
    by_user = Window.partitionBy("user_id")
    ranked = frame.withColumn(
        "_rank", F.row_number().over(by_user.orderBy(key, F.col("event_id")))
    ).withColumn("_n", F.count(F.lit(1)).over(by_user))
    to_train = (F.col("_rank") / F.col("_n") <= F.lit(float(ratio))) | (
        F.col("_n") < F.lit(int(min_interactions))
    )
    marked = ranked.withColumn("_train", to_train).drop("_rank", "_n")
    return _sides(marked)


def temporal_split(frame: Any, ratio: float = 0.8) -> tuple[Any, Any]:
    """A global time cut at the ``round(ratio * n)``-th timestamp."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    _check_ratio(ratio)
    n = frame.count()
    position = int(round(ratio * n))
    if n == 0 or position >= n:
        return frame, frame.limit(0)
    per_time = frame.groupBy("timestamp").count()
    upto = per_time.withColumn(
        "_upto",
        F.sum("count").over(Window.orderBy("timestamp").rowsBetween(Window.unboundedPreceding, 0)),
    )
    cut = upto.filter(F.col("_upto") > position).agg(F.min("timestamp")).first()[0]
    return frame.filter(F.col("timestamp") < cut), frame.filter(F.col("timestamp") >= cut)


def leave_last_n_out(frame: Any, n: int = 1) -> tuple[Any, Any]:
    """Each user's ``n`` most recent rows to test."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if n < 1:
        raise ConfigError(f"n must be at least 1, not {n}")
    by_user = Window.partitionBy("user_id")
    recent = by_user.orderBy(F.col("timestamp").desc(), F.col("event_id").desc())
    marked = (
        frame.withColumn("_from_end", F.row_number().over(recent) - 1)
        .withColumn("_n", F.count(F.lit(1)).over(by_user))
        .withColumn("_train", ~((F.col("_from_end") < n) & (F.col("_n") > n)))
        .drop("_from_end", "_n")
    )
    return _sides(marked)


def split_frame(frame: Any, protocol: str, **options: Any) -> tuple[Any, Any]:
    """Dispatch by protocol name (``stratified``, ``temporal``, ``leave_last``)."""
    if protocol == "stratified":
        return stratified_split(frame, **options)
    if protocol == "temporal":
        return temporal_split(frame, **options)
    if protocol == "leave_last":
        return leave_last_n_out(frame, **options)
    raise ConfigError(f"unknown split protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


def _sides(marked: Any) -> tuple[Any, Any]:
    marked = marked.cache()
    return (
        marked.filter("_train").drop("_train"),
        marked.filter("NOT _train").drop("_train"),
    )


def _check_ratio(ratio: float) -> None:
    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"ratio must be between 0 and 1, not {ratio}")


def run_split(
    spark: Any,
    source: Any,
    out: Any,
    protocol: str = "stratified",
    *,
    progress: bool = False,
    **options: Any,
) -> dict[str, int]:
    """Split the canonical Parquet at ``source`` into ``out/train`` and ``out/test``.

    Both sides keep the canonical columns and the user buckets; ``out`` is replaced only when
    both are written. Returns the row count of each side.
    """
    from recstack.distributed.etl import BUCKET_COLUMN, read_canonical
    from recstack.distributed.output import staged_output, write_manifest
    from recstack.progress import ProgressTask

    frame = read_canonical(spark, source)
    with ProgressTask(f"spark split ({protocol})", total=2, enabled=progress) as task:
        with staged_output(out) as tmp:
            train, test = split_frame(frame, protocol, **options)
            counts = {}
            for name, side in (("train", train), ("test", test)):
                writer = side.write
                if BUCKET_COLUMN in side.columns:
                    writer = writer.partitionBy(BUCKET_COLUMN)
                writer.parquet(str(tmp / name))
                counts[name] = spark.read.parquet(str(tmp / name)).count()
                task.advance()
            write_manifest(
                tmp, {"job": "split", "protocol": protocol, "options": options, **counts}
            )
    return counts
