"""Several uvicorn workers on one port, each accepting on its own listening socket.

With one listening socket shared by every worker, whichever worker wakes first accepts every
connection waiting in the queue: a client that opens its keep-alive connections in one burst
(a load balancer's pool, a benchmark) finds nearly all of them on one worker, and the other
core idles; 16 connections were seen split 15 to 1. Here each worker binds the port with
``SO_REUSEPORT`` and the kernel spreads new connections over the listening workers by a hash
of their addresses. The parent holds the port bound but never listens on it, so the port stays
taken while a worker restarts and no connection waits on a socket nobody accepts from.

The parent restarts a worker that dies and, on SIGINT or SIGTERM, stops every worker
(SIGTERM: uvicorn's graceful shutdown, then SIGKILL after ``STOP_TIMEOUT``).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("recstack.serving")

STOP_TIMEOUT = 30.0  # seconds a worker has to finish its requests and flush its logs
BACKLOG = 2048  # uvicorn's default listen backlog


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


def _worker(config: dict[str, Any], host: str, port: int) -> None:
    """One worker process: its own listening socket, then uvicorn's server on it."""
    import uvicorn

    sock = port_socket(host, port)
    sock.listen(BACKLOG)
    uvicorn.Server(uvicorn.Config(**config)).run(sockets=[sock])


class Workers:
    """``count`` worker processes serving the uvicorn ``config`` (keyword arguments of
    ``uvicorn.Config``) on ``host:port``."""

    def __init__(self, count: int, host: str, port: int, config: dict[str, Any]) -> None:
        self.count, self.config = count, config
        self._reserved = port_socket(host, port, exclusive=True)
        self.host, self.port = host, int(self._reserved.getsockname()[1])
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self._stop = threading.Event()

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, restarting workers that die."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._processes = [self._start() for _ in range(self.count)]
            while not self._stop.wait(0.5):
                for n, process in enumerate(self._processes):
                    if not process.is_alive() and not self._stop.is_set():
                        log.warning(
                            "worker %s exited (%s): starting another", process.pid, process.exitcode
                        )
                        self._processes[n] = self._start()
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._reserved.close()

    def _start(self) -> BaseProcess:
        process = self._context.Process(
            target=_worker, args=(self.config, self.host, self.port), daemon=False
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
