"""The exposure log (every served list) and the outcomes attributed to it.

Exposures arrive in batches from the server's background writer; outcomes when events that
follow a served list are posted. Each write also adds its rows to per-(experiment, arm, user)
rollups in the same transaction, so an experiment's results read one row per user however many
exposures were logged, and the rollups never disagree with the raw rows. ``from_log=True``
recomputes the same figures from the raw rows (``GROUP BY`` over every exposure), as do cuts
at an earlier time (``until``), which the rollups cannot answer.
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
from recstack.store.tables import (
    exposure_rollups,
    exposures,
    outcome_rollups,
    outcomes,
    position_rollups,
)

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
        """Insert exposures in one transaction (a repeated ``recommendation_id`` is skipped)
        and add the new ones to ``exposure_rollups``; returns how many were new.

        The server's writer calls this for every served list, so it runs on the driver
        connection with the items pre-encoded by orjson: SQLAlchemy's per-row JSON and type
        processing cost several times more than the insert itself.
        """
        if not rows:
            return 0
        values = [
            (*(r[c] for c in EXPOSURE_COLUMNS[:-1]), orjson.dumps(r["items"]).decode())
            for r in rows
        ]
        with write_transaction(self.engine) as conn:
            cursor = driver_connection(conn).cursor()
            if self.engine.dialect.name == "sqlite":
                return _add_exposures_sqlite(cursor, values)
            return _add_exposures_postgres(cursor, values)

    def add_outcomes(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert attributed outcomes (idempotent by ``event_id``) and add the new ones to
        ``outcome_rollups`` and ``position_rollups``; returns how many were new."""
        if not rows:
            return 0
        backend = backend_of(self.engine)
        insert = backend.insert(outcomes).on_conflict_do_nothing()
        added = insert.returning(
            outcomes.c.experiment,
            outcomes.c.arm,
            outcomes.c.user_id,
            outcomes.c.event_type,
            outcomes.c.value,
            outcomes.c.position,
        )
        with write_transaction(self.engine) as conn:
            new = conn.execute(added, [dict(r) for r in rows]).all()
            _roll_up_outcomes(conn, backend, new)
            return len(new)

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

    def latest_showing(
        self, pairs: Iterable[tuple[str, str]], since: float
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """For each ``(user_id, item_id)``: that user's latest exposure in an experiment
        served at or after ``since`` that showed the item (absent when none did). Lists served
        outside experiments are left out: no analysis reads their outcomes, and the per-user
        index holds only experiment lists.

        While an experiment runs, every event posted without a ``recommendation_id`` asks
        this, and most such events are of items no list showed: the database tests each of the
        user's lists in the window for the item's JSON text and returns only the newest list
        that names it, so a user with hundreds of lists a day costs a scan inside the database,
        not hundreds of rows carried to Python. The query runs on the driver's cursor: building
        and caching a SQLAlchemy statement cost more than the indexed read itself.
        """
        wanted = list(dict.fromkeys(pairs))
        found: dict[tuple[str, str], dict[str, Any]] = {}
        decoded: dict[str, list[Any]] = {}  # items of each list found, decoded once
        sqlite = self.engine.dialect.name == "sqlite"
        with read_transaction(self.engine) as conn:
            cursor = driver_connection(conn).cursor()
            for start in range(0, len(wanted), LOOKUP_CHUNK):
                chunk = wanted[start : start + LOOKUP_CHUNK]
                needles = [_item_needles(item) for _, item in chunk]
                if sqlite:
                    values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                    params = [
                        v for (u, i), n in zip(chunk, needles, strict=True) for v in (u, i, *n)
                    ]
                    cursor.execute(_LATEST_SHOWING_SQLITE.format(values=values), (*params, since))
                else:
                    columns = [list(c) for c in zip(*chunk, strict=True)]
                    columns += [list(c) for c in zip(*needles, strict=True)]
                    cursor.execute(_LATEST_SHOWING_POSTGRES, (*columns, since))
                for user, item, rid, served_at, experiment, arm, text in cursor.fetchall():
                    if rid not in decoded:
                        decoded[rid] = orjson.loads(text)
                    found[(user, item)] = {
                        "recommendation_id": rid,
                        "user_id": user,
                        "served_at": served_at,
                        "experiment": experiment,
                        "arm": arm,
                        "items": decoded[rid],
                    }
        return found

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
        *,
        from_log: bool = False,
    ) -> pd.DataFrame:
        """One row per (arm, user), ordered by arm and user: exposures, clicks, conversions and
        conversion value summed over the experiment, in ``USER_COLUMNS``.

        Read from the rollups (one row per user and event type), or from the raw rows with
        ``from_log`` or a cut at ``until``.
        """
        if until is not None or from_log:
            shown_query, acted_query = self._log_queries(
                experiment, click_types, conversion_types, until
            )
        else:
            shown_query, acted_query = self._rollup_queries(
                experiment, click_types, conversion_types
            )
        with read_transaction(self.engine) as conn:
            shown = _frame(_raw(conn, shown_query), USER_COLUMNS[:3])
            acted = _frame(_raw(conn, acted_query), ["arm", "user_id", *USER_COLUMNS[3:]])
        frame = shown.merge(acted, on=["arm", "user_id"], how="left")
        for column in USER_COLUMNS[2:]:
            frame[column] = frame[column].fillna(0).astype(np.float64)
        return frame[USER_COLUMNS]

    @staticmethod
    def _log_queries(
        experiment: str,
        click_types: Sequence[str],
        conversion_types: Sequence[str],
        until: float | None,
    ) -> tuple[Any, Any]:
        exp_query = (
            sa.select(
                exposures.c.arm,
                exposures.c.user_id,
                sa.func.count().label("exposures"),
            )
            .where(
                exposures.c.experiment == experiment,
                exposures.c.arm.is_not(None),
                exposures.c.user_id.is_not(None),  # a user without an id is never assigned
            )
            .group_by(exposures.c.arm, exposures.c.user_id)
            .order_by(exposures.c.arm, exposures.c.user_id)
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
        return exp_query, out_query

    @staticmethod
    def _rollup_queries(
        experiment: str, click_types: Sequence[str], conversion_types: Sequence[str]
    ) -> tuple[Any, Any]:
        """The same two frames from the rollups: a key-range scan of each (the outcome rollup
        holds one row per user and event type, summed here into clicks and conversions)."""
        r, o = exposure_rollups, outcome_rollups
        exp_query = (
            sa.select(r.c.arm, r.c.user_id, r.c.exposures)
            .where(r.c.experiment == experiment)
            .order_by(r.c.arm, r.c.user_id)
        )
        converted = o.c.event_type.in_(list(conversion_types))
        out_query = (
            sa.select(
                o.c.arm,
                o.c.user_id,
                sa.func.sum(sa.case((o.c.event_type.in_(list(click_types)), o.c.events), else_=0)),
                sa.func.sum(sa.case((converted, o.c.events), else_=0)),
                sa.func.sum(sa.case((converted, o.c.value), else_=0.0)),
            )
            .where(o.c.experiment == experiment)
            .group_by(o.c.arm, o.c.user_id)
        )
        return exp_query, out_query

    def time_range(self, experiment: str) -> tuple[float, float] | None:
        """First and last ``served_at`` of the experiment's exposures (None when none)."""
        query = sa.select(sa.func.min(exposures.c.served_at), sa.func.max(exposures.c.served_at))
        with read_transaction(self.engine) as conn:
            low, high = conn.execute(query.where(exposures.c.experiment == experiment)).one()
        return None if low is None else (float(low), float(high))

    def clicks_by_position(
        self, experiment: str, click_types: Sequence[str], *, from_log: bool = False
    ) -> pd.DataFrame:
        """Clicks per (arm, position) of the clicked item in the served list (from
        ``position_rollups``, or the raw outcomes with ``from_log``)."""
        if from_log:
            query = (
                sa.select(outcomes.c.arm, outcomes.c.position, sa.func.count().label("clicks"))
                .where(
                    outcomes.c.experiment == experiment,
                    outcomes.c.arm.is_not(None),
                    outcomes.c.event_type.in_(list(click_types)),
                    outcomes.c.position.is_not(None),
                )
                .group_by(outcomes.c.arm, outcomes.c.position)
                .order_by(outcomes.c.arm, outcomes.c.position)
            )
        else:
            p = position_rollups
            query = (
                sa.select(
                    p.c.arm,
                    p.c.position,
                    sa.cast(sa.func.sum(p.c.events), sa.BigInteger).label("clicks"),
                )
                .where(p.c.experiment == experiment, p.c.event_type.in_(list(click_types)))
                .group_by(p.c.arm, p.c.position)
                .order_by(p.c.arm, p.c.position)
            )
        with read_transaction(self.engine) as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=["arm", "position", "clicks"])

    def logged(self, experiment: str, click_types: Sequence[str]) -> list[dict[str, Any]]:
        """Every exposure of the experiment (oldest first) with its clicked positions:
        ``{"recommendation_id", "served_at", "user_id", "items", "clicked": [positions]}``."""
        query = (
            sa.select(
                exposures.c.recommendation_id,
                exposures.c.served_at,
                exposures.c.user_id,
                exposures.c["items"],
            )
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


_INSERT_EXPOSURES = (
    f"INSERT INTO exposures ({', '.join(EXPOSURE_COLUMNS)}) "
    f"VALUES ({', '.join(['?'] * len(EXPOSURE_COLUMNS))}) "
    "ON CONFLICT (recommendation_id) DO NOTHING"
)
# The rows above ``id > ?`` are exactly this transaction's: a SQLite write transaction holds
# the database's write lock from BEGIN IMMEDIATE on, and new rowids exceed the largest one.
# NOT INDEXED keeps the planner on that rowid range: left to itself it reads the whole
# (experiment, arm, user) index to skip the GROUP BY sort, so every flush cost as much as the
# experiment had logged (11 ms at 106K lists against 0.2 ms for the batch's rows).
_ROLL_UP_NEW_EXPOSURES = """
    INSERT INTO exposure_rollups (experiment, arm, user_id, exposures)
    SELECT experiment, arm, user_id, count(*) FROM exposures NOT INDEXED
    WHERE id > ? AND experiment IS NOT NULL AND arm IS NOT NULL AND user_id IS NOT NULL
    GROUP BY experiment, arm, user_id
    ON CONFLICT (experiment, arm, user_id)
    DO UPDATE SET exposures = exposure_rollups.exposures + excluded.exposures
"""
# One statement on PostgreSQL: only the rows the INSERT added come back from RETURNING, so
# concurrent writers and repeated ids cannot be counted twice; rollup rows are locked in key
# order so two writers never deadlock on them.
_ADD_EXPOSURES_POSTGRES = f"""
    WITH batch AS (
        SELECT * FROM unnest(
            %s::varchar[], %s::float8[], %s::varchar[], %s::varchar[], %s::varchar[],
            %s::varchar[], %s::varchar[], %s::int[], %s::text[]
        ) WITH ORDINALITY AS b({", ".join(EXPOSURE_COLUMNS)}, n)
    ), added AS (
        INSERT INTO exposures ({", ".join(EXPOSURE_COLUMNS)})
        SELECT {", ".join(EXPOSURE_COLUMNS[:-1])}, items::json FROM batch ORDER BY n
        ON CONFLICT (recommendation_id) DO NOTHING
        RETURNING experiment, arm, user_id
    ), rolled AS (
        INSERT INTO exposure_rollups (experiment, arm, user_id, exposures)
        SELECT experiment, arm, user_id, count(*) FROM added
        WHERE experiment IS NOT NULL AND arm IS NOT NULL AND user_id IS NOT NULL
        GROUP BY experiment, arm, user_id
        ORDER BY experiment, arm, user_id
        ON CONFLICT (experiment, arm, user_id)
        DO UPDATE SET exposures = exposure_rollups.exposures + excluded.exposures
    )
    SELECT count(*) FROM added
"""


# Per wanted (user, item, needle, needle): the newest of the user's experiment lists since a
# time whose stored JSON text names the item, read through ix_exposures_user_served. SQLite
# takes the other columns of a max() row from that row; PostgreSQL keeps the first row of each
# pair in served_at order.
_LATEST_SHOWING_SQLITE = """
    WITH wanted(user_id, item_id, n1, n2) AS (VALUES {values})
    SELECT w.user_id, w.item_id, e.recommendation_id, max(e.served_at), e.experiment, e.arm,
        CAST(e.items AS TEXT)
    FROM wanted AS w JOIN exposures AS e ON e.user_id = w.user_id
    WHERE e.served_at >= ? AND e.experiment IS NOT NULL
        AND (instr(e.items, w.n1) > 0 OR instr(e.items, w.n2) > 0)
    GROUP BY w.user_id, w.item_id
"""
_LATEST_SHOWING_POSTGRES = """
    SELECT DISTINCT ON (w.user_id, w.item_id) w.user_id, w.item_id, e.recommendation_id,
        e.served_at, e.experiment, e.arm, e.items::text
    FROM unnest(%s::varchar[], %s::varchar[], %s::text[], %s::text[]) AS w(user_id, item_id, n1, n2)
    JOIN exposures AS e ON e.user_id = w.user_id
    WHERE e.served_at >= %s AND e.experiment IS NOT NULL
        AND (strpos(e.items::text, w.n1) > 0 OR strpos(e.items::text, w.n2) > 0)
    ORDER BY w.user_id, w.item_id, e.served_at DESC
"""


def _item_needles(item: str) -> tuple[str, str]:
    """The text an item's entry starts with in a stored list, as orjson writes it and as a
    JSON column may (a space after the colon); the quotes keep "i1" from matching "i10".

    >>> _item_needles("i1")
    ('"item_id":"i1"', '"item_id": "i1"')
    """
    quoted = orjson.dumps(item).decode()
    return f'"item_id":{quoted}', f'"item_id": {quoted}'


_EXPERIMENT = EXPOSURE_COLUMNS.index("experiment")


def _add_exposures_sqlite(cursor: Any, values: list[tuple[Any, ...]]) -> int:
    before = cursor.execute("SELECT coalesce(max(id), 0) FROM exposures").fetchone()[0]
    cursor.executemany(_INSERT_EXPOSURES, values)
    added = max(cursor.rowcount, 0)  # the rows inserted, summed over the batch
    if added and any(row[_EXPERIMENT] is not None for row in values):  # else nothing to sum
        cursor.execute(_ROLL_UP_NEW_EXPOSURES, (before,))
    return added


def _add_exposures_postgres(cursor: Any, values: list[tuple[Any, ...]]) -> int:
    cursor.execute(_ADD_EXPOSURES_POSTGRES, [list(column) for column in zip(*values, strict=True)])
    return int(cursor.fetchone()[0])


def _roll_up_outcomes(conn: Any, backend: Any, new: Sequence[Any]) -> None:
    """Add new outcome rows to ``outcome_rollups`` and ``position_rollups`` (upserts in key
    order, so concurrent writers lock rollup rows in the same order)."""
    by_user, by_position = _outcome_sums(new)
    if by_user:
        up = backend.insert(outcome_rollups)
        conn.execute(
            up.on_conflict_do_update(
                index_elements=["experiment", "arm", "user_id", "event_type"],
                set_={
                    "events": outcome_rollups.c.events + up.excluded.events,
                    "value": outcome_rollups.c.value + up.excluded.value,
                },
            ),
            [
                {"experiment": e, "arm": a, "user_id": u, "event_type": t, "events": n, "value": v}
                for (e, a, u, t), (n, v) in sorted(by_user.items())
            ],
        )
    if by_position:
        up = backend.insert(position_rollups)
        conn.execute(
            up.on_conflict_do_update(
                index_elements=["experiment", "arm", "event_type", "position"],
                set_={"events": position_rollups.c.events + up.excluded.events},
            ),
            [
                {"experiment": e, "arm": a, "event_type": t, "position": p, "events": n}
                for (e, a, t, p), n in sorted(by_position.items())
            ],
        )


def _outcome_sums(
    rows: Sequence[Any],
) -> tuple[dict[tuple[Any, ...], list[Any]], dict[tuple[Any, ...], int]]:
    """New outcome rows ``(experiment, arm, user_id, event_type, value, position)`` summed by
    (experiment, arm, user, type) as ``[events, value]`` and by (experiment, arm, type,
    position) as events; rows without an experiment or arm count in neither."""
    by_user: dict[tuple[Any, ...], list[Any]] = {}
    by_position: dict[tuple[Any, ...], int] = {}
    for experiment, arm, user_id, event_type, value, position in rows:
        if experiment is None or arm is None:
            continue
        sums = by_user.setdefault((experiment, arm, user_id, event_type), [0, 0.0])
        sums[0] += 1
        sums[1] += 0.0 if value is None else value
        if position is not None:
            key = (experiment, arm, event_type, position)
            by_position[key] = by_position.get(key, 0) + 1
    return by_user, by_position
