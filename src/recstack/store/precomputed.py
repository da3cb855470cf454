"""Precomputed recommendation lists in the store: named sets of top-k per user.

Batch scoring (``recstack spark score --into-store``) writes a set; a serving slot loads it
(``precomputed:NAME``). One row per user holds the list (item ids as a JSON array, scores as
float32 bytes), so a million users at k=10 are a million rows, not ten million.

Replacing a set is atomic for readers: the new lists are written under a fresh *generation*
(committed chunk by chunk, so memory and transaction size stay bounded), and only when every
chunk is in does one transaction point ``precomputed_sets.generation`` at it. A failure before
that removes the partial generation and leaves the previous one serving; a process killed
midway leaves a ``writing`` generation nobody reads, removed by the next write of that name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from recstack.data.idmap import IdMap
from recstack.errors import ConfigError, DataError, NotFoundError
from recstack.progress import ProgressTask
from recstack.store.backend import backend_of
from recstack.store.dbapi import driver_connection
from recstack.store.engine import read_transaction, write_transaction
from recstack.store.tables import precomputed_generations, precomputed_lists, precomputed_sets

WRITING, LIVE, RETIRED = "writing", "live", "retired"
STALE_WRITE = timedelta(hours=6)  # a generation still "writing" after this was abandoned
FETCH_ROWS = 20_000
MAX_ID = 255
PG_COPY = True  # PostgreSQL: COPY the rows in (False: executemany INSERT, for comparison)


@dataclass(frozen=True)
class ListChunk:
    """Rows of recommendation lists in long form: one row per (user, rank), each user's rows
    together and best first. A user's rows may continue into the next chunk."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.user_ids)


@dataclass(frozen=True)
class SetInfo:
    """A stored set: its live generation, the longest list, users and rows, and its source."""

    name: str
    generation: int
    k: int
    n_users: int
    n_rows: int
    source: dict[str, Any] = field(default_factory=dict)
    updated_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "generation": self.generation,
            "k": self.k,
            "users": self.n_users,
            "rows": self.n_rows,
            "source": self.source,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class StoredLists:
    """A set read back as compact arrays: user ``u``'s list is
    ``items[item_idx[indptr[u]:indptr[u + 1]]]`` with ``scores`` at the same slice."""

    info: SetInfo
    users: IdMap
    items: IdMap
    indptr: np.ndarray
    item_idx: np.ndarray
    scores: np.ndarray


def user_groups(user_ids: np.ndarray) -> np.ndarray:
    """Start offsets of runs of equal user ids, plus the end.

    >>> user_groups(np.array(["a", "a", "b", "c", "c"], dtype=object)).tolist()
    [0, 2, 3, 5]
    """
    n = len(user_ids)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    changes = np.flatnonzero(user_ids[1:] != user_ids[:-1]) + 1
    return np.concatenate([[0], changes, [n]]).astype(np.int64)


def _check_ids(values: np.ndarray, what: str, offset: int) -> None:
    """Raise ``DataError`` at the first value that is not a usable id (vectorised by pyarrow,
    with a per-value pass only to name a value pyarrow cannot read as text)."""
    try:
        lengths = pc.utf8_length(pa.array(values, type=pa.string(), from_pandas=True))
        bad = np.flatnonzero(
            np.asarray(
                pc.fill_null(pc.or_(pc.equal(lengths, 0), pc.greater(lengths, MAX_ID)), True)
            )
        )
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        bad = np.flatnonzero([not isinstance(v, str) for v in values.tolist()])
    if len(bad):
        row = int(bad[0])
        raise DataError(
            f"{what} must be a non-empty string of at most {MAX_ID} characters, "
            f"got {values[row]!r}",
            line=offset + row + 1,
        )


def _rows(generation: int, chunk: ListChunk, offset: int) -> tuple[list[tuple[Any, ...]], int, int]:
    """Insert rows of one chunk's whole users: ``(rows, users, longest list)``."""
    users = np.asarray(chunk.user_ids, dtype=object)
    items = np.asarray(chunk.item_ids, dtype=object)
    scores = np.asarray(chunk.scores, dtype=np.float64)
    _check_ids(users, "user_id", offset)
    _check_ids(items, "item_id", offset)
    if np.isnan(scores).any():
        row = int(np.flatnonzero(np.isnan(scores))[0])
        raise DataError("score is missing or not a number", line=offset + row + 1)
    scores32 = scores.astype("<f4")
    bounds = user_groups(users)
    rows = []
    item_list = items.tolist()
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        rows.append(
            (
                generation,
                users[lo],
                orjson.dumps(item_list[lo:hi]).decode(),
                scores32[lo:hi].tobytes(),
            )
        )
    longest = int(np.diff(bounds).max()) if len(bounds) > 1 else 0
    return rows, len(rows), longest


