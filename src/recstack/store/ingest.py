"""Bulk ingest of loaded data into the store: all or nothing, idempotent by event_id.

Order inside the one transaction: catalogue items (insert or update), users with attributes,
the users and items that interactions name (created bare when unknown), then the interactions
in chunks. External ids become surrogate keys with one factorize per column and a vectorised
lookup, never per-row ORM work; the per-backend writers are the store backend's
(``store.backend``, delegating to ``ingest_sqlite`` and ``ingest_postgres``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from recstack.errors import NotFoundError
from recstack.progress import ProgressTask
from recstack.store.backend import backend_of
from recstack.store.bulk import is_large_load, stored_rows_estimate
from recstack.store.engine import write_transaction
from recstack.store.frames import prepare_interactions, prepare_items, prepare_users

if TYPE_CHECKING:
    from recstack.data.loaders import LoadedData


@dataclass
class IngestResult:
    """What one ingest did (``duplicates``: events whose event_id was already stored or repeated)."""

    interactions_read: int
    interactions_inserted: int
    duplicates: int
    users_created: int
    items_created: int
    items_updated: int
    skipped: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        """Interactions read per second of ingest."""
        return self.interactions_read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}


def resolve_ids(
    conn: Connection, table: str, external_ids: np.ndarray, *, create: bool
) -> tuple[np.ndarray, int]:
    """Surrogate ids aligned with ``external_ids`` (distinct strings) and how many were created.

    With ``create=False`` unknown ids come back as -1.
    """
    backend = backend_of(conn)
    ids = external_ids.tolist()
    created = backend.insert_missing_ids(conn, table, ids) if create and ids else 0
    return backend.lookup_ids(conn, table, ids), created


def map_interactions(
    conn: Connection, frame: pd.DataFrame, *, create_items: bool
) -> tuple[pd.DataFrame, int, int]:
    """Replace external user/item ids with surrogate ids; returns (frame, users, items created).

    Unknown users are always created; unknown items are created bare when ``create_items``,
    otherwise a ``NotFoundError`` names them.
    """
    user_codes, user_uniques = pd.factorize(frame["user_id"], sort=False)
    item_codes, item_uniques = pd.factorize(frame["item_id"], sort=False)
    user_uniques = np.asarray(user_uniques, dtype=object)
    item_uniques = np.asarray(item_uniques, dtype=object)
    user_sids, users_created = resolve_ids(conn, "users", user_uniques, create=True)
    item_sids, items_created = resolve_ids(conn, "items", item_uniques, create=create_items)
    if not create_items and (item_sids < 0).any():
        unknown = item_uniques[item_sids < 0][:5].tolist()
        raise NotFoundError(f"unknown item ids (add them to the catalogue first): {unknown}")
    mapped = frame.assign(user_id=user_sids[user_codes], item_id=item_sids[item_codes])
    return mapped, users_created, items_created


def upsert_catalogue(conn: Connection, items: pd.DataFrame) -> tuple[int, int]:
    """Insert or update catalogue rows; returns (created, updated)."""
    existing, _ = resolve_ids(conn, "items", items["item_id"].to_numpy(dtype=object), create=False)
    affected = backend_of(conn).upsert_items(conn, items)
    created = int((existing < 0).sum())
    return created, max(affected - created, 0)


def upsert_user_rows(conn: Connection, users: pd.DataFrame) -> int:
    """Insert users (with attributes) or update their attributes; returns how many were new."""
    existing, _ = resolve_ids(conn, "users", users["user_id"].to_numpy(dtype=object), create=False)
    backend_of(conn).upsert_users(conn, users)
    return int((existing < 0).sum())


def ingest(
    engine: Engine, data: LoadedData, *, progress: bool = False, chunk_size: int = 500_000
) -> IngestResult:
    """Write ``data`` (a ``LoadedData``) into the store in one transaction; see ``Store.ingest``."""
    started = time.perf_counter()
    source = getattr(data, "source", None)
    raw = data.interactions
    interactions = prepare_interactions(raw, source) if raw is not None and len(raw) else None
    items = prepare_items(data.items, source) if data.items is not None else None
    users = prepare_users(data.users, source) if data.users is not None else None
    n = 0 if interactions is None else len(interactions)
    items_created = items_updated = users_created = inserted = 0
    with ProgressTask("ingesting", total=n, enabled=progress) as task:
        with write_transaction(engine, check_foreign_keys=False) as conn:
            backend = backend_of(conn)
            stored = stored_rows_estimate(conn)
            large = is_large_load(n, stored)
            try:
                backend.prepare_bulk(conn, large=large)  # first: it may restart the transaction
                if items is not None and len(items):
                    items_created, items_updated = upsert_catalogue(conn, items)
                if users is not None and len(users):
                    users_created = upsert_user_rows(conn, users)
                if interactions is not None:
                    mapped, new_users, new_items = map_interactions(
                        conn, interactions, create_items=True
                    )
                    users_created += new_users
                    items_created += new_items
                    inserted = backend.load_interactions(
                        conn, mapped, chunk_size=chunk_size, task=task, large=large, stored=stored
                    )
            finally:
                backend.finish_bulk(conn)
        backend_of(engine).index_users(engine, task=task, at_least=0 if large else None)
    return IngestResult(
        interactions_read=n,
        interactions_inserted=inserted,
        duplicates=n - inserted,
        users_created=users_created,
        items_created=items_created,
        items_updated=items_updated,
        skipped=len(getattr(data, "skipped", None) or []),
        seconds=time.perf_counter() - started,
    )
