"""Render jobs: created queued, moved only through `_apply_transition`, finished exactly once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from . import validation as check
from .errors import InvalidTransitionError, StorageValidationError
from .media import relative_media_path
from .models import Render, Scene, Worker
from .records import RenderRecord
from .render_status import FINISHED_STATUSES, RENDER_KINDS, UNFINISHED_STATUSES, RenderKind, check_transition
from .rows import Repository, flush_guarded, get_row
from .workers import HEARTBEAT_TIMEOUT_S, end_worker_row

INTERRUPTED_MESSAGE = "the studio stopped before this render finished; nothing was resumed, render again"


class RenderRepository(Repository):
    def create(self, scene_id: int, kind: RenderKind, settings: Mapping[str, Any], seed: int) -> RenderRecord:
        """A queued render of the scene with every setting it will run with, so it can be reproduced."""
        if kind not in RENDER_KINDS:
            raise StorageValidationError("kind", f"must be one of {', '.join(RENDER_KINDS)}, got {kind!r}")
        stored_settings = json_object("settings", settings)
        with self._db.transaction() as session:
            get_row(session, Scene, scene_id, "scene_id")
            render = Render(
                scene_id=scene_id,
                kind=kind,
                status="queued",
                settings=stored_settings,
                seed=check.seed("seed", seed),
                progress=0.0,
                created_at=self._now(),
            )
            session.add(render)
            session.flush()
            return render.to_record()

    def get(self, render_id: int) -> RenderRecord:
        with self._db.transaction() as session:
            return get_row(session, Render, render_id, "render_id").to_record()

    def list_for_scene(self, scene_id: int) -> list[RenderRecord]:
        """Newest first."""
        with self._db.transaction() as session:
            get_row(session, Scene, scene_id, "scene_id")
            query = (
                select(Render).where(Render.scene_id == scene_id).order_by(Render.created_at.desc(), Render.id.desc())
            )
            return [render.to_record() for render in session.scalars(query)]

    def transition(
        self,
        render_id: int,
        status: str,
        *,
        error: str | None = None,
        timings: Mapping[str, Any] | None = None,
        engine: Mapping[str, Any] | None = None,
        latents_path: str | None = None,
        scene_path: str | None = None,
        message: str | None = None,
    ) -> RenderRecord:
        """Move the render to `status`, storing what the job reports with it in the same transaction.

        Allowed: queued -> running | cancelled, running -> done | failed | cancelled, and (by
        start-up recovery) queued | running -> interrupted. A finished render never changes
        again; anything else raises `InvalidTransitionError`.
        """
        details = {
            "error": None if error is None else check.notes("error", error),
            "timings": None if timings is None else json_object("timings", timings),
            "engine": None if engine is None else json_object("engine", engine),
            "latents_path": None if latents_path is None else relative_media_path(latents_path, "latents_path"),
            "scene_path": None if scene_path is None else relative_media_path(scene_path, "scene_path"),
            "message": None if message is None else check.notes("message", message),
        }
        with self._db.transaction() as session:
            render = get_row(session, Render, render_id, "render_id")
            _apply_transition(session, render, status, self._now(), details)
            return render.to_record()

    def set_progress(self, render_id: int, progress: float, message: str | None = None) -> RenderRecord:
        """Report progress (0..1) of a running render, and its progress line; any other status refuses it.

        Returns the row as it stands, so the worker sees a cancel request made meanwhile.
        """
        if isinstance(progress, bool) or not isinstance(progress, (int, float)) or not 0 <= progress <= 1:
            raise StorageValidationError("progress", f"must be a number from 0 to 1, got {progress!r}")
        with self._db.transaction(exclusive=False) as session:
            render = get_row(session, Render, render_id, "render_id")
            if render.status != "running":
                raise InvalidTransitionError(
                    f"render {render_id} is {render.status}; progress can only be reported while it is running"
                )
            render.progress = float(progress)
            if message is not None:
                render.message = check.notes("message", message)
            flush_guarded(session, lambda: _changed_meanwhile(render_id))
            return render.to_record()

    def claim_next(self, worker_id: str | None = None) -> RenderRecord | None:
        """The oldest queued job, moved to running (by `worker_id`) in one transaction; None when none is queued.

        Atomic on every backend. SQLite: the transaction holds the write lock from BEGIN. On
        PostgreSQL the row is read `FOR UPDATE SKIP LOCKED`: a row another worker is claiming
        is skipped, not waited for, so N workers take N different jobs at once. Either way the
        UPDATE also names the status it read (`queued`), so a racing claim cannot win twice;
        the loser tries the next row.
        """
        while True:
            try:
                with self._db.transaction(exclusive=False) as session:
                    query = select(Render).where(Render.status == "queued").order_by(Render.id).limit(1)
                    if self._db.backend == "postgresql":
                        query = query.with_for_update(skip_locked=True)
                    render = session.scalars(query).first()
                    if render is None:
                        return None
                    _apply_transition(session, render, "running", self._now(), {"worker_id": worker_id})
                    return render.to_record()
            except InvalidTransitionError:
                continue  # another worker claimed that row first

    def claim(self, render_id: int) -> RenderRecord:
        """This queued job, moved to running (a caller that runs its own job at once)."""
        return self.transition(render_id, "running")

    def mark_engine(self, render_id: int, engine: Mapping[str, Any]) -> RenderRecord:
        """Record which engine (model, variant, versions, device) runs this running job."""
        stored = json_object("engine", engine)
        with self._db.transaction(exclusive=False) as session:
            render = get_row(session, Render, render_id, "render_id")
            if render.status != "running":
                raise InvalidTransitionError(f"render {render_id} is {render.status}, not running")
            render.engine = stored
            flush_guarded(session, lambda: _changed_meanwhile(render_id))
            return render.to_record()

    def request_cancel(self, render_id: int) -> RenderRecord:
        """Cancel a job: a queued one at once (it never starts); a running one after its current step."""
        with self._db.transaction() as session:
            render = get_row(session, Render, render_id, "render_id")
            if render.status == "queued":
                _apply_transition(session, render, "cancelled", self._now(), {"error": "cancelled before it started"})
            elif render.status == "running":
                render.cancel_requested = True
                flush_guarded(session, lambda: _changed_meanwhile(render_id))
            else:
                raise InvalidTransitionError(f"render {render_id} is already {render.status}; nothing to cancel")
            return render.to_record()

    def dismiss(self, render_id: int) -> RenderRecord:
        """Take a finished job off the Jobs panel; the render and its takes stay."""
        with self._db.transaction() as session:
            render = get_row(session, Render, render_id, "render_id")
            if render.status not in FINISHED_STATUSES:
                raise InvalidTransitionError(f"render {render_id} is {render.status}; cancel it before removing it")
            render.dismissed = True
            flush_guarded(session, lambda: _changed_meanwhile(render_id))
            return render.to_record()

    def jobs(self, *, limit: int = 50) -> list[RenderRecord]:
        """The Jobs panel's rows: every unfinished job in queue order, then finished ones not dismissed, newest first."""
        with self._db.transaction() as session:
            unfinished = select(Render).where(Render.status.in_(UNFINISHED_STATUSES)).order_by(Render.id)
            finished = (
                select(Render)
                .where(Render.status.in_(FINISHED_STATUSES), Render.dismissed.is_(False))
                .order_by(Render.id.desc())
                .limit(limit)
            )
            return [r.to_record() for r in [*session.scalars(unfinished), *session.scalars(finished)]]

    def mark_interrupted_on_startup(self) -> int:
        """Mark every render a previous process left running as interrupted; returns how many.

        Run before the worker starts: a killed process cannot finish a job it was running, and
        starting it again on its own would spend minutes of GPU time the user did not ask for
        now (Retry does, on request). Queued jobs stay queued: the worker runs them, in order.
        A job a live worker is running (on a cluster, the workers outlive the studio: their
        row has a fresh heartbeat) is left to it; the supervisor interrupts it if that worker dies.
        """
        now = self._now()
        alive = select(Worker.id).where(
            Worker.ended_at.is_(None), Worker.heartbeat_at >= now - timedelta(seconds=HEARTBEAT_TIMEOUT_S)
        )
        with self._db.transaction() as session:
            query = select(Render).where(
                Render.status == "running", or_(Render.worker_id.is_(None), Render.worker_id.not_in(alive))
            )
            stranded = session.scalars(query).all()
            for render in stranded:
                _apply_transition(session, render, "interrupted", now, {"error": INTERRUPTED_MESSAGE})
            return len(stranded)

    def end_dead_worker(self, worker_id: str, end_reason: str, job_error: str) -> list[int]:
        """End a dead worker's row and move the running jobs it claimed to interrupted; their ids.

        One transaction, so no page ever reads a job interrupted by its worker's death while
        that worker is still listed live, and a failure leaves both as they were for the next
        sweep to find. Only rows still `running` on that worker change (the status guard in the
        UPDATE), so a job it finished meanwhile, or one another worker runs, is never touched,
        and a job is never run by two workers: the dead one's late writes are refused, as it is
        no longer running.
        """
        error = check.notes("job_error", job_error)
        now = self._now()
        with self._db.transaction() as session:
            end_worker_row(get_row(session, Worker, worker_id, "worker_id"), end_reason, now)  # type: ignore[arg-type]
            query = select(Render).where(Render.status == "running", Render.worker_id == worker_id).order_by(Render.id)
            stranded = session.scalars(query).all()
            for render in stranded:
                _apply_transition(session, render, "interrupted", now, {"error": error})
            return [render.id for render in stranded]


