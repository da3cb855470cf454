"""Telling the other workers and replicas about changes, over Redis pub/sub.

Each worker keeps its own in-memory engine. When one worker purges a user, upserts an item or
reloads the model, it publishes a small message on ``{prefix}events``; every other worker's
listener thread applies the same change to its engine (purge from memory, re-read the item from
the store, reload). Without Redis, ``FileBroadcast`` carries the same messages between the
workers of one host through a memory-mapped file; separate hosts need Redis.
"""

from __future__ import annotations

import fcntl
import json
import logging
import mmap
import os
import struct
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("recstack.serving")

Handler = Callable[[dict[str, Any]], None]


class _Listener:
    """A daemon thread that listens until ``stop``; subclasses give it its loop."""

    _stop: threading.Event
    _thread: threading.Thread | None

    def _listen_in_thread(self, listen: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=listen, name="recstack-broadcast", daemon=True)
        self._thread.start()

    def _stop_listening(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


class Broadcast(_Listener):
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

        self._listen_in_thread(listen)

    def stop(self) -> None:
        self._stop_listening()
        self.client.close()


BROADCAST_FILE = "broadcast.bin"  # in the workers' shared directory
_HEADER_BYTES = 64  # the count of messages ever written, then padding
_SLOT_BYTES = 1024  # per message: int64 sequence number, int32 length, JSON
_SLOT_HEAD = struct.calcsize("<qi")
_CAPACITY = 4096  # messages kept; a worker further behind than this reloads instead
_FILE_BYTES = _HEADER_BYTES + _CAPACITY * _SLOT_BYTES


class FileBroadcast(_Listener):
    """The same messages as ``Broadcast`` between the workers of one host, without Redis.

    Messages go into a ring of fixed-size slots in a memory-mapped file that ``recstack serve
    --workers N`` creates; each worker's listener thread polls the ring's message count and
    applies what other workers wrote since. A worker that fell more than the ring's capacity
    behind (or met a slot already overwritten) cannot know what it missed and reloads.
    Writers take an exclusive ``flock``; a message is complete before the count that exposes
    it moves.
    """

    def __init__(self, directory: Path | str, poll_seconds: float = 0.05) -> None:
        path = Path(directory) / BROADCAST_FILE
        if not path.exists() or path.stat().st_size != _FILE_BYTES:
            raise FileNotFoundError(
                f"{path} is not a broadcast file; create it with FileBroadcast.create"
            )
        self.origin = uuid.uuid4().hex
        self.poll_seconds = poll_seconds
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, _FILE_BYTES)
        self._cursor = self._written()  # messages before this worker loaded are in its load
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def create(directory: Path | str) -> Path:
        """Create (or reset) the empty ring in ``directory``; done once, before the workers."""
        path = Path(directory) / BROADCAST_FILE
        with path.open("wb") as f:
            f.truncate(_FILE_BYTES)
        return path

    def _written(self) -> int:
        return struct.unpack_from("<q", self._map, 0)[0]

    def publish(self, kind: str, **payload: Any) -> None:
        data = json.dumps({"origin": self.origin, "kind": kind, **payload}).encode()
        if len(data) > _SLOT_BYTES - _SLOT_HEAD:  # ids are at most 255 characters: never
            log.error("broadcast message too long to share (%d bytes): %s", len(data), kind)
            return
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                seq = self._written()
                offset = _HEADER_BYTES + (seq % _CAPACITY) * _SLOT_BYTES
                struct.pack_into("<qi", self._map, offset, seq, len(data))
                start = offset + _SLOT_HEAD
                self._map[start : start + len(data)] = data
                struct.pack_into("<q", self._map, 0, seq + 1)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def poll(self, handler: Handler) -> int:
        """Run ``handler`` on every message other workers wrote since the last poll (a
        ``reload`` message when some were lost); returns how many were handled."""
        written = self._written()
        handled = 0
        while self._cursor < written:
            message = self._read(self._cursor, written)
            if message is None:  # lapped: what was missed is unknown, so start afresh
                self._cursor = written
                message = {"kind": "reload", "reason": "missed messages"}
            else:
                self._cursor += 1
                if message.get("origin") == self.origin:
                    continue
            try:
                handler(message)
            except Exception:  # noqa: BLE001 - one bad message must not stop the listener
                log.exception("could not apply broadcast message")
            handled += 1
        return handled

    def _read(self, seq: int, written: int) -> dict[str, Any] | None:
        if written - seq > _CAPACITY:
            return None
        offset = _HEADER_BYTES + (seq % _CAPACITY) * _SLOT_BYTES
        found, length = struct.unpack_from("<qi", self._map, offset)
        start = offset + _SLOT_HEAD
        data = bytes(self._map[start : start + length])
        if found != seq or struct.unpack_from("<q", self._map, offset)[0] != seq:
            return None  # overwritten while we read it
        return json.loads(data)

    def start(self, handler: Handler) -> None:
        """Poll in a daemon thread until ``stop``."""

        def listen() -> None:
            while not self._stop.wait(self.poll_seconds):
                try:
                    self.poll(handler)
                except Exception:  # noqa: BLE001 - keep listening
                    log.exception("broadcast listener error")

        self._listen_in_thread(listen)

    def stop(self) -> None:
        self._stop_listening()
        self._map.close()
        os.close(self._fd)


def make_broadcast(
    redis_url: str | None, worker_state_dir: Path | None, key_prefix: str = "recstack:"
) -> Broadcast | FileBroadcast | None:
    """Over Redis when configured, else through the host's shared directory, else none."""
    if redis_url:
        return Broadcast(redis_url, key_prefix)
    if worker_state_dir is not None:
        return FileBroadcast(worker_state_dir)
    return None
