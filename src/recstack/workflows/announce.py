"""Telling running servers, from any process, that the serving alias moved.

Servers with ``RECSTACK_REDIS_URL`` listen on the Redis channel ``{prefix}events`` (see the
serving runtime's broadcast); a ``reload`` message published there makes every worker of every
replica rebuild its engine from the registry, off to the side, and swap it in without failing a
request. Workers without Redis share a memory-mapped file only their own host's processes can
reach; a retrain started inside a server (the admin API) reaches them through that worker.
"""

from __future__ import annotations

import json
import uuid

from recstack.settings import Settings

CHANNEL_SUFFIX = "events"


def reload_message(reason: str) -> str:
    """The wire form of a reload request (an origin no worker has, so every worker acts).

    >>> json.loads(reload_message("promoted"))["kind"]
    'reload'
    """
    return json.dumps(
        {"origin": f"announce-{uuid.uuid4().hex}", "kind": "reload", "reason": reason}
    )


def announce_reload(
    settings: Settings, *, key_prefix: str = "recstack:", reason: str = "champion moved"
) -> str:
    """Ask every server listening on Redis to reload; returns what was done, in words."""
    if not settings.redis_url:
        return (
            "not announced: no RECSTACK_REDIS_URL; servers serve the new champion after "
            "POST /v1/admin/reload or a restart"
        )
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2.0)
    try:
        listeners = client.publish(f"{key_prefix}{CHANNEL_SUFFIX}", reload_message(reason))
    finally:
        client.close()
    return f"reload announced over Redis to {int(listeners)} listening worker(s)"
