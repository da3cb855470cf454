"""The event and metadata store (SQLite or PostgreSQL): bulk ingest, snapshots, online writes.

``Store`` is the one write path; ``EventRow`` is the row its ``add_events`` takes.
"""

from recstack.store.event_rows import EventRow
from recstack.store.ingest import IngestResult
from recstack.store.store import Store

__all__ = ["EventRow", "IngestResult", "Store"]
