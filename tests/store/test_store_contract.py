"""The store contract (``recstack.testing.store_contract``) on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from recstack.testing.store_contract import StoreContract


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def store_url(self, tmp_path) -> str:
        return f"sqlite:///{tmp_path / 'contract.db'}"


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store_url(self, pg_url) -> str:
        """A fresh schema per test (see ``pg_url``); skipped without a server."""
        return pg_url
