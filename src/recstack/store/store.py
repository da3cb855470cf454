"""``Store``: the event and metadata store on SQLite (WAL) or PostgreSQL, as one facade.

Every write goes through it: bulk ingest, API event batches and single events, items, users,
keys. The work happens in single-purpose modules (``ingest``, ``event_rows``, ``snapshot``,
``stats``, ``repository``, ``keys``, ``migrate``) written once against the backend chosen
from the URL (``store.backend``); ``Store`` holds the engine and forwards to them, so the CLI,
the server and tests all go through the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recstack import tracing
from recstack.data.dataset import Dataset
from recstack.data.idmap import IdMap
from recstack.data.validation import EventColumns
from recstack.data.weights import EventWeighting
from recstack.settings import Settings
from recstack.store import keys, marks, repository
from recstack.store.backend import StoreBackend, backend_for, close_event_writer
from recstack.store.engine import create_store_engine
from recstack.store.event_rows import EventInput, add_event_columns, add_event_rows
from recstack.store.ingest import IngestResult
from recstack.store.ingest import ingest as _ingest
from recstack.store.snapshot import snapshot as _snapshot
from recstack.store.stats import store_stats

if TYPE_CHECKING:
    from recstack.data.loaders import LoadedData
    from recstack.store.experiments import ExperimentStore
    from recstack.store.exposures import ExposureStore
    from recstack.store.operations import Operations
    from recstack.store.precomputed import PrecomputedStore

STARTUP_BACKLOG = 2_000_000  # events waiting for the user index that ``migrate`` indexes


class Store:
    """The event/metadata store on SQLite (WAL) or PostgreSQL.

    >>> store = Store("sqlite://")  # in memory
    >>> store.migrate()
    >>> store.stats()["interactions"]
    0
    """

    def __init__(self, url: str) -> None:
        self.backend: StoreBackend = backend_for(url)
        self.engine: Engine = create_store_engine(url)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store ``settings`` point at, created and migrated to the newest schema."""
        if not settings.database_url:
            settings.ensure_home()
        store = cls(settings.store_url)
        store.migrate()
        return store

    @property
    def database(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def ping(self) -> None:
        """Raise if the database does not answer (readiness checks)."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        """Release every pooled connection (and the event writer's)."""
        close_event_writer(self.engine)
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- schema, bulk paths -------------------------------------------------------------------
    def migrate(self) -> None:
        """Upgrade the schema to the newest migration (idempotent, safe to call at every start)."""
        from recstack.store.migrate import upgrade_to_head  # Alembic: only where a store migrates

        upgrade_to_head(self.engine)
        # a store upgraded to a deferred user index: smaller backlogs are left to the writes
        self.backend.index_users(self.engine, at_least=STARTUP_BACKLOG)

    def ingest(
        self, data: LoadedData, *, progress: bool = False, chunk_size: int = 500_000
    ) -> IngestResult:
        """Upsert users and items, then insert interactions new by event_id, in one transaction.

        Re-ingesting the same data adds nothing; any failure leaves the store as it was.
        Catalogue items update their title/text/attributes where the new row gives them.
        A large load (see ``store.bulk``) rebuilds the interaction indexes once at the end; on
        PostgreSQL other writers wait for it, and readers of ``interactions`` wait from the
        moment its indexes are dropped until it commits (SQLite readers never wait).
        """
        return _ingest(self.engine, data, progress=progress, chunk_size=chunk_size)

    def snapshot(
        self,
        weighting: EventWeighting | None = None,
        *,
        since: int | None = None,
        upto_event_id: int | None = None,
        progress: bool = False,
    ) -> Dataset:
        """Every user, item and (weighted) interaction as a Dataset for training."""
        with tracing.span("recstack.store.snapshot"):
            return _snapshot(
                self.engine, weighting, since=since, upto_event_id=upto_event_id, progress=progress
            )

    def change_mark(self) -> dict[str, int]:
        """Where the store stands: highest event and user ids, user count (``marks``)."""
        return marks.change_mark(self.engine)

    def count_users(self, upto_user_id: int) -> int:
        """Users with a surrogate id at or below ``upto_user_id`` (fewer after a purge)."""
        return marks.count_users(self.engine, upto_user_id)

    def events_after(
        self, after_event_id: int, since: int | None = None, upto: int | None = None
    ) -> pd.DataFrame:
        """Events stored after a mark's ``max_event_id`` (up to ``upto``, another mark's),
        oldest first, with external ids."""
        with tracing.span("recstack.store.events_after"):
            return marks.events_after(self.engine, after_event_id, since, upto)

    def catalogue(self) -> tuple[IdMap, pd.DataFrame]:
        """Every item (surrogate id order) and its ``title, text, attributes, active``."""
        return marks.catalogue(self.engine)

    def stats(self) -> dict[str, Any]:
        """Counts, density/sparsity, event types and time range (see ``stats.store_stats``)."""
        return store_stats(self.engine)

    # ---- online operations --------------------------------------------------------------------
    def add_events(self, events: EventInput | pd.DataFrame, *, create_items: bool = False) -> int:
        """Store events durably (committed before returning); returns how many were new.

        ``events``: ``EventRow``s (or tuples in their order), mappings keyed by column name,
        or a canonical interaction frame. Events whose event_id is stored already (or repeated
        in the batch) are skipped; unknown users are created; unknown items raise
        ``NotFoundError`` naming them unless ``create_items``. A bad row raises ``DataError``
        (``row N of the interactions: ...``). Either error stores nothing of the batch.
        Concurrent calls on SQLite share one commit (see ``rows_sqlite``).
        """
        with tracing.span("recstack.store.add_events"):
            if isinstance(events, pd.DataFrame):
                return repository.add_events(self.engine, events, create_items=create_items)
            return add_event_rows(self.engine, events, create_items=create_items)

    def add_event_columns(self, columns: EventColumns, *, create_items: bool = False) -> int:
        """``add_events`` for events already checked and typed, as columns, by
        ``recstack.data.validation.event_columns`` (so they are not checked twice)."""
        with tracing.span("recstack.store.add_events"):
            return add_event_columns(self.engine, columns, create_items=create_items)

    def upsert_item(
        self,
        item_id: str,
        *,
        title: str | None = None,
        text: str | None = None,
        attributes: dict | None = None,
        active: bool = True,
    ) -> dict[str, Any]:
        """Create or update one item; fields left as None keep their stored value."""
        return repository.upsert_item(
            self.engine, item_id, title=title, text=text, attributes=attributes, active=active
        )

    def upsert_items(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create or update many items in one transaction, all or none; fields as in
        ``upsert_item`` (see ``repository.upsert_items``). Returns them in order."""
        return repository.upsert_items(self.engine, records)

    def get_item(self, item_id: str) -> dict[str, Any] | None:
        """``{"item_id","title","text","attributes","active","created_at","updated_at"}``."""
        return repository.get_item(self.engine, item_id)

    def items_frame(self) -> pd.DataFrame:
        """The catalogue in canonical item columns, ordered by surrogate id."""
        return repository.items_frame(self.engine)

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        """``{"user_id","attributes","created_at","n_events"}`` or None."""
        return repository.get_user(self.engine, user_id)

    def user_history(self, user_id: str, limit: int | None = None) -> pd.DataFrame:
        """The user's events newest first."""
        with tracing.span("recstack.store.user_history"):
            return repository.user_history(self.engine, user_id, limit)

    def delete_user(self, user_id: str) -> int:
        """Erase a user and their events (GDPR); returns events deleted."""
        return repository.delete_user(self.engine, user_id)

    # ---- API keys -----------------------------------------------------------------------------
    def create_api_key(self, scope: str, name: str = "") -> tuple[str, dict[str, Any]]:
        """A new ``rs_<prefix>_<secret>`` key (plaintext returned once) and its record."""
        return keys.create_api_key(self.engine, scope, name)

    def verify_api_key(self, key: str) -> dict[str, Any] | None:
        """The key's record if valid and not revoked, else None."""
        return keys.verify_api_key(self.engine, key)

    def list_api_keys(self) -> list[dict[str, Any]]:
        """All keys' records (no secrets)."""
        return keys.list_api_keys(self.engine)

    def revoke_api_key(self, prefix: str) -> bool:
        """Revoke a key by prefix; False if none was active."""
        return keys.revoke_api_key(self.engine, prefix)

    # ---- operations: jobs, locks, audit log, retention -------------------------------------------
    @property
    def operations(self) -> Operations:
        """Job records, cross-process locks, the audit log and retention (``store.operations``)."""
        from recstack.store.operations import Operations

        return Operations(self.engine)

    # ---- experiments: definitions, exposure log, attributed outcomes ------------------------------
    @property
    def experiments(self) -> ExperimentStore:
        """Experiment definitions and their status changes (``store.experiments``)."""
        from recstack.store.experiments import ExperimentStore

        return ExperimentStore(self.engine)

    @property
    def exposures(self) -> ExposureStore:
        """The exposure log and the outcomes attributed to it (``store.exposures``)."""
        from recstack.store.exposures import ExposureStore

        return ExposureStore(self.engine)

    # ---- precomputed recommendation lists -----------------------------------------------------
    @property
    def precomputed(self) -> PrecomputedStore:
        """Named sets of top-k lists per user, replaced atomically (``store.precomputed``)."""
        from recstack.store.precomputed import PrecomputedStore

        return PrecomputedStore(self.engine)
