"""Experiment definitions in the store: one row per experiment, the definition as JSON.

Status changes are compare-and-set (``UPDATE ... WHERE status = expected``) inside one write
transaction, so two workers starting the same experiment cannot both succeed and a failure
leaves the row as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from recstack.errors import ConflictError, NotFoundError
from recstack.store.engine import read_transaction, write_transaction
from recstack.store.tables import experiments

Definition = dict[str, Any]


class ExperimentStore:
    """Create, read and change experiment definitions (plain dicts; validation is the
    caller's, in ``recstack.experiments.config``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, definition: Definition) -> Definition:
        """Store a new experiment; ``ConflictError`` when the key exists."""
        row = {
            "key": definition["key"],
            "status": definition["status"],
            "namespace": definition["namespace"],
            "definition": definition,
        }
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(sa.insert(experiments).values(**row))
        except IntegrityError:
            raise ConflictError(f"an experiment with key {definition['key']!r} exists") from None
        return definition

    def get(self, key: str) -> Definition | None:
        with read_transaction(self.engine) as conn:
            found = conn.execute(
                sa.select(experiments.c.definition).where(experiments.c.key == key)
            ).scalar_one_or_none()
        return dict(found) if found is not None else None

    def list(self, status: str | None = None) -> list[Definition]:
        """Every experiment (optionally of one status), oldest first."""
        query = sa.select(experiments.c.definition).order_by(experiments.c.id)
        if status is not None:
            query = query.where(experiments.c.status == status)
        with read_transaction(self.engine) as conn:
            return [dict(d) for d in conn.execute(query).scalars()]

    def change(
        self,
        key: str,
        expected: tuple[str, ...],
        update: Callable[[Definition, list[Definition]], Definition],
    ) -> Definition:
        """Apply ``update(definition, running_others)`` when the status is one of ``expected``.

        ``update`` may raise to refuse the change: nothing is written then. Running
        experiments are read in the same transaction, so a namespace range is allocated
        against what is running at the moment of the commit.
        """
        with write_transaction(self.engine) as conn:
            current = conn.execute(
                sa.select(experiments.c.definition, experiments.c.status).where(
                    experiments.c.key == key
                )
            ).one_or_none()
            if current is None:
                raise NotFoundError(f"unknown experiment {key!r}")
            definition, status = dict(current[0]), current[1]
            if status not in expected:
                raise ConflictError(
                    f"experiment {key!r} is {status}; this needs it " + " or ".join(expected)
                )
            others = [
                dict(d)
                for d in conn.execute(
                    sa.select(experiments.c.definition).where(
                        experiments.c.status == "running", experiments.c.key != key
                    )
                ).scalars()
            ]
            new = update(definition, others)
            done = conn.execute(
                sa.update(experiments)
                .where(experiments.c.key == key, experiments.c.status == status)
                .values(
                    status=new["status"],
                    namespace=new["namespace"],
                    definition=new,
                    updated_at=sa.func.now(),
                )
            )
            if done.rowcount != 1:
                raise ConflictError(f"experiment {key!r} changed meanwhile; try again")
        return new
