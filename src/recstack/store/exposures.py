"""The exposure log (every served list) and the outcomes attributed to it.

Exposures arrive in batches from the server's background writer; outcomes when events that
follow a served list are posted. Per-arm, per-user figures are aggregated by the database
(``GROUP BY``), so analysing millions of exposures moves one row per user, not per exposure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recstack.store.backend import backend_of
from recstack.store.dbapi import driver_connection
from recstack.store.engine import read_transaction, write_transaction
from recstack.store.tables import exposures, outcomes

LOOKUP_CHUNK = 500  # ids per IN (...) list
EXPOSURE_COLUMNS = (
    "recommendation_id",
    "served_at",
    "user_id",
    "surface",
    "experiment",
    "arm",
    "model",
    "model_version",
    "items",
)
USER_COLUMNS = ["arm", "user_id", "exposures", "clicks", "conversions", "value"]


class ExposureStore:
    """Write and read exposures and outcomes; rows are plain dicts keyed by column name."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_exposures(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert exposures in one transaction (a repeated ``recommendation_id`` is skipped);
        returns how many were new.

        The server's writer calls this for every served list, so it runs on the driver
        connection with the items pre-encoded by orjson: SQLAlchemy's per-row JSON and type
        processing cost several times more than the insert itself.
        """
        if not rows:
            return 0
        mark = "?" if self.engine.dialect.name == "sqlite" else "%s"
        sql = (
            f"INSERT INTO exposures ({', '.join(EXPOSURE_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(EXPOSURE_COLUMNS))}) "
            "ON CONFLICT (recommendation_id) DO NOTHING"
        )
        values = [
            (*(r[c] for c in EXPOSURE_COLUMNS[:-1]), orjson.dumps(r["items"]).decode())
            for r in rows
        ]
        with write_transaction(self.engine) as conn:
            cursor = driver_connection(conn).cursor()
            cursor.executemany(sql, values)  # rowcount: the rows inserted, summed (both drivers)
            return max(cursor.rowcount, 0)

    def add_outcomes(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert attributed outcomes (idempotent by ``event_id``); returns how many were new."""
        if not rows:
            return 0
        insert = backend_of(self.engine).insert(outcomes).on_conflict_do_nothing()
        with write_transaction(self.engine) as conn:
            result = conn.execute(insert.returning(outcomes.c.id), [dict(r) for r in rows])
            return len(result.all())

    def find(self, recommendation_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored exposures with these ids, by id (missing ids are absent)."""
        ids = list(dict.fromkeys(recommendation_ids))
        found: dict[str, dict[str, Any]] = {}
        with read_transaction(self.engine) as conn:
            for start in range(0, len(ids), LOOKUP_CHUNK):
                chunk = ids[start : start + LOOKUP_CHUNK]
                query = sa.select(exposures).where(exposures.c.recommendation_id.in_(chunk))
                for row in conn.execute(query).mappings():
                    found[row["recommendation_id"]] = dict(row)
        return found

    def recent_for_users(self, user_ids: Iterable[str], since: float) -> list[dict[str, Any]]:
        """Exposures of these users served at or after ``since``, newest first."""
        users = list(dict.fromkeys(user_ids))
        rows: list[dict[str, Any]] = []
        with read_transaction(self.engine) as conn:
            for start in range(0, len(users), LOOKUP_CHUNK):
                chunk = users[start : start + LOOKUP_CHUNK]
                query = sa.select(exposures).where(
                    exposures.c.user_id.in_(chunk), exposures.c.served_at >= since
                )
                rows.extend(dict(r) for r in conn.execute(query).mappings())
        rows.sort(key=lambda r: r["served_at"], reverse=True)
        return rows

    def count(self, experiment: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(exposures)
        if experiment is not None:
            query = query.where(exposures.c.experiment == experiment)
        with read_transaction(self.engine) as conn:
            return int(conn.execute(query).scalar_one())

    def user_metrics(
        self,
        experiment: str,
        click_types: Sequence[str],
        conversion_types: Sequence[str],
        until: float | None = None,
    ) -> pd.DataFrame:
        """One row per (arm, user): exposures, clicks, conversions and conversion value summed
        over the experiment (up to ``until`` when given), in ``USER_COLUMNS``."""
        exp_query = (
            sa.select(
                exposures.c.arm,
                exposures.c.user_id,
                sa.func.count().label("exposures"),
            )
            .where(exposures.c.experiment == experiment, exposures.c.arm.is_not(None))
            .group_by(exposures.c.arm, exposures.c.user_id)
        )
        click = sa.case((outcomes.c.event_type.in_(list(click_types)), 1), else_=0)
        converted = outcomes.c.event_type.in_(list(conversion_types))
        conversion = sa.case((converted, 1), else_=0)
        value = sa.case((converted, sa.func.coalesce(outcomes.c.value, 0.0)), else_=0.0)
        out_query = (
            sa.select(
                outcomes.c.arm,
                outcomes.c.user_id,
                sa.func.sum(click).label("clicks"),
                sa.func.sum(conversion).label("conversions"),
                sa.func.sum(value).label("value"),
            )
            .where(outcomes.c.experiment == experiment)
            .group_by(outcomes.c.arm, outcomes.c.user_id)
        )
        if until is not None:
            exp_query = exp_query.where(exposures.c.served_at <= until)
            out_query = out_query.where(outcomes.c.timestamp <= until)
        with read_transaction(self.engine) as conn:
            shown = _frame(_raw(conn, exp_query), USER_COLUMNS[:3])
            acted = _frame(_raw(conn, out_query), ["arm", "user_id", *USER_COLUMNS[3:]])
        frame = shown.merge(acted, on=["arm", "user_id"], how="left")
        for column in USER_COLUMNS[2:]:
            frame[column] = frame[column].fillna(0).astype(np.float64)
        return frame[USER_COLUMNS]

    def time_range(self, experiment: str) -> tuple[float, float] | None:
        """First and last ``served_at`` of the experiment's exposures (None when none)."""
        query = sa.select(sa.func.min(exposures.c.served_at), sa.func.max(exposures.c.served_at))
        with read_transaction(self.engine) as conn:
            low, high = conn.execute(query.where(exposures.c.experiment == experiment)).one()
        return None if low is None else (float(low), float(high))

    def clicks_by_position(self, experiment: str, click_types: Sequence[str]) -> pd.DataFrame:
        """Clicks per (arm, position) of the clicked item in the served list."""
        query = (
            sa.select(outcomes.c.arm, outcomes.c.position, sa.func.count().label("clicks"))
            .where(
                outcomes.c.experiment == experiment,
                outcomes.c.event_type.in_(list(click_types)),
                outcomes.c.position.is_not(None),
            )
            .group_by(outcomes.c.arm, outcomes.c.position)
            .order_by(outcomes.c.arm, outcomes.c.position)
        )
        with read_transaction(self.engine) as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=["arm", "position", "clicks"])

    def logged(self, experiment: str, click_types: Sequence[str]) -> list[dict[str, Any]]:
        """Every exposure of the experiment (oldest first) with its clicked positions:
        ``{"recommendation_id", "user_id", "items", "clicked": [positions]}``."""
        query = (
            sa.select(exposures.c.recommendation_id, exposures.c.user_id, exposures.c["items"])
            .where(exposures.c.experiment == experiment)
            .order_by(exposures.c.id)
        )
        clicked = sa.select(outcomes.c.recommendation_id, outcomes.c.position).where(
            outcomes.c.experiment == experiment,
            outcomes.c.position.is_not(None),
            outcomes.c.event_type.in_(list(click_types)),
        )
        with read_transaction(self.engine) as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
            positions: dict[str, set[int]] = {}
            for rid, position in conn.execute(clicked):
                positions.setdefault(rid, set()).add(int(position))
        for row in rows:
            row["clicked"] = sorted(positions.get(row["recommendation_id"], ()))
        return rows

    def credits(self, experiment: str, click_types: Sequence[str]) -> pd.DataFrame:
        """Clicks per (user, arm credited): interleaving's per-user preference."""
        query = (
            sa.select(outcomes.c.user_id, outcomes.c.arm, sa.func.count().label("clicks"))
            .where(
                outcomes.c.experiment == experiment,
                outcomes.c.event_type.in_(list(click_types)),
            )
            .group_by(outcomes.c.user_id, outcomes.c.arm)
        )
        with read_transaction(self.engine) as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=["user_id", "arm", "clicks"])


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """Result rows as a frame, built column-wise: ``pd.DataFrame(rows)`` probes every
    SQLAlchemy ``Row`` for attributes and took 10 s for 200,000 rows."""
    values = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return pd.DataFrame(dict(zip(columns, values, strict=True)))


def _raw(conn: Any, query: Any) -> list[tuple[Any, ...]]:
    """The driver's own tuples (no per-row SQLAlchemy processing: the aggregates are plain
    numbers and strings)."""
    return conn.execute(query).cursor.fetchall()
