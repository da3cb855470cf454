"""The store's tables (SQLAlchemy 2 Core). Alembic migrations create exactly these.

External ids are the user's strings; integer surrogate keys keep the 25M-row interactions table
narrow. ``timestamp`` is epoch seconds (UTC) so bulk paths never parse dates row by row.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects import postgresql

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
PK = BigInteger().with_variant(Integer(), "sqlite")
# Event ids are opaque keys: on PostgreSQL the "C" collation compares them bytewise, which
# makes the unique index several times cheaper to build and probe than a locale collation.
EVENT_ID = String(255).with_variant(postgresql.VARCHAR(255, collation="C"), "postgresql")

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("external_id", String(255), nullable=False, unique=True),
    Column("attributes", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

items = Table(
    "items",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("external_id", String(255), nullable=False, unique=True),
    Column("title", Text, nullable=True),
    Column("text", Text, nullable=True),
    Column("attributes", JSON, nullable=True),
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

interactions = Table(
    "interactions",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("event_id", EVENT_ID, nullable=False, unique=True),
    Column("user_id", PK, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", PK, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("value", Float, nullable=True),
    Column("timestamp", BigInteger, nullable=False),
    Column("context", JSON, nullable=True),
    # PostgreSQL only: SQLite keeps it in a side file (``store.user_index``, migration 0008)
    Index("ix_interactions_user_ts", "user_id", "timestamp").ddl_if(dialect="postgresql"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(128), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# ---- operations: background jobs, cross-process locks, the admin audit log (revision 0004) ----
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("request", JSON, nullable=True),
    Column("result", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("owner", String(128), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    Index("ix_jobs_kind_created", "kind", "created_at"),
)

job_locks = Table(
    "job_locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("job_id", String(32), nullable=True),
    Column("acquired_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("key_prefix", String(64), nullable=False),
    Column("action", String(128), nullable=False),
    Column("target", String(512), nullable=True),
    Column("status", Integer, nullable=False),
    Column("request_id", String(64), nullable=True),
    Index("ix_audit_log_at", "at"),
)

# ---- experiments (revision 0002) ----------------------------------------------------------------
experiments = Table(
    "experiments",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("namespace", String(64), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

exposures = Table(
    "exposures",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("recommendation_id", String(64), nullable=False, unique=True),
    Column("served_at", Float, nullable=False),
    Column("user_id", String(255), nullable=True),
    Column("surface", String(16), nullable=False),
    Column("experiment", String(64), nullable=True),
    Column("arm", String(64), nullable=True),
    Column("model", String(64), nullable=False),
    Column("model_version", Integer, nullable=True),
    Column("items", JSON, nullable=False),
    # Partial (0007): most served lists are in no experiment; readers ask for one, and
    # attribution (by user and time) credits events to lists served in an experiment.
    Index(
        "ix_exposures_experiment_arm",
        "experiment",
        "arm",
        "user_id",
        sqlite_where=text("experiment IS NOT NULL"),
        postgresql_where=text("experiment IS NOT NULL"),
    ),
    Index(
        "ix_exposures_user_served",
        "user_id",
        "served_at",
        sqlite_where=text("experiment IS NOT NULL"),
        postgresql_where=text("experiment IS NOT NULL"),
    ),
)

# The experiment logs, their per-user rollups and the definitions, dependents first: the
# tables emptied together (tests, benchmarks) so that logs and rollups keep agreeing.
EXPERIMENT_TABLES = (
    "outcomes",
    "exposures",
    "outcome_rollups",
    "exposure_rollups",
    "position_rollups",
    "experiments",
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("event_id", EVENT_ID, nullable=False, unique=True),
    Column("recommendation_id", String(64), nullable=False),
    Column("experiment", String(64), nullable=True),
    Column("arm", String(64), nullable=True),
    Column("user_id", String(255), nullable=False),
    Column("item_id", String(255), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("value", Float, nullable=True),
    Column("position", Integer, nullable=True),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_outcomes_experiment_arm", "experiment", "arm", "user_id"),
    Index("ix_outcomes_recommendation", "recommendation_id"),
)

# ---- experiment rollups (revision 0006) ----
# Per-user sums of the two logs above, updated in the transaction that writes the raw rows, so
# an experiment's results read one row per (arm, user) instead of every exposure. Only rows with
# an experiment, an arm and a user count (the rows ``user_metrics`` groups).
exposure_rollups = Table(
    "exposure_rollups",
    metadata,
    Column("experiment", String(64), primary_key=True),
    Column("arm", String(64), primary_key=True),
    Column("user_id", String(255), primary_key=True),
    Column("exposures", Integer, nullable=False),
    sqlite_with_rowid=False,
)

outcome_rollups = Table(
    "outcome_rollups",
    metadata,
    Column("experiment", String(64), primary_key=True),
    Column("arm", String(64), primary_key=True),
    Column("user_id", String(255), primary_key=True),
    Column("event_type", String(32), primary_key=True),
    Column("events", Integer, nullable=False),
    Column("value", Float, nullable=False),  # sum of value, a missing value counting 0
    sqlite_with_rowid=False,
)

position_rollups = Table(
    "position_rollups",
    metadata,
    Column("experiment", String(64), primary_key=True),
    Column("arm", String(64), primary_key=True),
    Column("event_type", String(32), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("events", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# ---- monitoring: drift reports and promotion decisions (revision 0003) ----
drift_reports = Table(
    "drift_reports",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("model_name", String(255), nullable=True),
    Column("model_version", Integer, nullable=True),
    Column("drifted", Boolean, nullable=False),
    Column("share", Float, nullable=False),
    Column("reference_start", BigInteger, nullable=True),
    Column("reference_end", BigInteger, nullable=True),
    Column("current_start", BigInteger, nullable=True),
    Column("current_end", BigInteger, nullable=True),
    Column("report", JSON, nullable=False),
    Column("html", Text, nullable=False),
    Index("ix_drift_reports_created", "created_at"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("model_name", String(255), nullable=False),
    Column("action", String(16), nullable=False),
    Column("promoted", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("champion_version", Integer, nullable=True),
    Column("challenger_version", Integer, nullable=True),
    Column("drift_report_id", String(32), nullable=True),
    Column("record", JSON, nullable=False),
    Index("ix_decisions_created", "created_at"),
)

# ---- precomputed recommendation lists (revision 0005) ----
# A set's lists are written under a fresh generation; ``precomputed_sets.generation`` points at
# the one being served and moves in one transaction once a generation is complete.
precomputed_generations = Table(
    "precomputed_generations",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_precomputed_generations_name", "name"),
)

precomputed_sets = Table(
    "precomputed_sets",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("generation", BigInteger, nullable=False),
    Column("k", Integer, nullable=False),
    Column("n_users", BigInteger, nullable=False),
    Column("n_rows", BigInteger, nullable=False),
    Column("source", JSON, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

precomputed_lists = Table(
    "precomputed_lists",
    metadata,
    Column("generation", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", String(255), primary_key=True),
    Column("items", Text, nullable=False),
    Column("scores", LargeBinary, nullable=False),
)
