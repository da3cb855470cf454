"""Experiments: definitions, the exposure log of served lists and outcomes attributed to them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
EVENT_ID = sa.String(255).with_variant(postgresql.VARCHAR(255, collation="C"), "postgresql")


def _now() -> sa.Column:
    return sa.func.now()


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("namespace", sa.String(64), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_table(
        "exposures",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("recommendation_id", sa.String(64), nullable=False, unique=True),
        sa.Column("served_at", sa.Float, nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("surface", sa.String(16), nullable=False),
        sa.Column("experiment", sa.String(64), nullable=True),
        sa.Column("arm", sa.String(64), nullable=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=True),
        sa.Column("items", sa.JSON, nullable=False),
    )
    op.create_index("ix_exposures_experiment_arm", "exposures", ["experiment", "arm", "user_id"])
    op.create_index("ix_exposures_user_served", "exposures", ["user_id", "served_at"])
    op.create_table(
        "outcomes",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("event_id", EVENT_ID, nullable=False, unique=True),
        sa.Column("recommendation_id", sa.String(64), nullable=False),
        sa.Column("experiment", sa.String(64), nullable=True),
        sa.Column("arm", sa.String(64), nullable=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("item_id", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("position", sa.Integer, nullable=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_outcomes_experiment_arm", "outcomes", ["experiment", "arm", "user_id"])
    op.create_index("ix_outcomes_recommendation", "outcomes", ["recommendation_id"])


def downgrade() -> None:
    op.drop_table("outcomes")
    op.drop_table("exposures")
    op.drop_table("experiments")
