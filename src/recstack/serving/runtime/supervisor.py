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


def command(
    host: str,
    port: int,
    workers: int,
    log_level: str,
    *,
    with_scheduler: bool = False,
    worker_timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """The ``argv`` that runs the supervisor with these options."""
    return [
        sys.executable,
        "-m",
        __name__,
        f"--host={host}",
        f"--port={port}",
        f"--workers={workers}",
        f"--log-level={log_level}",
        f"--worker-timeout={worker_timeout}",
        *(["--with-scheduler"] if with_scheduler else []),
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


def run(
    host: str,
    port: int,
    workers: int,
    log_level: str,
    *,
    with_scheduler: bool = False,
    worker_timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Start ``workers`` uvicorn workers building the app from the environment (and the
    scheduler beside them), replacing one silent for ``worker_timeout`` seconds; clean up the
    shared files when they stop."""
    import uvicorn

    for name in SINGLE_THREAD_ENV:  # workers give the parallelism; see app_from_env
        os.environ.setdefault(name, "1")
    shared = None
    # the scheduler tells even a single worker to reload through the shared files
    if workers > 1 or with_scheduler:
        shared = tempfile.mkdtemp(prefix="recstack-workers-")
        if workers > 1:
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", shared)
        if not os.environ.get("RECSTACK_REDIS_URL"):
            # events, purges, item upserts and reloads reach every worker through these files
            SharedGenerations.create(Path(shared) / GENERATIONS_FILE)
            FileBroadcast.create(shared)
            os.environ["RECSTACK_WORKER_STATE_DIR"] = shared
            if workers > 1:
                print(SHARED_FILES_NOTE, file=sys.stderr, flush=True)
    scheduler = start_scheduler() if with_scheduler else None
    config: dict[str, Any] = {
        "app": APP,
        "factory": True,
        "host": host,
        "port": port,
        "log_level": log_level,
        # uvicorn logs each request at INFO: above that level the line is built for nothing
        "access_log": log_level.lower() in ("trace", "debug", "info"),
    }
    try:
        if workers > 1:  # each worker on its own socket, so connections spread over them
            try:
                pool = Workers(workers, host, port, config, timeout=worker_timeout)
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
    args = parser.parse_args(argv)
    run(
        args.host,
        args.port,
        args.workers,
        args.log_level,
        with_scheduler=args.with_scheduler,
        worker_timeout=args.worker_timeout,
    )


if __name__ == "__main__":
    main()
