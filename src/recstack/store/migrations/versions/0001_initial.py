"""Initial schema: users, items, interactions, api_keys (as in recstack.store.tables).

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Event ids compare bytewise on PostgreSQL (cheaper unique index than a locale collation).
EVENT_ID = sa.String(255).with_variant(postgresql.VARCHAR(255, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("external_id", sa.String(255), nullable=False, unique=True),
        sa.Column("attributes", sa.JSON, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "items",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("external_id", sa.String(255), nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=True),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("attributes", sa.JSON, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default="1"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "interactions",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("event_id", EVENT_ID, nullable=False, unique=True),
        sa.Column("user_id", PK, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("item_id", PK, sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("context", sa.JSON, nullable=True),
    )
    op.create_index("ix_interactions_user_ts", "interactions", ["user_id", "timestamp"])
    op.create_table(
        "api_keys",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_interactions_user_ts", table_name="interactions")
    op.drop_table("interactions")
    op.drop_table("items")
    op.drop_table("users")
