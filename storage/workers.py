"""Render workers as rows: each registers, beats while it lives, and ends exactly once.

Why rows and not only the process table of one machine: a team's workers run on other GPU
nodes (Ray actors), so the only place every studio process can see them is the shared
database. A worker whose heartbeat is older than `HEARTBEAT_TIMEOUT_S` is dead as far as the
queue is concerned: the studio's supervisor interrupts its running job (see
`RenderRepository.end_dead_worker`) within that bound, even when no death notice came.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from . import validation as check
from .models import Worker
from .records import WorkerRecord
from .rows import Repository, get_row

HEARTBEAT_S = 2.0  # how often a live worker refreshes its row
HEARTBEAT_TIMEOUT_S = 15.0  # a worker silent this long is dead: its job is interrupted


def end_worker_row(worker: Worker, reason: str, now: datetime) -> None:
    """End a worker's row inside the caller's transaction; a row already ended keeps its first reason."""
    if worker.ended_at is None:
        worker.ended_at = now
        worker.end_reason = check.notes("reason", reason)


class WorkerRepository(Repository):
    def register(self, *, host: str, pid: int, device: str, model: str, memory: str) -> WorkerRecord:
        """A new live worker row (a fresh id per process start, so a restarted actor is a new worker)."""
        now = self._now()
        worker = Worker(
            id=uuid.uuid4().hex,
            host=check.name("host", host),
            pid=int(pid),
            device=check.name("device", device),
            model=check.name("model", model),
            memory=check.name("memory", memory),
            started_at=now,
            heartbeat_at=now,
        )
        with self._db.transaction(exclusive=False) as session:
            session.add(worker)
            session.flush()
            return worker.to_record()

    def get(self, worker_id: str) -> WorkerRecord:
        with self._db.transaction(exclusive=False) as session:
            return get_row(session, Worker, worker_id, "worker_id").to_record()  # type: ignore[arg-type]

    def heartbeat(self, worker_id: str) -> WorkerRecord:
        """Refresh a live worker's heartbeat; an ended one stays ended (the row says why)."""
        with self._db.transaction(exclusive=False) as session:
            worker = get_row(session, Worker, worker_id, "worker_id")  # type: ignore[arg-type]
            if worker.ended_at is None:
                worker.heartbeat_at = self._now()
            return worker.to_record()

    def end(self, worker_id: str, reason: str) -> WorkerRecord:
        """Mark a worker ended (it stopped, or it was found dead); the first reason given stays."""
        with self._db.transaction(exclusive=False) as session:
            worker = get_row(session, Worker, worker_id, "worker_id")  # type: ignore[arg-type]
            end_worker_row(worker, reason, self._now())
            return worker.to_record()

    def live(self) -> list[WorkerRecord]:
        """Workers not ended and heard from within the timeout, oldest first: the engine panel's list."""
        with self._db.transaction(exclusive=False) as session:
            query = (
                select(Worker)
                .where(Worker.ended_at.is_(None), Worker.heartbeat_at >= self._deadline())
                .order_by(Worker.started_at, Worker.id)
            )
            return [worker.to_record() for worker in session.scalars(query)]

    def silent(self) -> list[WorkerRecord]:
        """Workers not ended whose heartbeat is older than the timeout: dead, though no one said so."""
        with self._db.transaction(exclusive=False) as session:
            query = select(Worker).where(Worker.ended_at.is_(None), Worker.heartbeat_at < self._deadline())
            return [worker.to_record() for worker in session.scalars(query)]

    def _deadline(self) -> datetime:
        return self._now() - timedelta(seconds=HEARTBEAT_TIMEOUT_S)
