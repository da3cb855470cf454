"""``recstack spark etl``: raw interaction files to canonical Parquet, partitioned by user bucket.

The job reads MovieLens releases (100K, 1M/10M, latest/20M/25M ratings files) or a user's own
CSV/TSV, JSON Lines or Parquet files with the same ``ColumnMapping`` as ``recstack ingest``,
validates every split with the single-machine loaders' code (``recstack.distributed.chunks``),
derives event ids over whole files as they do (``recstack.distributed.ids``), keeps the first
row of each event id (by file, then line), and writes ``user_bucket=N/`` Parquet directories
holding the canonical interaction columns. Bad rows are reported with file, line and reason;
with ``on_error="fail"`` (the default, as for ``recstack ingest``) one bad row stops the job
and the output directory is left exactly as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from recstack.data.loaders.mapping import ColumnMapping
from recstack.data.loaders.movielens import LAYOUTS, RATINGS_MAPPING, Layout
from recstack.data.loaders.readers import file_format, first_line, sniff_delimiter
from recstack.data.schema import INTERACTION_COLUMNS
from recstack.distributed.chunks import (
    BLOCK_COLUMN,
    FILE_COLUMN,
    VALIDATED_SCHEMA,
    InputPlan,
    validate_partition,
)
from recstack.distributed.ids import hex_id_batches
from recstack.distributed.output import staged_output, write_manifest
from recstack.errors import ConfigError, DataError
from recstack.progress import ProgressTask

DEFAULT_BUCKETS = 16
BUCKET_COLUMN = "user_bucket"
BAD_ROWS_FILE = "_bad_rows.jsonl"


@dataclass
class EtlResult:
    """What an ETL run wrote and rejected."""

    out: Path
    rows: int
    bad_rows: int
    duplicates: int
    seconds: float
    errors: list[DataError] = field(default_factory=list)  # the first ones, in file/line order

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "rows": self.rows,
            "bad_rows": self.bad_rows,
            "duplicates_dropped": self.duplicates,
            "seconds": round(self.seconds, 3),
        }


def plan_input(path: Path | str, mapping: ColumnMapping | None = None) -> InputPlan:
    """What to read: a MovieLens directory (its ratings file), one file, or every data file of
    a directory (same format).

    Raises:
        ConfigError: nothing readable, mixed formats, or a non-UTF-8 text encoding.
    """
    root = Path(path)
    if not root.exists():
        raise ConfigError(f"input not found: {root}")
    layout = _movielens_layout(root)
    if layout is not None:
        ratings = (root if root.is_dir() else root.parent) / layout.ratings
        return _movielens_plan(ratings, layout)
    mapping = mapping or ColumnMapping()
    files = sorted(p for p in root.iterdir() if _data_file(p)) if root.is_dir() else [root]
    if not files:
        raise ConfigError(f"{root}: no .csv, .tsv, .jsonl or .parquet files in it")
    formats = {file_format(f) for f in files}
    if len(formats) > 1:
        raise ConfigError(f"{root}: mixed file formats ({', '.join(sorted(formats))})")
    fmt = formats.pop()
    if fmt != "parquet" and mapping.encoding.lower().replace("-", "") not in {"utf8", "ascii"}:
        raise ConfigError("Spark ETL reads text as UTF-8; convert the files or use Parquet")
    suffix = {"csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl", "parquet": ".parquet"}[fmt]
    headers = tuple(first_line(f) if fmt in ("csv", "tsv") else None for f in files)
    return InputPlan(
        kind="parquet" if fmt == "parquet" else "text",
        files=tuple(str(f) for f in files),
        uris=tuple(_uri(f) for f in files),
        headers=headers,
        suffix=suffix,
        mapping=mapping,
    )


def _data_file(p: Path) -> bool:
    if not p.is_file() or p.name.startswith((".", "_")):
        return False
    try:
        file_format(p)
    except ConfigError:
        return False
    return True


def _movielens_layout(root: Path) -> Layout | None:
    directory = root if root.is_dir() else root.parent
    for layout in LAYOUTS:
        if (directory / layout.ratings).exists() and (root.is_dir() or root.name == layout.ratings):
            return layout
    return None


def _movielens_plan(ratings: Path, layout: Layout) -> InputPlan:
    header = None
    if layout.separator is None:  # ratings.csv: header and separator as ``_read_fixed`` sees them
        top = first_line(ratings)
        first = top.split(sniff_delimiter(top), 1)[0].strip().strip('"').lstrip("\ufeff")
        header = None if first.lstrip("-").isdigit() else top
    return InputPlan(
        kind="movielens",
        files=(str(ratings),),
        uris=(_uri(ratings),),
        headers=(header,),
        suffix=Path(ratings.name.removesuffix(".gz")).suffix or ".txt",
        mapping=RATINGS_MAPPING,
        layout=layout,
        value_required=True,
    )


def _uri(path: Path) -> str:
    return str(path.absolute())


def read_raw_splits(spark: Any, plan: InputPlan) -> Any:
    """The input as a DataFrame with each row's file and split, in file order per split."""
    from pyspark.sql import functions as F

    if plan.kind == "parquet":
        df = spark.read.parquet(*plan.files)
    else:
        df = spark.read.text(list(plan.files))
    return df.select(
        "*",
        F.col("_metadata.file_path").alias(FILE_COLUMN),
        F.col("_metadata.file_block_start").alias(BLOCK_COLUMN),
    )


