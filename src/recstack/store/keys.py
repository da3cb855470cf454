"""API keys: ``rs_<prefix>_<secret>``, stored as a SHA-256 hash, the plaintext shown once.

The public prefix finds the row; the hash of the whole key is compared in constant time, so
neither a database dump nor a timing attack reveals a usable key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recstack.errors import ConfigError
from recstack.store.engine import write_transaction
from recstack.store.tables import api_keys
from recstack.store.timeformat import iso_datetime

SCOPES: tuple[str, ...] = ("read", "write", "admin")
KEY_PREFIX = "rs"


def hash_key(key: str) -> str:
    """Hex SHA-256 of the full key text."""
    return hashlib.sha256(key.encode()).hexdigest()


def _record(row: Any) -> dict[str, Any]:
    return {
        "prefix": row.prefix,
        "name": row.name,
        "scope": row.scope,
        "created_at": iso_datetime(row.created_at),
    }


def create_api_key(engine: Engine, scope: str, name: str = "") -> tuple[str, dict[str, Any]]:
    """A new key with ``scope`` (read, write or admin); returns (plaintext key, record)."""
    if scope not in SCOPES:
        raise ConfigError(f"API key scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    with write_transaction(engine) as conn:
        while True:  # a prefix clash among 16**10 values is unlikely but must not fail
            prefix = secrets.token_hex(5)
            taken = conn.execute(
                sa.select(api_keys.c.id).where(api_keys.c.prefix == prefix)
            ).first()
            if taken is None:
                break
        key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
        conn.execute(
            api_keys.insert().values(name=name, prefix=prefix, key_hash=hash_key(key), scope=scope)
        )
        row = conn.execute(sa.select(api_keys).where(api_keys.c.prefix == prefix)).one()
    return key, _record(row)


def _split(key: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


def verify_api_key(engine: Engine, key: str) -> dict[str, Any] | None:
    """The key's record if it is valid and not revoked, else None."""
    prefix = _split(key or "")
    if prefix is None:
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.prefix == prefix)).first()
    if row is None:
        hmac.compare_digest(hash_key(key), hash_key(""))  # same work whether or not it exists
        return None
    if not hmac.compare_digest(hash_key(key), row.key_hash) or row.revoked_at is not None:
        return None
    return _record(row)


def list_api_keys(engine: Engine) -> list[dict[str, Any]]:
    """Every key ever created (never the secret), with ``revoked_at`` (None if active)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.id)).all()
    return [{**_record(r), "revoked_at": iso_datetime(r.revoked_at)} for r in rows]


def revoke_api_key(engine: Engine, prefix: str) -> bool:
    """Revoke the key with ``prefix``; False if no active key has it."""
    with write_transaction(engine) as conn:
        result = conn.execute(
            api_keys.update()
            .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=sa.func.now())
        )
    return result.rowcount > 0
