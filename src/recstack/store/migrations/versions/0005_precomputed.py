"""Precomputed recommendation lists: named sets written by batch scoring, served as a slot.

Revision ID: 0005
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "precomputed_generations",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_precomputed_generations_name", "precomputed_generations", ["name"])
    op.create_table(
        "precomputed_sets",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("n_users", sa.BigInteger, nullable=False),
        sa.Column("n_rows", sa.BigInteger, nullable=False),
        sa.Column("source", sa.JSON, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "precomputed_lists",
        sa.Column("generation", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("items", sa.Text, nullable=False),
        sa.Column("scores", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("precomputed_lists")
    op.drop_table("precomputed_sets")
    op.drop_index("ix_precomputed_generations_name", table_name="precomputed_generations")
    op.drop_table("precomputed_generations")
