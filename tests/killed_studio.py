"""A studio process killed with SIGKILL at a chosen moment, as a crash kills it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from engine.weights import REPO_ROOT, TINY_WEIGHTS, WEIGHTS_ENV


def kill_at_first_line(code: str, *args: str, timeout_s: float = 300) -> str:
    """Run `code` (a studio script on the tiny model) and SIGKILL it once it prints its first line; that line.

    The script prints when it reaches the moment to kill it at, then sleeps: the kill lands
    exactly there, with the process still inside the render.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO_ROOT,
        env={**os.environ, WEIGHTS_ENV: str(TINY_WEIGHTS), "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(timeout_s, child.kill)
    watchdog.start()
    try:
        line = child.stdout.readline()
        assert line.strip(), f"the studio process ended before it got there (rc {child.wait(60)})"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
        return line
    finally:
        watchdog.cancel()
        child.kill()
        child.stdout.close()
