"""``recstack spark etl | split | train-als | score | store-scores``: the Spark jobs (extra
``spark``; ``store-scores`` needs no Spark).

Each command starts a SparkSession (``local[2]`` unless ``--master`` says otherwise, extra
settings by ``--conf key=value``), runs one job from ``recstack.distributed`` and prints a
one-line summary. Outputs are written whole or not at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recstack.cli.console import emit_json, out, warn
from recstack.cli.errors import user_errors
from recstack.cli.store_commands import MappingOption, OnError, OnErrorOption, _mapping
from recstack.settings import get_settings

spark_app = typer.Typer(
    help="Run ETL, splits, ALS training and batch scoring on Apache Spark (extra: spark).",
    no_args_is_help=True,
)

MasterOption = Annotated[
    str, typer.Option("--master", help="Spark master URL: local[N], spark://..., yarn, k8s://...")
]
ConfOption = Annotated[
    list[str], typer.Option("--conf", help="Extra Spark setting key=value (repeatable).")
]
SHOWN_BAD_ROWS = 5


def _session(master: str, conf: list[str]) -> Any:
    from recstack.distributed.session import parse_conf, spark_session

    return spark_session(master, extra=parse_conf(conf))


@spark_app.command("etl")
def etl_command(
    source: Annotated[
        Path, typer.Argument(help="MovieLens directory, or a CSV/JSONL/Parquet file or directory.")
    ],
    dest: Annotated[Path, typer.Option("--out", help="Output directory (replaced whole).")],
    mapping: MappingOption = None,
    on_error: OnErrorOption = OnError.fail,
    buckets: Annotated[int, typer.Option(help="Number of user buckets (partitions).")] = 16,
    master: MasterOption = "local[2]",
    conf: ConfOption = [],  # noqa: B006 - typer reads the default
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Raw interactions to canonical Parquet partitioned by user bucket, deduplicated."""
    with user_errors():
        from recstack.distributed.etl import run_etl

        spark = _session(master, conf)
        columns = _mapping(mapping) if mapping is not None else None
        result = run_etl(
            spark, source, dest, mapping=columns, on_error=on_error.value, buckets=buckets,
            progress=True,
        )  # fmt: skip
    if as_json:
        emit_json({**result.to_dict(), "errors": [str(e) for e in result.errors]})
        return
    for error in result.errors[:SHOWN_BAD_ROWS]:
        warn(f"skipped {error}")
    out().print(
        f"wrote {result.rows:,} interactions to {result.out} · {result.bad_rows:,} bad rows · "
        f"{result.duplicates:,} duplicates dropped · {result.seconds:.1f}s"
    )


@spark_app.command("split")
def split_command(
    source: Annotated[Path, typer.Argument(help="ETL output directory.")],
    dest: Annotated[Path, typer.Option("--out", help="Output directory (train/ and test/).")],
    protocol: Annotated[str, typer.Option(help="stratified, temporal or leave_last.")] = (
        "stratified"
    ),
    ratio: Annotated[float, typer.Option(help="Train share (stratified, temporal).")] = 0.75,
    seed: Annotated[int, typer.Option(help="Seed of the stratified split.")] = 42,
    n: Annotated[int, typer.Option("--n", help="Test rows per user (leave_last).")] = 1,
    master: MasterOption = "local[2]",
    conf: ConfOption = [],  # noqa: B006
) -> None:
    """Split canonical Parquet into train and test as the single-machine splits do."""
    with user_errors():
        from recstack.distributed.splits import run_split

        options: dict[str, Any] = {
            "stratified": {"ratio": ratio, "seed": seed},
            "temporal": {"ratio": ratio},
            "leave_last": {"n": n},
        }.get(protocol, {})
        spark = _session(master, conf)
        counts = run_split(spark, source, dest, protocol, progress=True, **options)
    out().print(f"train {counts['train']:,} · test {counts['test']:,} rows in {dest}")


