"""SQLite: each user's events through an index in a side file, not ``ix_interactions_user_ts``.

Keeping that index in every acknowledged write cost about three quarters of an event batch's
time on a large store; ``store.user_index`` explains the side file and the mark this adds.
The side file is built by ``Store.migrate`` after the upgrade (a sorted pass over the events),
not here: it is a database of its own. PostgreSQL keeps the index.

Revision ID: 0008
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARK = "user_index_mark"


def upgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    op.drop_index("ix_interactions_user_ts", table_name="interactions")
    op.execute(
        f"CREATE TABLE {MARK} (one INTEGER PRIMARY KEY CHECK (one = 1), upto INTEGER NOT NULL)"
    )
    op.execute(f"INSERT INTO {MARK} VALUES (1, 0)")


def downgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    op.execute(f"DROP TABLE {MARK}")
    op.create_index("ix_interactions_user_ts", "interactions", ["user_id", "timestamp"])
