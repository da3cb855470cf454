"""Bring a store's schema to the newest Alembic revision, so users never run alembic by hand."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from recstack.store.backend import backend_of
from recstack.store.engine import write_transaction

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """Alembic configuration pointing at the packaged migration scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revisions() -> frozenset[str]:
    """The newest revisions shipped with this version of recstack.

    Each feature's tables are a branch off the initial schema (experiments, monitoring, ...), so
    there may be several heads; a store is current when it is at all of them.
    """
    heads = frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())
    assert heads, "no migrations found"
    return heads


def current_revisions(engine: Engine) -> frozenset[str]:
    """The revisions the database is at (empty for an empty database)."""
    with engine.connect() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


def upgrade_to_head(engine: Engine) -> None:
    """Run every pending migration in one transaction (a no-op when already at every head)."""
    if current_revisions(engine) == head_revisions():
        return
    cfg = alembic_config()
    with write_transaction(engine) as conn:
        backend_of(conn).lock_for_migration(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
