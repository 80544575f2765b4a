"""The render worker: one thread per model device that owns the pipeline and runs queued jobs.

Why a worker and not the request handler: a 241-frame render takes about 14 minutes on a
real GPU, longer than a page stays open. Jobs are rows; the worker claims the oldest queued
one (one transaction, so two workers never take the same row), runs it through
`RenderService.execute`, which saves progress, previews and each decoded shot as they come,
and takes the next. A page only enqueues and reads rows; closing every page changes nothing.
"""

from __future__ import annotations

import logging
import threading
import time

from .renders import RenderService

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often an idle worker looks for jobs queued by another process (the CLI)


class RenderWorker:
    def __init__(self, renders: RenderService, poll_s: float = POLL_S) -> None:
        self.renders = renders
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ended = threading.Condition()  # notified each time this worker ends a job
        self.current: int | None = None  # the render id being run, for the Jobs panel

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> RenderWorker:
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="render-worker", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def wait_for(self, render_id: int, timeout_s: float) -> bool:
        """Block until job `render_id` has ended (whoever ran it); False if it has not within the timeout."""
        deadline = time.monotonic() + timeout_s
        renders = self.renders.storage.renders
        with self._ended:
            while renders.get(render_id).status in ("queued", "running"):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._ended.wait(min(left, self.poll_s))  # woken by this worker; polled for another's
        return True

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish: the running job is cancelled after its current step, queued ones wait for the next start."""
        self._stop.set()
        if self.current is not None:
            self.renders.cancel(self.current)
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        storage = self.renders.storage
        while not self._stop.is_set():
            record = storage.renders.claim_next()
            if record is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            self.current = record.id
            try:
                for _ in self.renders.execute(record):
                    pass
            except Exception:  # the row is already `failed` with the error in words; keep serving the queue
                log.exception("render %s failed", record.id)
            finally:
                self.current = None
                with self._ended:
                    self._ended.notify_all()
