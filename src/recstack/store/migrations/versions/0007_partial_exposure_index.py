"""The exposure log's experiment index only over lists served in an experiment.

Every served list is logged, most of them outside any experiment; indexing those by
(experiment, arm, user) cost a random index page per list for no query (every reader of that
index asks for one experiment's rows, which a partial index ``WHERE experiment IS NOT NULL``
answers as before).

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

NAME, TABLE, COLUMNS = "ix_exposures_experiment_arm", "exposures", ["experiment", "arm", "user_id"]
IN_EXPERIMENT = sa.text("experiment IS NOT NULL")


def upgrade() -> None:
    op.drop_index(NAME, table_name=TABLE)
    op.create_index(
        NAME, TABLE, COLUMNS, sqlite_where=IN_EXPERIMENT, postgresql_where=IN_EXPERIMENT
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name=TABLE)
    op.create_index(NAME, TABLE, COLUMNS)
