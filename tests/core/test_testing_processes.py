"""Stopping a process group: SIGTERM first, SIGKILL for a process that ignores it."""

from __future__ import annotations

import signal
import subprocess
import sys

from recstack.testing.processes import stop_process_group


def test_a_group_is_stopped_by_sigterm_and_a_stubborn_one_by_sigkill():
    polite = subprocess.Popen(["sleep", "60"], start_new_session=True)
    stop_process_group(polite)
    assert polite.returncode == -signal.SIGTERM
    ignores = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
    stubborn = subprocess.Popen(
        [sys.executable, "-c", ignores], start_new_session=True, stdout=subprocess.PIPE
    )
    assert stubborn.stdout.readline() == b"1\n"  # the handler is set
    stop_process_group(stubborn, timeout=0.5)
    assert stubborn.returncode == -signal.SIGKILL
    stop_process_group(stubborn)  # already stopped: nothing to do
