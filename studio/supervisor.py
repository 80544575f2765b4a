"""The one owner of dead workers in the studio process: their running job becomes interrupted.

A worker can die without a word: its process killed, its node powered off, its network cut.
Two signals reach the studio: Ray's actor-death notice (immediate, `worker_died`, called by
`studio.ray_workers`), and, for anything else, a heartbeat older than `HEARTBEAT_TIMEOUT_S`
(found by a sweep every `HEARTBEAT_S`). Either way the dead worker's row is ended and its
running job interrupted, guarded by the row's status and worker, so a job is never run by
two workers at once and never lost: it is on the Jobs panel as interrupted, with Retry.
Nothing re-runs it on its own (minutes of GPU time the director did not ask for now); the
other workers keep serving the queue, and a restarted actor registers as a new worker.
"""

from __future__ import annotations

import logging
import threading

from storage import Storage, StorageError
from storage.workers import HEARTBEAT_S, HEARTBEAT_TIMEOUT_S

log = logging.getLogger(__name__)


class WorkerSupervisor:
    def __init__(self, storage: Storage, check_s: float = HEARTBEAT_S) -> None:
        self.storage = storage
        self.check_s = check_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # a death notice and a sweep may find the same worker

    def start(self) -> WorkerSupervisor:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="worker-supervisor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def worker_died(self, worker_id: str, reason: str) -> list[int]:
        """End the worker's row and interrupt its running job(s); the ids interrupted."""
        with self._lock:
            label = self.storage.workers.get(worker_id).label
            interrupted = self.storage.renders.end_dead_worker(
                worker_id, reason, f"its worker {label} died mid-render ({reason}); nothing was resumed, Retry renders it again"
            )
        if interrupted:
            log.warning("worker %s died (%s): render(s) %s interrupted", label, reason, interrupted)
        return interrupted

    def sweep(self) -> list[int]:
        """Handle every worker silent past the timeout; the render ids interrupted."""
        interrupted: list[int] = []
        for worker in self.storage.workers.silent():
            interrupted += self.worker_died(worker.id, f"no heartbeat for {HEARTBEAT_TIMEOUT_S:g} s")
        return interrupted

    def _loop(self) -> None:
        while not self._stop.wait(self.check_s):
            try:
                self.sweep()
            except StorageError:  # the database is unreachable for now: the next sweep tries again
                log.exception("worker sweep failed")
