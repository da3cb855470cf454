"""``recstack stream publish``, ``recstack consume`` and ``recstack stream parked`` end to end."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from recstack.cli.app import app
from recstack.settings import get_settings
from recstack.store import Store


@pytest.fixture
def cli(settings, monkeypatch):  # noqa: ANN201 - returns a runner function
    monkeypatch.setenv("RECSTACK_HOME", str(settings.home))
    monkeypatch.delenv("RECSTACK_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECSTACK_REDIS_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str):  # noqa: ANN202
        result = runner.invoke(app, list(args))
        get_settings.cache_clear()
        return result

    yield run
    get_settings.cache_clear()


def test_consume_needs_a_redis(cli) -> None:
    result = cli("consume", "--idle-exit", "0.1")
    assert result.exit_code == 2 and "RECSTACK_REDIS_URL" in result.output


@pytest.mark.redis
def test_publish_consume_and_show_parked(cli, settings, redis_url, redis_prefix, tmp_path) -> None:
    store = Store.from_settings(settings)
    store.upsert_items([{"item_id": "c1"}, {"item_id": "c2"}])
    events = [
        {"event_id": "a", "user_id": "u1", "item_id": "c1", "event_type": "view",
         "timestamp": 1_700_000_000},
        {"event_id": "b", "user_id": "u1", "item_id": "nope", "event_type": "view",
         "timestamp": 1_700_000_001},
        {"event_id": "c", "user_id": "u2", "item_id": "c2", "event_type": "rating",
         "value": 4.5, "timestamp": "1700000002"},
    ]  # fmt: skip
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    stream = f"{redis_prefix}events"
    common = ("--stream", stream, "--redis-url", redis_url)
    published = cli("stream", "publish", str(path), *common)
    assert published.exit_code == 0, published.output
    assert "published 3 events" in published.output
    consumed = cli("consume", *common, "--idle-exit", "0.3", "--consumer", "t1")
    assert consumed.exit_code == 0, consumed.output
    assert "stored 2" in consumed.output and "parked 1" in consumed.output
    again = cli("consume", *common, "--idle-exit", "0.3", "--consumer", "t1")
    assert "read 0" in again.output  # everything was acknowledged
    parked = cli("stream", "parked", *common, "--json")
    (entry,) = json.loads(parked.output)
    assert "nope" in entry["reason"] and json.loads(entry["fields"]["event"])["event_id"] == "b"
    assert store.stats()["interactions"] == 2
    store.close()


@pytest.mark.redis
def test_publish_reports_the_bad_line(cli, redis_url, redis_prefix, tmp_path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"event_id": "a"}\nnot json\n')
    result = cli("stream", "publish", str(path), "--stream", f"{redis_prefix}e", "--redis-url",
                 redis_url)  # fmt: skip
    assert result.exit_code == 1 and "events.jsonl:2: not JSON" in result.output