def split_first_lines(raw: Any) -> dict[tuple[str, int], int]:
    """1-based number of the first line (row) of every split, from a count per split."""
    counts = raw.groupBy(FILE_COLUMN, BLOCK_COLUMN).count().collect()
    out: dict[tuple[str, int], int] = {}
    per_file: dict[str, list[tuple[int, int]]] = {}
    for row in counts:
        per_file.setdefault(row[FILE_COLUMN], []).append(
            (int(row[BLOCK_COLUMN]), int(row["count"]))
        )
    for file, blocks in per_file.items():
        line = 1
        for start, count in sorted(blocks):
            out[(file, start)] = line
            line += count
    return out


def validated(spark: Any, plan: InputPlan) -> Any:
    """Every input row validated: canonical columns, or ``error`` with its file and line."""
    raw = read_raw_splits(spark, plan)
    first_lines = split_first_lines(raw)
    body = partial(validate_partition, plan=plan, first_lines=first_lines)
    from pyspark.sql.pandas.types import from_arrow_schema

    return raw.mapInArrow(body, from_arrow_schema(VALIDATED_SCHEMA))


def with_event_ids(good: Any, prefix: str | None) -> Any:
    """``event_id``: the file's own id where given, else derived as ``recstack ingest`` does."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ts = F.col("timestamp").cast("string")
    if prefix is not None:
        key = F.concat_ws(":", F.lit(prefix), "user_id", "item_id", ts)
    else:
        key = F.concat_ws("\x1f", "user_id", "item_id", "event_type", ts)
    window = Window.partitionBy("file_index", "id_key").orderBy("line")
    keyed = good.withColumn("id_key", key).withColumn("occurrence", F.row_number().over(window) - 1)
    if prefix is not None:
        derived = keyed.withColumn(
            "derived_id",
            F.when(F.col("occurrence") == 0, F.col("id_key")).otherwise(
                F.concat_ws(":", "id_key", F.col("occurrence").cast("string"))
            ),
        ).drop("id_key", "occurrence")
    else:
        schema = keyed.drop("id_key", "occurrence").schema.add("derived_id", "string")
        derived = keyed.mapInArrow(hex_id_batches, schema)
    return derived.withColumn(
        "event_id", F.coalesce(F.col("given_event_id"), F.col("derived_id"))
    ).drop("given_event_id", "derived_id")


def first_per_event_id(frame: Any) -> Any:
    """One row per event id: the first by file, then line (later repeats are dropped)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    window = Window.partitionBy("event_id").orderBy("file_index", "line")
    return frame.withColumn("_n", F.row_number().over(window)).filter("_n = 1").drop("_n")


