"""Alembic environment for the store.

``recstack.store.migrate`` passes an open connection in ``config.attributes["connection"]`` so
migrations run inside the caller's transaction; the ``alembic`` command line (with
``alembic.ini`` here) falls back to the URL in ``sqlalchemy.url`` or ``RECSTACK_DATABASE_URL``.
"""

from __future__ import annotations

from alembic import context

from recstack.store.tables import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    from recstack.settings import Settings

    return config.get_main_option("sqlalchemy.url") or Settings().store_url


def run_migrations_offline() -> None:
    """Emit the SQL to a script instead of running it."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the caller's connection, or one opened from the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    from recstack.store.engine import create_store_engine, write_transaction

    engine = create_store_engine(_url())
    try:
        with write_transaction(engine) as conn:
            context.configure(
                connection=conn, target_metadata=target_metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
