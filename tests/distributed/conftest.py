"""One local Spark session for every Spark test (starting a JVM takes seconds)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from tests.serving.conftest import planted, serve  # noqa: F401 - the serving tests' app fixtures


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17 (java not on PATH)")
    from recstack.distributed.session import spark_session

    session = spark_session(
        "local[2]",
        app_name="recstack-tests",
        extra={"spark.sql.shuffle.partitions": "2", "spark.driver.memory": "1g"},
    )
    yield session
    session.stop()
