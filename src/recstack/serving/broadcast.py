"""Telling the other workers and replicas about changes, over Redis pub/sub.

Each worker keeps its own in-memory engine. When one worker purges a user, upserts an item or
reloads the model, it publishes a small message on ``{prefix}events``; every other worker's
listener thread applies the same change to its engine (purge from memory, re-read the item from
the store, reload). Without Redis there is no channel: run one worker, or expect other workers
to catch up at their next reload.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

log = logging.getLogger("recstack.serving")

Handler = Callable[[dict[str, Any]], None]


class Broadcast:
    """Publish change messages and run ``handler`` for messages from other processes."""

    def __init__(self, url: str, key_prefix: str = "recstack:") -> None:
        import redis

        self.channel = f"{key_prefix}events"
        self.origin = uuid.uuid4().hex
        self.client = redis.Redis.from_url(url, socket_connect_timeout=2.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, kind: str, **payload: Any) -> None:
        message = json.dumps({"origin": self.origin, "kind": kind, **payload})
        try:
            self.client.publish(self.channel, message)
        except Exception:  # noqa: BLE001 - a lost broadcast must not fail the request
            log.exception("could not broadcast %s", kind)

    def start(self, handler: Handler) -> None:
        """Listen in a daemon thread until ``stop``."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.channel)

        def listen() -> None:
            while not self._stop.is_set():
                try:
                    message = pubsub.get_message(timeout=0.5)
                except Exception:  # noqa: BLE001 - keep listening across connection blips
                    log.exception("broadcast listener error")
                    self._stop.wait(1.0)
                    continue
                if message is None or message.get("type") != "message":
                    continue
                try:
                    body = json.loads(message["data"])
                    if body.get("origin") != self.origin:
                        handler(body)
                except Exception:  # noqa: BLE001 - one bad message must not stop the listener
                    log.exception("could not apply broadcast message")
            pubsub.close()

        self._thread = threading.Thread(target=listen, name="recstack-broadcast", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.client.close()
