"""Monitoring: drift reports and promotion decisions.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drift_reports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(255), nullable=True),
        sa.Column("model_version", sa.Integer, nullable=True),
        sa.Column("drifted", sa.Boolean, nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("reference_start", sa.BigInteger, nullable=True),
        sa.Column("reference_end", sa.BigInteger, nullable=True),
        sa.Column("current_start", sa.BigInteger, nullable=True),
        sa.Column("current_end", sa.BigInteger, nullable=True),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
    )
    op.create_index("ix_drift_reports_created", "drift_reports", ["created_at"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("promoted", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("champion_version", sa.Integer, nullable=True),
        sa.Column("challenger_version", sa.Integer, nullable=True),
        sa.Column("drift_report_id", sa.String(32), nullable=True),
        sa.Column("record", sa.JSON, nullable=False),
    )
    op.create_index("ix_decisions_created", "decisions", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_decisions_created", table_name="decisions")
    op.drop_table("decisions")
    op.drop_index("ix_drift_reports_created", table_name="drift_reports")
    op.drop_table("drift_reports")
