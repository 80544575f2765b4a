"""The render worker: one thread per model device that owns the pipeline and runs queued jobs.

Why a worker and not the request handler: a 241-frame render takes about 14 minutes on a
real GPU, longer than a page stays open. Jobs are rows; the worker claims the oldest queued
one (one transaction, so two workers never take the same row), runs it through
`RenderService.execute`, which saves progress, previews and each decoded shot as they come,
and takes the next. A page only enqueues and reads rows; closing every page changes nothing.

The same class serves a team's GPUs: a Ray actor (`studio.ray_workers`) hosts one in its own
process, with its own services, so there is one claim-execute loop however the studio runs.
Each worker registers a row (host, pid, device, model, memory preset) and beats every
`HEARTBEAT_S`; the studio's `WorkerSupervisor` interrupts the job of one that falls silent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol

from storage import Storage, StorageError, WorkerRecord
from storage.workers import HEARTBEAT_S

from .engine import EngineService
from .renders import EngineRun, RenderService

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often an idle worker looks for jobs queued by another process (the CLI)


class JobRunner(Protocol):
    """What the studio asks of whatever runs its queue: this process's worker, or a pool of Ray actors."""

    def start(self) -> JobRunner: ...

    def wake(self) -> None: ...

    def wait_for(self, render_id: int, timeout_s: float) -> bool: ...

    def stop(self, timeout_s: float = 30.0) -> None: ...


def wait_for_job(storage: Storage, render_id: int, timeout_s: float, ended: threading.Condition, poll_s: float) -> bool:
    """Block until job `render_id` has ended (whoever ran it); False if it has not within the timeout.

    `ended` is notified by a worker of this process when it ends a job; a job run elsewhere is polled.
    """
    deadline = time.monotonic() + timeout_s
    with ended:
        while storage.renders.get(render_id).status in ("queued", "running"):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ended.wait(min(left, poll_s))
    return True


class WorkerRow:
    """A worker's row while it serves: registered, refreshed every `heartbeat_s` by a thread, ended once.

    Shared by the in-process worker and a Ulysses worker group (whose parent process beats for
    all its ranks); a row found ended (declared dead while slow) registers anew.
    """

    def __init__(self, storage: Storage, device: Callable[[], str], engine: EngineService, heartbeat_s: float) -> None:
        self.storage = storage
        self.device = device
        self.engine = engine
        self.heartbeat_s = heartbeat_s
        self.identity: WorkerRecord | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def start(self) -> WorkerRecord:
        self._stop.clear()
        self.identity = self.register()
        self._beat = threading.Thread(target=self._heartbeat, name="render-worker-heartbeat", daemon=True)
        self._beat.start()
        return self.identity

    def register(self) -> WorkerRecord:
        """A new row for this worker (a restarted group is a new worker, as a restarted Ray actor is)."""
        info = self.engine.info
        self.identity = self.storage.workers.register(
            host=socket.gethostname(), pid=os.getpid(), device=self.device(), model=info.model_name,
            memory=info.memory.mode,
        )  # fmt: skip
        return self.identity

    def stop(self, timeout_s: float, reason: str = "stopped") -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout_s)
        if self.identity is not None:
            self.storage.workers.end(self.identity.id, reason)

    def _heartbeat(self) -> None:
        workers = self.storage.workers
        while not self._stop.wait(self.heartbeat_s):
            assert self.identity is not None
            try:
                if workers.heartbeat(self.identity.id).ended_at is not None:
                    log.warning("worker %s was declared dead; registering again", self.identity.id)
                    self.register()
            except StorageError:  # the database is unreachable for now: the next beat tries again
                log.exception("worker heartbeat failed")


class RenderWorker:
    def __init__(self, renders: RenderService, poll_s: float = POLL_S, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.renders = renders
        self.poll_s = poll_s
        self.row = WorkerRow(renders.storage, lambda: renders.engine.info.device, renders.engine, heartbeat_s)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ended = threading.Condition()  # notified each time this worker ends a job
        self.current: int | None = None  # the render id being run, for the Jobs panel

    @property
    def identity(self) -> WorkerRecord | None:
        """This worker's row while it runs."""
        return self.row.identity

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> RenderWorker:
        if not self.running:
            self._stop.clear()
            self.row.start()
            self._thread = threading.Thread(target=self._loop, name="render-worker", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def wait_for(self, render_id: int, timeout_s: float) -> bool:
        """Block until job `render_id` has ended (whoever ran it); False if it has not within the timeout."""
        return wait_for_job(self.renders.storage, render_id, timeout_s, self._ended, self.poll_s)

    def join(self) -> None:
        """Block until the worker has stopped (a Ray actor's `serve` call waits here)."""
        if self._thread is not None:
            self._thread.join()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish: the running job is cancelled after its current step, queued ones wait for the next start."""
        self._stop.set()
        if self.current is not None:
            self.renders.cancel(self.current)
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.row.stop(timeout_s)

    def run_next(self, worker_id: str, run: EngineRun | None = None) -> int | None:
        """Claim the oldest queued job for `worker_id` and run it to its end; its id, None if none was queued.

        The one claim-execute step: this worker's loop calls it, and so does rank 0 of a Ulysses
        group (`studio.parallel_worker`), with a `run` that spreads the engine over the ranks.
        """
        record = self.renders.storage.renders.claim_next(worker_id)
        if record is None:
            return None
        self.current = record.id
        try:
            for _ in self.renders.execute(record, run):
                pass
        except Exception:  # the row is already `failed` with the error in words; keep serving the queue
            log.exception("render %s failed", record.id)
        finally:
            self.current = None
            with self._ended:
                self._ended.notify_all()
        return record.id

    def _loop(self) -> None:
        while not self._stop.is_set():
            assert self.identity is not None
            if self.run_next(self.identity.id) is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