def _whole_users(chunks: Iterable[ListChunk]) -> Iterator[ListChunk]:
    """The chunks re-cut so that no user's rows straddle two of them."""
    carry: ListChunk | None = None
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        users = np.asarray(chunk.user_ids, dtype=object)
        items = np.asarray(chunk.item_ids, dtype=object)
        scores = np.asarray(chunk.scores, dtype=np.float64)
        if carry is not None:
            users = np.concatenate([carry.user_ids, users])
            items = np.concatenate([carry.item_ids, items])
            scores = np.concatenate([carry.scores, scores])
        last = int(user_groups(users)[-2])
        if last:
            yield ListChunk(users[:last], items[:last], scores[:last])
        carry = ListChunk(users[last:], items[last:], scores[last:])
    if carry is not None:
        yield carry


class PrecomputedStore:
    """Write, read, list and delete named sets of precomputed lists."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- writing -------------------------------------------------------------------------------
    def write(
        self,
        name: str,
        chunks: Iterable[ListChunk],
        *,
        source: dict[str, Any] | None = None,
        task: ProgressTask | None = None,
    ) -> SetInfo:
        """Replace set ``name`` with the lists in ``chunks``, atomically for readers.

        Each chunk commits on its own under a new generation; the set's pointer moves to it
        in one transaction at the end. Any exception (bad row, a user's rows split in two
        places, a failing source) removes the new generation and leaves the old set served.
        ``task`` advances by the rows written.
        """
        if not name or len(name) > MAX_ID:
            raise ConfigError(f"a list set name needs 1 to {MAX_ID} characters, got {name!r}")
        self._remove(name, (RETIRED,))
        self._remove(name, (WRITING,), older_than=datetime.now(UTC) - STALE_WRITE)
        generation = self._new_generation(name)
        try:
            n_users = n_rows = k = 0
            for chunk in _whole_users(chunks):
                rows, users, longest = _rows(generation, chunk, n_rows)
                self._insert(rows, n_rows)
                n_users, n_rows, k = n_users + users, n_rows + len(chunk), max(k, longest)
                if task is not None:
                    task.advance(len(chunk))
            if n_users == 0:
                raise DataError(f"no recommendation lists to store as {name!r}")
            info = self._flip(name, generation, k, n_users, n_rows, source or {})
        except BaseException:
            self._drop_generation(generation)
            raise
        self._remove(name, (RETIRED,))
        return info

    def _new_generation(self, name: str) -> int:
        with write_transaction(self.engine) as conn:
            return int(
                conn.execute(
                    sa.insert(precomputed_generations)
                    .values(name=name, status=WRITING, created_at=datetime.now(UTC))
                    .returning(precomputed_generations.c.id)
                ).scalar_one()
            )

    def _insert(self, rows: Sequence[tuple[Any, ...]], offset: int) -> None:
        columns = "precomputed_lists (generation, user_id, items, scores)"
        sqlite = self.engine.dialect.name == "sqlite"
        mark = "?" if sqlite else "%s"
        try:
            with write_transaction(self.engine) as conn:
                cursor = driver_connection(conn).cursor()
                if sqlite or not PG_COPY:
                    sql = f"INSERT INTO {columns} VALUES ({mark}, {mark}, {mark}, {mark})"
                    cursor.executemany(sql, rows)
                else:
                    with cursor.copy(f"COPY {columns} FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
        except Exception as exc:
            if isinstance(exc, IntegrityError) or _is_unique_violation(exc):
                raise DataError(
                    "a user's rows appear in more than one place (each user's rows must be "
                    f"together), at or after row {offset + 1}"
                ) from None
            raise

    def _flip(
        self, name: str, generation: int, k: int, n_users: int, n_rows: int, source: dict
    ) -> SetInfo:
        now = datetime.now(UTC)
        values = {
            "generation": generation,
            "k": k,
            "n_users": n_users,
            "n_rows": n_rows,
            "source": source,
            "updated_at": now,
        }
        gens = precomputed_generations
        with write_transaction(self.engine) as conn:
            upsert = backend_of(conn).insert(precomputed_sets).values(name=name, **values)
            conn.execute(upsert.on_conflict_do_update(index_elements=["name"], set_=values))
            conn.execute(
                sa.update(gens)
                .where(gens.c.name == name, gens.c.status == LIVE, gens.c.id != generation)
                .values(status=RETIRED)
            )
            conn.execute(sa.update(gens).where(gens.c.id == generation).values(status=LIVE))
        return SetInfo(name, generation, k, n_users, n_rows, source, now.isoformat())

    def _drop_generation(self, generation: int) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.delete(precomputed_lists).where(precomputed_lists.c.generation == generation)
            )
            conn.execute(
                sa.delete(precomputed_generations).where(precomputed_generations.c.id == generation)
            )

    def _remove(
        self, name: str, statuses: tuple[str, ...], older_than: datetime | None = None
    ) -> None:
        gens = precomputed_generations
        query = sa.select(gens.c.id).where(gens.c.name == name, gens.c.status.in_(statuses))
        if older_than is not None:
            query = query.where(gens.c.created_at < older_than)
        with read_transaction(self.engine) as conn:
            found = conn.execute(query).scalars().all()
        for generation in found:
            self._drop_generation(int(generation))

    def delete(self, name: str) -> bool:
        """Remove set ``name`` and every generation of it; False when there was none."""
        with write_transaction(self.engine) as conn:
            gone = conn.execute(sa.delete(precomputed_sets).where(precomputed_sets.c.name == name))
            conn.execute(
                sa.update(precomputed_generations)
                .where(precomputed_generations.c.name == name)
                .values(status=RETIRED)
            )
        self._remove(name, (RETIRED,))
        return gone.rowcount > 0

    # ---- reading -------------------------------------------------------------------------------
    def get(self, name: str) -> SetInfo | None:
        with read_transaction(self.engine) as conn:
            return _info(conn, name)

    def list(self) -> list[SetInfo]:
        """Every stored set, by name."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(sa.select(precomputed_sets).order_by(precomputed_sets.c.name))
            return [_as_info(r._mapping) for r in rows]

    def load(self, name: str) -> StoredLists:
        """Set ``name``'s live generation as arrays, read in one consistent transaction
        (a replacement committed meanwhile is not mixed in); ``NotFoundError`` if unknown."""
        with read_transaction(self.engine) as conn:
            info = _info(conn, name)
            if info is None:
                stored = conn.execute(
                    sa.select(precomputed_sets.c.name).order_by(precomputed_sets.c.name)
                ).scalars()
                known = ", ".join(repr(n) for n in stored) or "none"
                raise NotFoundError(
                    f"no precomputed list set {name!r} in the store; stored: {known}"
                )
            mark = "?" if conn.dialect.name == "sqlite" else "%s"
            cursor = driver_connection(conn).cursor()
            cursor.execute(
                f"SELECT user_id, items, scores FROM precomputed_lists WHERE generation = {mark}",
                (info.generation,),
            )
            users: list[str] = []
            flat: list[str] = []
            lengths: list[int] = []
            blobs: list[bytes] = []
            while batch := cursor.fetchmany(FETCH_ROWS):
                for user, items, scores in batch:
                    listed = orjson.loads(items)
                    users.append(user)
                    flat.extend(listed)
                    lengths.append(len(listed))
                    blobs.append(bytes(scores))
        codes, uniques = pd.factorize(np.asarray(flat, dtype=object))
        indptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(np.asarray(lengths, dtype=np.int64), out=indptr[1:])
        return StoredLists(
            info,
            IdMap(users),
            IdMap(uniques),
            indptr,
            codes.astype(np.int32),
            np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32),
        )


def _info(conn: Connection, name: str) -> SetInfo | None:
    row = conn.execute(
        sa.select(precomputed_sets).where(precomputed_sets.c.name == name)
    ).one_or_none()
    return _as_info(row._mapping) if row is not None else None


def _as_info(row: Any) -> SetInfo:
    updated = row["updated_at"]
    return SetInfo(
        row["name"],
        int(row["generation"]),
        int(row["k"]),
        int(row["n_users"]),
        int(row["n_rows"]),
        dict(row["source"] or {}),
        updated.isoformat() if updated is not None else None,
    )


def _is_unique_violation(exc: Exception) -> bool:
    """Whether a driver error (raised below SQLAlchemy) is a unique-key violation."""
    text = f"{type(exc).__name__} {exc}".lower()
    return "unique" in text or "duplicate key" in text
