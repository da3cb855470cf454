"""API keys: plaintext once, hashed at rest, verified in constant time, revocable."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from recstack.errors import ConfigError


def test_create_verify_revoke(store) -> None:
    key, record = store.create_api_key("write", name="ingest job")
    assert key.startswith(f"rs_{record['prefix']}_")
    assert record["scope"] == "write" and record["name"] == "ingest job"
    assert store.verify_api_key(key) == record
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT key_hash FROM api_keys")).scalar_one()
    assert stored == hashlib.sha256(key.encode()).hexdigest() and key not in stored

    assert store.revoke_api_key(record["prefix"]) is True
    assert store.verify_api_key(key) is None
    assert store.revoke_api_key(record["prefix"]) is False
    listed = store.list_api_keys()
    assert [k["prefix"] for k in listed] == [record["prefix"]]
    assert listed[0]["revoked_at"] is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # wrong secret
        lambda k: "rs_ffffffffff_" + k.split("_", 2)[2],  # unknown prefix
        lambda k: k.replace("rs_", "xx_", 1),
        lambda k: "",
        lambda k: "rs__",
    ],
)
def test_wrong_keys_are_rejected(store, mangle) -> None:
    key, _ = store.create_api_key("read")
    assert store.verify_api_key(mangle(key)) is None
    assert store.verify_api_key(key) is not None


def test_scopes_and_uniqueness(store) -> None:
    with pytest.raises(ConfigError, match="scope"):
        store.create_api_key("root")
    keys = {store.create_api_key("admin")[0] for _ in range(5)}
    assert len(keys) == 5
    assert {k["scope"] for k in store.list_api_keys()} == {"admin"}
