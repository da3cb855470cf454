"""Consume events from a Redis Stream into the store: at-least-once, idempotent, never blocked.

The contract, and why each part is there:

* **Consumer group.** Many consumers (processes, hosts) share one stream; Redis hands each
  message to one of them and keeps it *pending* for that consumer until it is acknowledged.
* **Acknowledge after commit.** A batch is written with ``Store.add_events`` (the one write
  path: committed before it returns) and only then ``XACK``-ed. A consumer that dies between
  the two leaves its messages pending; whoever reads them again stores nothing twice, because
  the store skips event ids it already holds. So: at-least-once delivery, exactly-once effect.
* **Bad messages parked, stream never blocked.** A message that is not a valid event, or names
  an item the catalogue lacks, is copied to the dead-letter stream with its reason and
  acknowledged in one ``MULTI`` (never both lost and never both kept); its neighbours in the
  batch are stored. A message delivered ``max_deliveries`` times without being acknowledged
  (it keeps killing its consumers) is parked the same way.
* **Dead consumers' messages reclaimed.** ``XAUTOCLAIM`` moves messages pending longer than
  ``claim_idle_ms`` from any consumer to this one; a restarted consumer with the same name
  first re-reads its own pending messages.
* **Database down.** The batch is kept and its write retried with back-off; nothing is
  acknowledged meanwhile and nothing is parked for it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from recstack.errors import RecstackError
from recstack.store.event_rows import EventRow
from recstack.workflows.stream_messages import message_event, parked_fields

Message = tuple[str, dict[Any, Any] | None]


def default_consumer() -> str:
    """``host-pid``: unique per process, readable in ``XINFO CONSUMERS``."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class StreamOptions:
    """Where to read from and how (see the module docstring)."""

    stream: str = "recstack:events"
    group: str = "recstack"
    consumer: str = field(default_factory=default_consumer)
    dead_letter: str | None = None  # default: "<stream>:dead"
    batch: int = 200
    block_ms: int = 1_000
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    create_items: bool = False

    @property
    def dead_stream(self) -> str:
        return self.dead_letter or f"{self.stream}:dead"


@dataclass
class ConsumeStats:
    """Counts since the consumer started."""

    read: int = 0
    stored: int = 0
    duplicates: int = 0
    parked: int = 0
    reclaimed: int = 0
    retries: int = 0


