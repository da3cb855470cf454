"""The exposure log's per-experiment and per-user indexes only over lists served in an
experiment.

Every served list is logged, most of them outside any experiment, and indexing those cost a
random index page per list in each index for no query: every reader of the (experiment, arm,
user) index asks for one experiment's rows, and the (user, time) index serves attribution,
which credits events to lists served in an experiment. Partial indexes ``WHERE experiment IS
NOT NULL`` answer both as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "exposures"
INDEXES = {
    "ix_exposures_experiment_arm": ["experiment", "arm", "user_id"],
    "ix_exposures_user_served": ["user_id", "served_at"],
}
IN_EXPERIMENT = sa.text("experiment IS NOT NULL")


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.drop_index(name, table_name=TABLE)
        op.create_index(
            name, TABLE, columns, sqlite_where=IN_EXPERIMENT, postgresql_where=IN_EXPERIMENT
        )


def downgrade() -> None:
    for name, columns in INDEXES.items():
        op.drop_index(name, table_name=TABLE)
        op.create_index(name, TABLE, columns)
