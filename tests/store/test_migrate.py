"""Migrations: create exactly the tables of ``recstack.store.tables``, idempotently."""

from __future__ import annotations

import sqlalchemy as sa

from recstack.store import Store
from recstack.store.migrate import current_revisions, head_revisions
from recstack.store.tables import metadata


def test_migrate_creates_the_declared_tables_and_is_idempotent(store_url) -> None:
    store = Store(store_url)
    assert current_revisions(store.engine) == frozenset()
    store.migrate()
    store.migrate()  # a second run changes nothing and does not fail
    assert current_revisions(store.engine) == head_revisions()
    inspector = sa.inspect(store.engine)
    tables = set(inspector.get_table_names()) - {"alembic_version"}
    sqlite = store.database == "sqlite"
    assert tables == set(metadata.tables) | ({"user_index_mark"} if sqlite else set())
    for name, table in metadata.tables.items():
        columns = {c["name"]: c for c in inspector.get_columns(name)}
        assert set(columns) == {c.name for c in table.columns}, name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (name, column.name)
    indexes = {i["name"] for i in inspector.get_indexes("interactions")}
    assert ("ix_interactions_user_ts" in indexes) != sqlite  # SQLite's is a side file
    foreign = {
        (f["constrained_columns"][0], f["referred_table"])
        for f in inspector.get_foreign_keys("interactions")
    }
    assert foreign == {("user_id", "users"), ("item_id", "items")}
    store.close()


def test_from_settings_creates_home_and_migrates(store_settings) -> None:
    store = Store.from_settings(store_settings)
    assert current_revisions(store.engine) == head_revisions()
    assert store.stats()["interactions"] == 0
    if store.database == "sqlite":
        assert (store_settings.home / "recstack.db").exists() is False  # database_url wins
    store.close()


def test_default_sqlite_store_lives_under_home(settings) -> None:
    store = Store.from_settings(settings)
    assert (settings.home / "recstack.db").exists()
    assert store.database == "sqlite"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()


def test_store_doctest() -> None:
    import doctest

    import recstack.store.store

    assert doctest.testmod(recstack.store.store).failed == 0
