"""Shared fixtures: isolated settings, the store on SQLite and (when configured) PostgreSQL, Redis.

PostgreSQL and Redis tests run when ``RECSTACK_TEST_DATABASE_URL`` / ``RECSTACK_TEST_REDIS_URL``
are set (CI sets both); otherwise they are skipped with that reason. Each PostgreSQL test gets
its own schema, each Redis test its own key prefix, so parallel workers never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from recstack.settings import Settings

PG_URL = os.environ.get("RECSTACK_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("RECSTACK_TEST_REDIS_URL")


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings with a private home directory and the SQLite store."""
    return Settings(home=tmp_path / "home")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not PG_URL:
        pytest.skip("RECSTACK_TEST_DATABASE_URL not set: no PostgreSQL server to test against")
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    """Run a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store_settings(store_url, tmp_path) -> Settings:
    """Settings pointing at ``store_url`` (both backends)."""
    return Settings(home=tmp_path / "home", database_url=store_url)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis URL; keys under this test's prefix are deleted afterwards."""
    if not REDIS_URL:
        pytest.skip("RECSTACK_TEST_REDIS_URL not set: no Redis server to test against")
    yield REDIS_URL


@pytest.fixture
def redis_prefix(redis_url) -> Iterator[str]:
    import redis

    prefix = f"rstest:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()
