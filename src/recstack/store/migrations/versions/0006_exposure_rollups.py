"""Experiment rollups: per-(experiment, arm, user) sums of exposures and outcomes, backfilled.

Revision ID: 0006
Revises: 0002 (the exposure and outcome logs it sums, so it extends that branch)
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same sums the writers add batch by batch (``store.exposures``), over the rows logged so far.
BACKFILL = (
    """
    INSERT INTO exposure_rollups (experiment, arm, user_id, exposures)
    SELECT experiment, arm, user_id, count(*) FROM exposures
    WHERE experiment IS NOT NULL AND arm IS NOT NULL AND user_id IS NOT NULL
    GROUP BY experiment, arm, user_id
    """,
    """
    INSERT INTO outcome_rollups (experiment, arm, user_id, event_type, events, value)
    SELECT experiment, arm, user_id, event_type, count(*), sum(coalesce(value, 0.0)) FROM outcomes
    WHERE experiment IS NOT NULL AND arm IS NOT NULL
    GROUP BY experiment, arm, user_id, event_type
    """,
    """
    INSERT INTO position_rollups (experiment, arm, event_type, position, events)
    SELECT experiment, arm, event_type, position, count(*) FROM outcomes
    WHERE experiment IS NOT NULL AND arm IS NOT NULL AND position IS NOT NULL
    GROUP BY experiment, arm, event_type, position
    """,
)


def upgrade() -> None:
    op.create_table(
        "exposure_rollups",
        sa.Column("experiment", sa.String(64), primary_key=True),
        sa.Column("arm", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("exposures", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "outcome_rollups",
        sa.Column("experiment", sa.String(64), primary_key=True),
        sa.Column("arm", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("event_type", sa.String(32), primary_key=True),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "position_rollups",
        sa.Column("experiment", sa.String(64), primary_key=True),
        sa.Column("arm", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(32), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("position_rollups")
    op.drop_table("outcome_rollups")
    op.drop_table("exposure_rollups")
