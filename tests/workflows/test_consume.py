"""The stream consumer against a real Redis and both stores: at-least-once, idempotent, parked
bad messages, reclaimed pending messages, and a consumer process killed mid-batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from recstack.errors import DataError
from recstack.store import Store
from recstack.workflows.consume import StreamConsumer, StreamOptions
from recstack.workflows.stream_messages import event_message, message_event, publish_events

ITEMS = [f"i{n}" for n in range(20)]


def event(n: int, item: str | None = None) -> dict:
    return {
        "event_id": f"e{n}",
        "user_id": f"u{n % 7}",
        "item_id": item or ITEMS[n % len(ITEMS)],
        "event_type": "view",
        "timestamp": 1_600_000_000 + n,
    }


def stored_ids(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT event_id FROM interactions"))]


@pytest.fixture
def store(store_settings) -> Store:
    s = Store.from_settings(store_settings)
    s.upsert_items([{"item_id": i} for i in ITEMS])
    yield s
    s.close()


@pytest.fixture
def rds(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def options(prefix: str, **kw) -> StreamOptions:
    base = {"stream": f"{prefix}events", "group": "g", "consumer": "c1", "block_ms": 50}
    return StreamOptions(**{**base, **kw})


# ---- messages (no Redis) ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({b"event": b"{not json"}, "field 'event' is not JSON"),
        ({b"event": b"[1, 2]"}, "must be a JSON object, got list"),
        ({b"hello": b"world"}, "not an event: missing event_id"),
        ({**event_message(event(1)), "x": "1"}, "no other fields"),
        (
            {"event": '{"event_id":"e","user_id":"u","item_id":"i","event_type":"view"}'},
            "timestamp",
        ),
        ({**{k: str(v) for k, v in event(1).items()}, "timestamp": "soon"}, "not epoch seconds"),
        ({**{k: str(v) for k, v in event(1).items()}, "colour": "red"}, "unknown event fields"),
        ({b"event_id": b"\xff\xfe"}, "not UTF-8"),
    ],
)
def test_a_message_that_is_not_an_event_says_why(fields, reason) -> None:
    with pytest.raises(DataError, match=reason):
        message_event(fields)


def test_both_message_forms_give_the_same_event() -> None:
    flat = {k.encode(): str(v).encode() for k, v in event(3).items()}
    assert message_event(flat) == message_event(event_message(event(3)))


# ---- one consumer ----------------------------------------------------------------------------
@pytest.mark.redis
def test_stores_acks_and_parks_without_blocking(rds, redis_prefix, store) -> None:
    opts = options(redis_prefix, batch=4)
    stream = opts.stream
    publish_events(rds, stream, [event(n) for n in range(5)])
    rds.xadd(stream, {"event": "{oops"})  # not JSON
    rds.xadd(stream, {"colour": "red"})  # not an event
    publish_events(rds, stream, [event(99, item="no-such-item")])  # refused by the store
    publish_events(rds, stream, [event(2)])  # a duplicate event id
    publish_events(rds, stream, [event(n) for n in range(5, 10)])
    stats = StreamConsumer(rds, store, opts).run(idle_exit_s=0.3)
    assert sorted(stored_ids(store)) == sorted(f"e{n}" for n in range(10))
    assert (stats.read, stats.stored, stats.duplicates, stats.parked) == (14, 10, 1, 3)
    assert rds.xpending(stream, "g")["pending"] == 0
    parked = {
        f[b"_source_id"].decode(): f[b"_reason"].decode() for _, f in rds.xrange(opts.dead_stream)
    }
    assert len(parked) == 3
    reasons = sorted(parked.values())
    assert any("not JSON" in r for r in reasons)
    assert any("missing event_id" in r for r in reasons)
    assert any("no-such-item" in r for r in reasons)
    unknown = next(f for _, f in rds.xrange(opts.dead_stream) if b"no-such-item" in f[b"_reason"])
    assert message_event({b"event": unknown[b"event"]}).event_id == "e99"  # replayable


@pytest.mark.redis
def test_create_items_stores_events_of_new_items(rds, redis_prefix, store) -> None:
    opts = options(redis_prefix, create_items=True)
    publish_events(rds, opts.stream, [event(1, item="brand-new")])
    StreamConsumer(rds, store, opts).run(idle_exit_s=0.2)
    assert stored_ids(store) == ["e1"] and store.get_item("brand-new") is not None


@pytest.mark.redis
def test_dead_consumers_messages_are_reclaimed_and_stored_once(rds, redis_prefix, store) -> None:
    dead = StreamConsumer(rds, store, options(redis_prefix, consumer="dead", batch=6))
    dead.ensure_group()
    publish_events(rds, dead.options.stream, [event(n) for n in range(12)])
    first = dead.next_batch()  # read, then "died" before storing
    second = dead.next_batch()
    dead._write([message_event(f) for _, f in second])  # stored, then died before the ack
    assert len(first) == len(second) == 6
    assert rds.xpending(dead.options.stream, "g")["pending"] == 12
    time.sleep(0.15)
    rescuer = StreamConsumer(
        rds, store, options(redis_prefix, consumer="rescuer", claim_idle_ms=100)
    )
    stats = rescuer.run(idle_exit_s=0.3)
    assert stats.reclaimed == 12 and stats.stored == 6 and stats.duplicates == 6
    ids = stored_ids(store)
    assert sorted(ids) == sorted(f"e{n}" for n in range(12)) and len(ids) == len(set(ids))
    assert rds.xpending(dead.options.stream, "g")["pending"] == 0


@pytest.mark.redis
def test_a_message_that_keeps_killing_consumers_is_parked(rds, redis_prefix, store) -> None:
    opts = options(redis_prefix, claim_idle_ms=1, max_deliveries=2, batch=1)
    publish_events(rds, opts.stream, [event(7)])
    for name in ("a", "b"):  # two consumers take it and die before acknowledging
        c = StreamConsumer(rds, store, options(redis_prefix, consumer=name, claim_idle_ms=1))
        c.ensure_group()
        assert len(c.next_batch()) == 1
        time.sleep(0.01)
    stats = StreamConsumer(
        rds, store, options(redis_prefix, consumer="c", **{"claim_idle_ms": 1, "max_deliveries": 2})
    ).run(idle_exit_s=0.2)
    assert stats.parked == 1 and stored_ids(store) == []
    ((_, fields),) = rds.xrange(opts.dead_stream)
    assert b"delivered 3 times" in fields[b"_reason"]


# ---- a consumer process killed mid-batch ------------------------------------------------------
def _consume_process(settings, redis_url: str, stream: str, consumer: str, **opts: str):
    env = {
        **os.environ,
        "RECSTACK_HOME": str(settings.home),
        "RECSTACK_DATABASE_URL": settings.store_url,
        "RECSTACK_REDIS_URL": redis_url,
    }
    main = "from recstack.cli.app import main; main()"
    argv = [sys.executable, "-c", main, "consume", "--stream", stream, "--group", "g"]
    argv += ["--consumer", consumer]
    for key, value in opts.items():
        argv += [f"--{key.replace('_', '-')}", value]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.redis
@pytest.mark.slow
def test_consumer_killed_mid_batch_loses_no_acked_event_and_stores_none_twice(
    rds, redis_url, redis_prefix, store, store_settings
) -> None:
    stream, n = f"{redis_prefix}events", 3_000
    published = {f"e{i}" for i in range(n)}
    publish_events(rds, stream, [event(i) for i in range(n)])
    mid_batch_kills = 0
    for attempt in range(4):
        victim = _consume_process(
            store_settings, redis_url, stream, f"victim{attempt}", batch="50", idle_exit="30"
        )
        deadline = time.monotonic() + 60
        start = len(stored_ids(store))
        while len(stored_ids(store)) < start + 300 and time.monotonic() < deadline:
            assert victim.poll() is None, victim.stderr.read().decode()
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        pending = rds.xpending_range(stream, "g", "-", "+", n)
        pending_ids = {p["message_id"] for p in pending}
        delivered = rds.xinfo_groups(stream)[0]["last-delivered-id"]
        acked = {
            message_event(f).event_id
            for mid, f in rds.xrange(stream, max=delivered)
            if mid not in pending_ids
        }
        in_store = set(stored_ids(store))
        assert acked <= in_store, f"acknowledged but not stored: {sorted(acked - in_store)[:5]}"
        mine = sum(p["consumer"] == f"victim{attempt}".encode() for p in pending)
        mid_batch_kills += mine > 0
        print(
            f"kill {attempt}: acknowledged {len(acked)}, stored {len(in_store)}, "
            f"pending of the killed consumer {mine}"
        )
        if mid_batch_kills and len(in_store) < n - 500:
            break
    assert mid_batch_kills >= 1  # at least one kill left a batch read but not acknowledged
    rescuer = _consume_process(
        store_settings, redis_url, stream, "rescuer", claim_idle_ms="200", idle_exit="2"
    )
    out, errs = rescuer.communicate(timeout=120)
    assert rescuer.returncode == 0, errs.decode()
    ids = stored_ids(store)
    assert len(ids) == n and set(ids) == published  # every event once
    assert rds.xpending(stream, "g")["pending"] == 0
    assert rds.xlen(f"{stream}:dead") == 0
    assert b"parked 0" in out
    print(f"after restart: stored {len(ids)} of {n}, distinct {len(set(ids))}; {out.decode()}")