@spark_app.command("train-als")
def train_als_command(
    source: Annotated[Path, typer.Argument(help="ETL output directory (canonical Parquet).")],
    promote: Annotated[
        str | None, typer.Option("--promote", help="Alias to point at the new version.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
    factors: Annotated[int, typer.Option(help="Latent dimensions.")] = 64,
    regularization: Annotated[
        float | None,
        typer.Option(
            help="recstack's lambda (default: as `recstack train`); mapped onto regParam."
        ),
    ] = None,
    reg_param: Annotated[
        float | None, typer.Option("--reg-param", help="MLlib's regParam as is (no mapping).")
    ] = None,
    alpha: Annotated[
        float | None, typer.Option(help="Confidence slope (default: as `recstack train`).")
    ] = None,
    iterations: Annotated[int, typer.Option(help="ALS sweeps.")] = 15,
    seed: Annotated[int, typer.Option(help="Seed of the factor initialisation.")] = 0,
    master: MasterOption = "local[2]",
    conf: ConfOption = [],  # noqa: B006
) -> None:
    """Train ALS with Spark MLlib and register it as a standard recstack ALS model."""
    with user_errors():
        from recstack.distributed.register import train_and_register_spark

        spark = _session(master, conf)
        params = {
            "factors": factors,
            "regularization": regularization,
            "alpha": alpha,
            "iterations": iterations,
            "random_state": seed,
        }
        version = train_and_register_spark(
            get_settings(), spark, source, params=params, reg_param=reg_param,
            promote=promote, name=name, progress=True,
        )  # fmt: skip
    aliases = f" ({', '.join(version.aliases)})" if version.aliases else ""
    out().print(f"registered {version.name} version {version.version}{aliases}")


@spark_app.command("score")
def score_command(
    source: Annotated[Path, typer.Argument(help="ETL output directory (histories to exclude).")],
    dest: Annotated[Path, typer.Option("--out", help="Output directory (Parquet).")],
    k: Annotated[int, typer.Option("-k", "--k", help="Items per user.")] = 10,
    alias: Annotated[str, typer.Option(help="Registry alias of the model.")] = "champion",
    version: Annotated[int | None, typer.Option(help="Registry version instead.")] = None,
    name: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
    artifact: Annotated[
        Path | None, typer.Option(help="A saved model directory instead of the registry.")
    ] = None,
    into_store: Annotated[
        bool,
        typer.Option(
            "--into-store",
            help="Also load the lists into the store as a set a server slot can serve "
            "(`precomputed:SET`); replaces the set of that name atomically.",
        ),
    ] = False,
    set_name: Annotated[
        str | None,
        typer.Option(
            "--set-name",
            help="Name of the stored list set (default: the registered model name, or the "
            "artifact directory's name).",
        ),
    ] = None,
    master: MasterOption = "local[2]",
    conf: ConfOption = [],  # noqa: B006
) -> None:
    """Top-k recommendations for every user the model knows, to Parquet (and the store)."""
    with user_errors():
        from recstack.distributed.etl import read_canonical
        from recstack.distributed.score import score_all_users
        from recstack.models.base import Recommender

        settings = get_settings()
        described: dict[str, Any] = {"k": k}
        if artifact is not None:
            model = Recommender.load(artifact, mmap=False)
            default_set = artifact.resolve().name
            described["artifact"] = str(artifact)
        else:
            from recstack.registry.mlflow_registry import ModelRegistry

            model, info = ModelRegistry(settings).load_with_info(name, alias, version)
            default_set = info.name
            described.update(registered_name=info.name, version=int(info.version))
        spark = _session(master, conf)
        rows = score_all_users(
            spark, model, read_canonical(spark, source), dest, k=k,
            weighting=settings.weighting(), progress=True,
        )  # fmt: skip
        stored = None
        if into_store:
            from recstack.store import Store
            from recstack.workflows.precomputed import store_scores

            with Store.from_settings(settings) as store:
                stored = store_scores(
                    store, dest, set_name or default_set, source=described, progress=True
                )
    out().print(f"wrote {rows:,} recommendations ({len(model.users):,} users, k={k}) to {dest}")
    if stored is not None:
        out().print(
            f"stored list set {stored.name!r} (generation {stored.generation}, "
            f"{stored.n_users:,} users); serve it from a slot as precomputed:{stored.name}"
        )


@spark_app.command("store-scores")
def store_scores_command(
    scores: Annotated[Path, typer.Argument(help="A `spark score` output directory (Parquet).")],
    set_name: Annotated[str, typer.Option("--set-name", help="Name of the stored list set.")],
) -> None:
    """Load existing top-k Parquet into the store as a list set (no Spark needed); replaces
    the set of that name atomically. Serve it from a slot as `precomputed:SET`."""
    with user_errors():
        from recstack.store import Store
        from recstack.workflows.precomputed import store_scores

        with Store.from_settings(get_settings()) as store:
            stored = store_scores(store, scores, set_name, progress=True)
    out().print(
        f"stored list set {stored.name!r} (generation {stored.generation}, "
        f"{stored.n_users:,} users, {stored.n_rows:,} rows); serve it as precomputed:{stored.name}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``spark`` group to the ``recstack`` app."""
    app.add_typer(spark_app, name="spark")
