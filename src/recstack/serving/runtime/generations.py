"""Per-user generations for the in-process cache: one process's, or shared by one host's workers.

A generation says "this user changed" (see ``cache``). ``LocalGenerations`` keeps them in a
dict, which is enough for one worker. ``SharedGenerations`` keeps them in a memory-mapped file
that ``recstack serve --workers N`` creates before the workers start, so without Redis an event
or a purge posted to one worker still reaches the others. Their next request for that user
re-reads the user's history from the store.

The file is ``SLOTS + 1`` int64 values: the global change counter, then one slot per user hash.
Users whose hashes share a slot also share changes. That only costs a spurious re-read from
the store, never a stale answer. Writers take an exclusive ``flock`` (between processes) and
a thread lock (between the threads of one process). Readers take no lock: an aligned 8-byte
load sees either the old value or the new one.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
from pathlib import Path

import numpy as np

GENERATIONS_FILE = "generations.bin"  # in the workers' shared directory
SLOTS = 1 << 22  # 32 MiB, mapped (pages are touched on use); at 162K users ~4% share a slot


class LocalGenerations:
    """Generations of this process only. Callers hold their own lock around ``bump``."""

    def __init__(self) -> None:
        self._clock = 0
        self._by_user: dict[str, int] = {}

    def clock(self) -> int:
        return self._clock

    def get(self, user_hash: str) -> int:
        return self._by_user.get(user_hash, 0)

    def bump(self, user_hashes: list[str]) -> list[tuple[int, int]]:
        """Move each user to a fresh generation; ``(previous, new)`` per user."""
        out = []
        for uh in user_hashes:
            self._clock += 1
            out.append((self._by_user.get(uh, 0), self._clock))
            self._by_user[uh] = self._clock
        return out

    def drop(self, user_hash: str) -> None:
        """Forget the user (a purge): no trace of them is left here."""
        self._by_user.pop(user_hash, None)

    def holds(self, user_hash: str) -> bool:
        return user_hash in self._by_user


class SharedGenerations:
    """Generations in a file shared by the worker processes of one host."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        size = (SLOTS + 1) * 8
        if not self.path.exists() or self.path.stat().st_size != size:
            raise FileNotFoundError(
                f"{self.path} is not a generations file; create it with SharedGenerations.create"
            )
        self._fd = os.open(self.path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, size)  # shared, writable
        # a plain ndarray over the mapping: indexing it is far cheaper than np.memmap's
        self._table = np.frombuffer(self._map, dtype=np.int64)
        self._lock = threading.Lock()

    @staticmethod
    def create(path: Path | str) -> Path:
        """Create (or reset) the zeroed file; done once, before the workers start."""
        path = Path(path)
        with path.open("wb") as f:
            f.truncate((SLOTS + 1) * 8)
        return path

    @staticmethod
    def slot(user_hash: str) -> int:
        return 1 + int(user_hash[:8], 16) % SLOTS

    def clock(self) -> int:
        return int(self._table[0])

    def get(self, user_hash: str) -> int:
        return int(self._table[self.slot(user_hash)])

    def bump(self, user_hashes: list[str]) -> list[tuple[int, int]]:
        """Move each user to a fresh generation (unique across the workers)."""
        slots = [self.slot(uh) for uh in user_hashes]
        out = []
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                clock = int(self._table[0])
                for s in slots:
                    clock += 1
                    out.append((int(self._table[s]), clock))
                    self._table[s] = clock
                self._table[0] = clock
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        return out

    def drop(self, user_hash: str) -> None:
        """A purge is a change the other workers must see; the slot keeps only a number."""
        self.bump([user_hash])

    def holds(self, user_hash: str) -> bool:
        """Slots hold counters shared by hashes, nothing that belongs to one user."""
        return False

    def close(self) -> None:
        del self._table
        self._map.close()
        os.close(self._fd)
