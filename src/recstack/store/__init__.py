"""The event and metadata store (SQLite or PostgreSQL): bulk ingest, snapshots, online writes."""

from recstack.store.ingest import IngestResult
from recstack.store.store import Store

__all__ = ["IngestResult", "Store"]