def _apply_transition(session: Session, render: Render, status: str, now: datetime, details: Mapping[str, Any]) -> None:
    """The one place a render's status changes: checked against the state machine, timestamped, flushed.

    The UPDATE names the status the render was read in (the model's version guard), so a
    concurrent change on a backend without SQLite's write lock fails instead of winning twice.
    """
    render_id = render.id  # a failed flush expires the row
    render.status = check_transition(render_id, render.status, status)
    if status == "running":
        render.started_at = now
    if status in FINISHED_STATUSES:
        render.finished_at = now
    if status == "done":
        render.progress = 1.0
    for field, value in details.items():
        if value is not None:
            setattr(render, field, value)
    flush_guarded(session, lambda: _changed_meanwhile(render_id))


def _changed_meanwhile(render_id: int) -> InvalidTransitionError:
    return InvalidTransitionError(f"render {render_id} changed status while this change was saved; reload it")


def json_object(field: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy, refused here with the field's name rather than deep inside the driver."""
    if not isinstance(value, Mapping):
        raise StorageValidationError(field, f"must be a mapping of names to values, got {type(value).__name__}")
    try:
        copied: dict[str, Any] = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise StorageValidationError(
            field, f"must hold only JSON values (text, numbers, lists, maps): {error}"
        ) from error
    return copied
