"""The parent of the server's workers (``workers``): uvicorn and the files the workers share,
nothing else.

``recstack serve`` checks the settings and the store, then replaces itself (``exec``) with this
module, so the process that watches N workers holds a few MiB instead of every import of the
command line (pandas, pyarrow, SciPy: about 100 MiB that no worker shares).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recstack.serving.runtime.broadcast import FileBroadcast
from recstack.serving.runtime.generations import GENERATIONS_FILE, SharedGenerations
from recstack.serving.runtime.workers import DEFAULT_TIMEOUT, PortInUseError, Workers

APP = "recstack.app:app_from_env"  # serving + dashboard, composed above both
SCHEDULER_MODULE = "recstack.serving.runtime.scheduler_process"
SINGLE_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# the store URL ``recstack serve`` created and migrated before starting the workers: a worker
# opening that store skips the migration check (and importing Alembic)
STORE_CHECKED_ENV = "RECSTACK_SERVE_STORE_CHECKED"
SHARED_FILES_NOTE = (
    "note: several workers without RECSTACK_REDIS_URL: changes reach every worker through "
    "shared files, but each worker has its own response cache and rate-limit counters."
)


@dataclass(frozen=True)
class ServeOptions:
    """What ``recstack serve`` starts: the address, the workers (one silent for
    ``worker_timeout`` seconds is replaced) and whether the scheduler runs beside them."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    with_scheduler: bool = False
    worker_timeout: float = DEFAULT_TIMEOUT

    def argv(self) -> list[str]:
        """The command line that runs the supervisor with these options (``main`` parses it)."""
        return [
            sys.executable,
            "-m",
            __name__,
            f"--host={self.host}",
            f"--port={self.port}",
            f"--workers={self.workers}",
            f"--log-level={self.log_level}",
            f"--worker-timeout={self.worker_timeout}",
            *(["--with-scheduler"] if self.with_scheduler else []),
        ]


def start_scheduler() -> subprocess.Popen:
    """The scheduler process (``scheduler_process``), with this process's environment: the
    workers' shared directory is in it, so the scheduler can tell them to reload."""
    env = {**os.environ}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # its jobs are read from the store, not counters
    return subprocess.Popen([sys.executable, "-m", SCHEDULER_MODULE], env=env)


def stop_scheduler(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(options: ServeOptions) -> None:
    """Start the uvicorn workers building the app from the environment (and the scheduler
    beside them); clean up the shared files when they stop."""
    import uvicorn

    for name in SINGLE_THREAD_ENV:  # workers give the parallelism; see app_from_env
        os.environ.setdefault(name, "1")
    shared = None
    # the scheduler tells even a single worker to reload through the shared files
    if options.workers > 1 or options.with_scheduler:
        shared = tempfile.mkdtemp(prefix="recstack-workers-")
        if options.workers > 1:
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", shared)
        if not os.environ.get("RECSTACK_REDIS_URL"):
            # events, purges, item upserts and reloads reach every worker through these files
            SharedGenerations.create(Path(shared) / GENERATIONS_FILE)
            FileBroadcast.create(shared)
            os.environ["RECSTACK_WORKER_STATE_DIR"] = shared
            if options.workers > 1:
                print(SHARED_FILES_NOTE, file=sys.stderr, flush=True)
    scheduler = start_scheduler() if options.with_scheduler else None
    config: dict[str, Any] = {
        "app": APP,
        "factory": True,
        "host": options.host,
        "port": options.port,
        "log_level": options.log_level,
        # uvicorn logs each request at INFO: above that level the line is built for nothing
        "access_log": options.log_level.lower() in ("trace", "debug", "info"),
    }
    try:
        if options.workers > 1:  # each worker on its own socket: connections spread over them
            try:
                pool = Workers(
                    options.workers,
                    options.host,
                    options.port,
                    config,
                    timeout=options.worker_timeout,
                )
            except PortInUseError as exc:
                print(f"recstack serve: {exc.strerror}", file=sys.stderr, flush=True)
                raise SystemExit(1) from None
            pool.run()
        else:
            uvicorn.run(**config)
    finally:
        stop_scheduler(scheduler)
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="recstack serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--with-scheduler", action="store_true")
    parser.add_argument("--worker-timeout", type=float, default=DEFAULT_TIMEOUT)
    run(ServeOptions(**vars(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
