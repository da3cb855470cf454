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
    MetaData,
    String,
    Table,
    Text,
    func,
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
    Index("ix_interactions_user_ts", "user_id", "timestamp"),
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