def _sid(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class StreamConsumer:
    """One member of a consumer group writing a stream's events into ``store``."""

    def __init__(self, client: Any, store: Any, options: StreamOptions | None = None) -> None:
        self.redis = client
        self.store = store
        self.options = options or StreamOptions()
        self.stats = ConsumeStats()
        self._own_backlog = True  # first read this consumer's own pending messages
        self._claim_cursor = "0-0"

    def ensure_group(self) -> None:
        """Create the stream and group if missing (the group starts at the stream's start)."""
        try:
            self.redis.xgroup_create(self.options.stream, self.options.group, id="0", mkstream=True)
        except Exception as exc:  # noqa: BLE001 - redis' ResponseError; only BUSYGROUP is fine
            if "BUSYGROUP" not in str(exc):
                raise

    # ---- reading ------------------------------------------------------------------------------
    def next_batch(self, block_ms: int | None = None) -> list[Message]:
        """Messages to handle next: own pending ones, then reclaimed ones, then new ones."""
        o = self.options
        if self._own_backlog:
            own = self._read("0", None)
            if own:
                return own
            self._own_backlog = False
        claimed = self.reclaim()
        if claimed:
            return claimed
        return self._read(">", o.block_ms if block_ms is None else block_ms)

    def _read(self, start: str, block_ms: int | None) -> list[Message]:
        o = self.options
        answer = self.redis.xreadgroup(
            o.group, o.consumer, {o.stream: start}, count=o.batch, block=block_ms
        )
        if not answer:
            return []
        return [(_sid(mid), fields) for mid, fields in answer[0][1]]

    def reclaim(self) -> list[Message]:
        """Take over messages other consumers left pending for ``claim_idle_ms`` or more."""
        o = self.options
        cursor, claimed, *_ = self.redis.xautoclaim(
            o.stream,
            o.group,
            o.consumer,
            o.claim_idle_ms,
            start_id=self._claim_cursor,
            count=o.batch,
        )
        self._claim_cursor = _sid(cursor)
        messages = [(_sid(mid), fields) for mid, fields in claimed]
        self.stats.reclaimed += len(messages)
        return messages

    def _deliveries(self, ids: Sequence[str]) -> dict[str, int]:
        if not ids:
            return {}
        o = self.options
        entries = self.redis.xpending_range(
            o.stream,
            o.group,
            min=ids[0],
            max=ids[-1],
            count=2 * max(len(ids), o.batch),
            consumername=o.consumer,
        )
        return {_sid(e["message_id"]): int(e["times_delivered"]) for e in entries}

    # ---- handling -----------------------------------------------------------------------------
    def handle(self, messages: Sequence[Message]) -> None:
        """Store the batch's events, park its bad messages, then acknowledge all of them."""
        if not messages:
            return
        self.stats.read += len(messages)
        deliveries = self._deliveries(sorted((m for m, _ in messages), key=_order))
        good: list[tuple[str, dict[Any, Any], EventRow]] = []
        parked: list[tuple[str, dict[Any, Any], str]] = []
        gone: list[str] = []
        for mid, fields in messages:
            if fields is None:  # deleted from the stream while pending: nothing to store
                gone.append(mid)
                continue
            if deliveries.get(mid, 1) > self.options.max_deliveries:
                n = deliveries[mid]
                parked.append((mid, fields, f"delivered {n} times without being acknowledged"))
                continue
            try:
                good.append((mid, fields, message_event(fields)))
            except RecstackError as exc:
                parked.append((mid, fields, str(exc)))
        stored = self._store(good, parked)
        self._settle([mid for mid, _, _ in stored] + gone, parked)

    def _store(
        self,
        good: list[tuple[str, dict[Any, Any], EventRow]],
        parked: list[tuple[str, dict[Any, Any], str]],
    ) -> list[tuple[str, dict[Any, Any], EventRow]]:
        """Commit the good events (retrying while the database fails); events the store
        refuses one by one (an unknown item) move to ``parked``. Returns the stored ones."""
        if not good:
            return []
        try:
            self._write([row for _, _, row in good])
            return good
        except RecstackError:
            pass  # some event of the batch is refused: find which, store the rest
        kept = []
        for mid, fields, row in good:
            try:
                self._write([row])
                kept.append((mid, fields, row))
            except RecstackError as exc:
                parked.append((mid, fields, str(exc)))
        return kept

    def _write(self, rows: list[EventRow]) -> None:
        delay = 0.5
        while True:
            try:
                new = self.store.add_events(rows, create_items=self.options.create_items)
                break
            except RecstackError:
                raise
            except Exception:  # noqa: BLE001 - the database failed: keep the batch, retry
                self.stats.retries += 1
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        self.stats.stored += new
        self.stats.duplicates += len(rows) - new

    def _settle(self, ack: list[str], parked: list[tuple[str, dict[Any, Any], str]]) -> None:
        o = self.options
        pipe = self.redis.pipeline(transaction=True)
        for mid, fields, reason in parked:
            pipe.xadd(o.dead_stream, parked_fields(fields, mid, reason, o.consumer))
        ids = ack + [mid for mid, _, _ in parked]
        if ids:
            pipe.xack(o.stream, o.group, *ids)
        pipe.execute()
        self.stats.parked += len(parked)

    # ---- running ------------------------------------------------------------------------------
    def run(
        self,
        stop: threading.Event | None = None,
        *,
        idle_exit_s: float | None = None,
        on_batch: Callable[[ConsumeStats], None] | None = None,
    ) -> ConsumeStats:
        """Consume until ``stop`` is set (the current batch is finished first) or, with
        ``idle_exit_s``, until nothing arrived for that long."""
        stop = stop or threading.Event()
        self.ensure_group()
        last = time.monotonic()
        while not stop.is_set():
            messages = self.next_batch()
            if messages:
                self.handle(messages)
                last = time.monotonic()
                if on_batch is not None:
                    on_batch(self.stats)
            elif idle_exit_s is not None and time.monotonic() - last >= idle_exit_s:
                break
        return self.stats


def _order(mid: str) -> tuple[int, int]:
    ms, _, seq = mid.partition("-")
    return int(ms), int(seq or 0)