def run_etl(
    spark: Any,
    source: Path | str,
    out: Path | str,
    *,
    mapping: ColumnMapping | None = None,
    on_error: str = "fail",
    buckets: int = DEFAULT_BUCKETS,
    progress: bool = False,
    max_reported: int = 1000,
) -> EtlResult:
    """Run the ETL job; the output directory is replaced only when the whole job succeeds.

    Raises:
        DataError: the first bad row (file, line, reason) when ``on_error="fail"``.
        ConfigError: unreadable input or bad options.
    """
    from pyspark.sql import functions as F

    if on_error not in ("fail", "skip"):
        raise ConfigError(f"on_error must be fail or skip, not {on_error!r}")
    if buckets < 1:
        raise ConfigError("buckets must be at least 1")
    start = time.perf_counter()
    plan = plan_input(source, mapping)
    prefix = "ml" if plan.kind == "movielens" else None
    with ProgressTask("spark etl", total=4, enabled=progress) as task, staged_output(out) as tmp:
        task.update(description="spark etl: validating rows")
        staging = tmp / "_validated"
        validated(spark, plan).write.parquet(str(staging))
        checked = spark.read.parquet(str(staging))
        task.advance()
        task.update(description="spark etl: collecting bad rows")
        bad = checked.filter(F.col("error").isNotNull())
        n_bad = bad.count()
        first_bad = bad.orderBy("file_index", "line").limit(max_reported).collect()
        errors = [
            DataError(r["error"], file=plan.files[r["file_index"]], line=r["line"])
            for r in first_bad
        ]
        if n_bad and on_error == "fail":
            raise errors[0]
        task.advance()
        task.update(description="spark etl: event ids and duplicates")
        good = checked.filter(F.col("error").isNull()).drop("error")
        n_valid = good.count()
        deduped = first_per_event_id(with_event_ids(good, prefix))
        final = deduped.withColumn(
            BUCKET_COLUMN, F.pmod(F.xxhash64("user_id"), F.lit(buckets)).cast("int")
        )
        data = tmp / "data"
        (
            final.repartition(buckets, BUCKET_COLUMN)
            .sortWithinPartitions("user_id", "timestamp", "file_index", "line")
            .select(*INTERACTION_COLUMNS, BUCKET_COLUMN)
            .write.partitionBy(BUCKET_COLUMN)
            .parquet(str(data))
        )
        task.advance()
        task.update(description="spark etl: finishing")
        rows = spark.read.parquet(str(data)).count()
        _move_up(data, tmp)
        _remove(staging)
        if errors:
            _write_bad_rows(tmp / BAD_ROWS_FILE, errors)
        result = EtlResult(Path(out), rows, n_bad, n_valid - rows, time.perf_counter() - start)
        result.errors = errors
        write_manifest(
            tmp,
            {
                "job": "etl",
                **result.to_dict(),
                "inputs": list(plan.files),
                "kind": plan.kind,
                "buckets": buckets,
                "bucket_column": BUCKET_COLUMN,
                "columns": list(INTERACTION_COLUMNS),
                "on_error": on_error,
            },
        )
        task.advance()
    return result


def _move_up(data: Path, tmp: Path) -> None:
    for child in data.iterdir():
        child.rename(tmp / child.name)
    data.rmdir()


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _write_bad_rows(path: Path, errors: list[DataError]) -> None:
    import json

    with path.open("w") as fh:
        for e in errors:
            fh.write(json.dumps({"file": e.file, "line": e.line, "reason": e.reason}) + "\n")


def read_canonical(spark: Any, directory: Path | str) -> Any:
    """The canonical interactions an ETL (or split) job wrote, as a DataFrame."""
    path = Path(directory)
    if not path.exists():
        raise ConfigError(f"not found: {path}")
    if not any(path.glob(f"{BUCKET_COLUMN}=*")) and not any(path.glob("*.parquet")):
        raise ConfigError(f"{path}: no Parquet data (run `recstack spark etl` first)")
    return spark.read.parquet(str(path))
