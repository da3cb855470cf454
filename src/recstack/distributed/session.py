"""The SparkSession every recstack Spark job runs in.

PySpark is an optional extra: it is imported here, inside functions, so ``import recstack``
never needs a JVM, and a missing installation names the extra that brings it. The defaults
size a session for a small machine (two cores, a few GiB for the driver): ``local[2]``, few
shuffle partitions, Arrow transfers between the JVM and Python. Any master URL works
(``spark://host:7077``, ``yarn``, ``k8s://...``); on a cluster, executor sizes come from the
cluster's own configuration or ``--conf`` style ``extra`` settings.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from recstack.errors import ConfigError, MissingExtraError

DEFAULT_MASTER = "local[2]"
DEFAULT_CONF: dict[str, str] = {
    "spark.driver.memory": "4g",
    "spark.sql.shuffle.partitions": "8",
    "spark.default.parallelism": "4",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "50000",
    "spark.sql.files.maxPartitionBytes": str(64 << 20),
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}


def require_pyspark() -> Any:
    """The ``pyspark`` module, or a ``MissingExtraError`` naming ``recstack[spark]``."""
    try:
        import pyspark
    except ImportError as exc:
        raise MissingExtraError("pyspark", "spark") from exc
    return pyspark


def spark_session(
    master: str | None = None,
    app_name: str = "recstack",
    extra: Mapping[str, str] | None = None,
) -> Any:
    """Get (or create) the SparkSession for ``master`` (default ``local[2]``).

    ``extra`` settings override the defaults. The Python workers run the same interpreter as
    the driver, so they see the same recstack. An existing active session is reused as it is
    (Spark allows one per JVM).
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master or DEFAULT_MASTER).appName(app_name)
    conf = dict(DEFAULT_CONF)
    conf["spark.local.dir"] = os.path.join(tempfile.gettempdir(), "recstack-spark")
    conf.update(extra or {})
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - the JVM failing to start is a setup problem
        raise ConfigError(
            f"could not start Spark (master {master or DEFAULT_MASTER!r}): {exc}; "
            "Spark 4 needs Java 17 or later on PATH or in JAVA_HOME"
        ) from exc
    session.sparkContext.setLogLevel("ERROR")
    return session


def parse_conf(pairs: list[str]) -> dict[str, str]:
    """``key=value`` strings (the CLI's ``--conf``) as a dict.

    >>> parse_conf(["spark.driver.memory=8g", "spark.sql.shuffle.partitions=64"])
    {'spark.driver.memory': '8g', 'spark.sql.shuffle.partitions': '64'}
    """
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--conf expects key=value, not {pair!r}")
        out[key.strip()] = value.strip()
    return out
