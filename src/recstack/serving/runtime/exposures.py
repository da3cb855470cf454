"""The exposure writer: served lists go to the store in batches, off the request path.

A request only appends its exposure record to a bounded in-memory queue (a lock and a list
append); one background thread writes whatever has gathered every ``interval`` seconds, or
sooner once ``batch`` records wait, in one transaction. The queue is bounded so a store
outage cannot grow the worker's memory: past ``capacity`` records, new ones are dropped and
counted (``dropped``). ``close`` writes what is left (server shutdown).

On ``kill -9`` what is still queued is lost: at most ``interval`` seconds of exposures (plus
one write in flight). ``benchmarks/exposure_loss.py`` measures it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("recstack.serving")

Sink = Callable[[Sequence[Any]], int]


class ExposureWriter:
    """Collect exposure records and write them in batches from a daemon thread."""

    def __init__(
        self,
        sink: Sink,
        *,
        capacity: int = 100_000,
        batch: int = 2_000,
        interval: float = 0.2,
    ) -> None:
        self.sink = sink
        self.capacity = capacity
        self.batch = batch
        self.interval = interval
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self._queue: list[Any] = []
        self._writing: list[Any] = []  # the batch taken from the queue, until it is written
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="recstack-exposures", daemon=True)
        self._thread.start()

    def offer(self, record: Any) -> bool:
        """Queue one record; False (and counted as dropped) when the queue is full."""
        with self._lock:
            if len(self._queue) >= self.capacity:
                self.dropped += 1
                return False
            self._queue.append(record)
            size = len(self._queue)
        if size >= self.batch:
            self._wake.set()
        return True

    def holds(self, match: Callable[[Any], bool]) -> bool:
        """Whether a record still queued or being written satisfies ``match``: a reader of the
        store flushes only when what it looks for is not there yet."""
        with self._lock:
            return any(map(match, self._queue)) or any(map(match, self._writing))

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything queued now; True when the queue emptied within ``timeout``."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self._queue or self._writing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is left, then stop the thread."""
        self.flush(timeout)
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._lock:
                records, self._queue = self._queue, []
                self._writing = records
            if records:
                self._write(records)
            with self._idle:
                self._writing = []
                self._idle.notify_all()
            if self._stop and not self.pending:
                return

    def _write(self, records: list[Any]) -> None:
        for start in range(0, len(records), self.batch):
            chunk = records[start : start + self.batch]
            try:
                self.sink(chunk)
                self.written += len(chunk)
            except Exception:  # noqa: BLE001 - keep the records for the next round, bounded
                self.failures += 1
                log.exception("could not write %d exposures; retrying", len(chunk))
                self._requeue(records[start:])
                time.sleep(min(self.interval * 5, 2.0))
                return

    def _requeue(self, records: list[Any]) -> None:
        with self._lock:
            room = max(self.capacity - len(self._queue), 0)
            kept = records[:room]
            self.dropped += len(records) - len(kept)
            self._queue[:0] = kept
