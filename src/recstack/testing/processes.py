"""Stopping a server started in its own session (``start_new_session=True``) by a test or a
benchmark: SIGTERM to its process group, SIGKILL if it has not stopped in time."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process_group(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop ``process`` and every process of its group (workers, scheduler)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
