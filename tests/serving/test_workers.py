"""The worker heartbeat: it beats while the worker can serve, and stops when it cannot."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from types import SimpleNamespace

import anyio.to_thread

from recstack.serving.runtime import workers


def test_the_heartbeat_stops_while_every_request_thread_is_stuck(monkeypatch):
    monkeypatch.setattr(workers, "BEAT_SECONDS", 0.05)
    beat = multiprocessing.Value("d", 0.0)
    stuck = threading.Event()

    async def scenario() -> tuple[float, float, float, float]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2
        heart = asyncio.create_task(workers._beat(SimpleNamespace(started=True), beat))
        await asyncio.sleep(0.3)
        serving = beat.value
        blockers = [asyncio.ensure_future(anyio.to_thread.run_sync(stuck.wait)) for _ in range(2)]
        await asyncio.sleep(0.3)  # let a beat already on its way land
        frozen = beat.value
        await asyncio.sleep(0.5)
        still = beat.value
        stuck.set()
        await asyncio.gather(*blockers)
        await asyncio.sleep(0.3)
        heart.cancel()
        return serving, frozen, still, beat.value

    serving, frozen, still, after = asyncio.run(scenario())
    assert serving > 0  # beating while threads are free
    assert still == frozen  # no beat for 0.5 s while both threads were taken
    assert after > still and time.monotonic() - after < 1.0  # beating again once freed


def test_no_heartbeat_before_the_server_has_started(monkeypatch):
    monkeypatch.setattr(workers, "BEAT_SECONDS", 0.02)
    beat = multiprocessing.Value("d", 0.0)

    async def scenario() -> float:
        heart = asyncio.create_task(workers._beat(SimpleNamespace(started=False), beat))
        await asyncio.sleep(0.2)
        heart.cancel()
        return beat.value

    assert asyncio.run(scenario()) == 0.0
