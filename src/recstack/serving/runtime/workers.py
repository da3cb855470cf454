"""Several uvicorn workers on one port, each accepting on its own listening socket.

With one listening socket shared by every worker, whichever worker wakes first accepts every
connection waiting in the queue: a client that opens its keep-alive connections in one burst
(a load balancer's pool, a benchmark) finds nearly all of them on one worker, and the other
core idles; 16 connections were seen split 15 to 1. Here each worker binds the port with
``SO_REUSEPORT`` and the kernel spreads new connections over the listening workers by a hash
of their addresses. The parent holds the port bound but never listens on it, so the port stays
taken while a worker restarts and no connection waits on a socket nobody accepts from.

The parent restarts a worker that dies, and one that hangs: each worker's event loop writes
the time into a shared heartbeat every ``BEAT_SECONDS`` once it serves, and a worker whose
heartbeat is older than ``timeout`` (a request that blocks the loop, a deadlock, a threadpool
whose every thread is stuck) is killed and replaced, so the port keeps answering instead of
queuing connections behind it. On SIGINT or
SIGTERM the parent stops every worker (SIGTERM: uvicorn's graceful shutdown, then SIGKILL after
``STOP_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("recstack.serving")

STOP_TIMEOUT = 30.0  # seconds a worker has to finish its requests and flush its logs
BACKLOG = 2048  # uvicorn's default listen backlog
BEAT_SECONDS = 1.0  # how often a serving worker's event loop writes its heartbeat
DEFAULT_TIMEOUT = 60.0  # seconds without a heartbeat after which a worker counts as hung


class PortInUseError(OSError):
    """Another process listens on the port the server was asked to take."""


def port_socket(host: str, port: int, *, exclusive: bool = False) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` (port 0: a free one), not
    listening: what each worker's own socket joins.

    ``exclusive`` first checks that no process holds the port: a second server started with
    ``SO_REUSEPORT`` on the same port would otherwise silently take half the connections.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    if exclusive and port:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind(address)
            except OSError as exc:
                message = f"cannot listen on {host}:{port}: {exc.strerror}"
                raise PortInUseError(exc.errno, message) from exc
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _worker(config: dict[str, Any], host: str, port: int, beat: Any) -> None:
    """One worker process: its own listening socket, then uvicorn's server on it, with the
    heartbeat beside it on the same event loop."""
    import uvicorn

    sock = port_socket(host, port)
    sock.listen(BACKLOG)
    uv_config = uvicorn.Config(**config)
    server = uvicorn.Server(uv_config)

    async def serve() -> None:
        heart = asyncio.create_task(_beat(server, beat))
        try:
            await server.serve(sockets=[sock])
        finally:
            heart.cancel()

    with asyncio.Runner(loop_factory=uv_config.get_loop_factory()) as runner:
        runner.run(serve())


async def _beat(server: Any, beat: Any) -> None:
    """Write ``time.monotonic()`` (one clock for every process) into ``beat`` while the worker
    can serve; nothing before the server has started (loading a model may take a while).

    Each beat first passes through the request threadpool (anyio's default limiter, the one
    synchronous routes run on): a worker whose loop turns but whose threads are all stuck
    cannot answer either, and stops beating too.
    """
    import anyio.to_thread

    while True:
        if server.started:
            await anyio.to_thread.run_sync(_nothing)
            beat.value = time.monotonic()
        await asyncio.sleep(BEAT_SECONDS)


def _nothing() -> None:
    """What a heartbeat runs on the threadpool: only getting a thread counts."""


def hung(beat: float, now: float, timeout: float) -> bool:
    """Whether a worker whose last heartbeat was ``beat`` counts as hung at ``now``; 0 means
    it has not started serving yet.

    >>> hung(0.0, 500.0, 60.0), hung(100.0, 150.0, 60.0), hung(100.0, 161.0, 60.0)
    (False, False, True)
    """
    return beat > 0 and now - beat > timeout


class Workers:
    """``count`` worker processes serving the uvicorn ``config`` (keyword arguments of
    ``uvicorn.Config``) on ``host:port``; one silent for ``timeout`` seconds is replaced."""

    def __init__(
        self,
        count: int,
        host: str,
        port: int,
        config: dict[str, Any],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.count, self.config, self.timeout = count, config, float(timeout)
        self._reserved = port_socket(host, port, exclusive=True)
        self.host, self.port = host, int(self._reserved.getsockname()[1])
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self._beats: list[Any] = []
        self._stop = threading.Event()

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, restarting workers that die or hang."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._beats = [self._context.Value("d", 0.0, lock=False) for _ in range(self.count)]
            self._processes = [self._start(n) for n in range(self.count)]
            while not self._stop.wait(0.5):
                for n, process in enumerate(self._processes):
                    if self._stop.is_set():
                        break
                    if not process.is_alive():
                        log.warning(
                            "worker %s exited (%s): starting another", process.pid, process.exitcode
                        )
                        self._processes[n] = self._start(n)
                    elif hung(self._beats[n].value, time.monotonic(), self.timeout):
                        log.warning(
                            "worker %s sent no heartbeat for %.0f s: killing it, starting another",
                            process.pid,
                            time.monotonic() - self._beats[n].value,
                        )
                        process.kill()
                        process.join()
                        self._processes[n] = self._start(n)
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._reserved.close()

    def _start(self, n: int) -> BaseProcess:
        """Worker ``n``, its heartbeat reset (not watched until it serves)."""
        self._beats[n].value = 0.0
        process = self._context.Process(
            target=_worker, args=(self.config, self.host, self.port, self._beats[n]), daemon=False
        )
        process.start()
        return process

    def _on_signal(self, *_: object) -> None:
        self._stop.set()

    def _shutdown(self) -> None:
        for process in self._processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes its requests and shuts down
        for process in self._processes:
            process.join(STOP_TIMEOUT)
            if process.is_alive():
                process.kill()
                process.join()
