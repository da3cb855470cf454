"""Bulk ingest as a backend method: forwarded to the backend's own ingest module.

Each backend keeps its tuned bulk paths in a module of their own (``ingest_sqlite``,
``ingest_postgres``); this forwards the ``StoreBackend`` bulk methods to it, looked up at call
time, so the two backends do not repeat the same eight wrappers.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from recstack.progress import ProgressTask


class BulkDelegate:
    """The bulk half of a ``StoreBackend``, forwarded to ``ingest``."""

    ingest: ModuleType

    def prepare_bulk(self, conn: Connection, *, large: bool) -> None:
        self.ingest.prepare_bulk(conn, large=large)

    def finish_bulk(self, conn: Connection) -> None:
        self.ingest.finish_bulk(conn)

    def insert_missing_ids(self, conn: Connection, table: str, ids: Sequence[str]) -> int:
        return self.ingest.insert_missing_ids(conn, table, ids)

    def lookup_ids(self, conn: Connection, table: str, ids: Sequence[str]) -> np.ndarray:
        return self.ingest.lookup_ids(conn, table, ids)

    def upsert_items(self, conn: Connection, rows: pd.DataFrame) -> int:
        return self.ingest.upsert_items(conn, rows)

    def upsert_users(self, conn: Connection, rows: pd.DataFrame) -> int:
        return self.ingest.upsert_users(conn, rows)

    def write_interactions(self, conn: Connection, chunk: pd.DataFrame) -> int:
        return self.ingest.write_interactions(conn, chunk)

    def load_interactions(
        self,
        conn: Connection,
        frame: pd.DataFrame,
        *,
        chunk_size: int,
        task: ProgressTask,
        large: bool,
        stored: int,
    ) -> int:
        return self.ingest.load_interactions(
            conn, frame, chunk_size=chunk_size, task=task, large=large, stored=stored
        )
