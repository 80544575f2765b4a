"""What every repository does to rows inside a transaction: find, version, renumber, copy, touch.

Kept in one place so that "unknown id", "stale edit" and "positions 0..n-1" mean exactly the
same thing for characters, scenes and shots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from .database import Database
from .errors import NotFoundError, StaleEditError
from .models import Base, Project, Shot

if TYPE_CHECKING:
    from .scene_check import SceneCheck

Clock = Callable[[], datetime]
M = TypeVar("M", bound=Base)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Repository:
    """Shared wiring: the database every method opens its one transaction on, the clock, and the
    caller's rule for whole scenes (see `scene_check`), run by the edits that can grow a scene."""

    def __init__(self, db: Database, clock: Clock = utc_now, scene_check: SceneCheck | None = None) -> None:
        self._db = db
        self._now = clock
        self._scene_check = scene_check


class Versioned(Protocol):
    id: int
    version: int


class Positioned(Protocol):
    position: int


def get_row(session: Session, model: type[M], row_id: int, field: str) -> M:
    """The row with this id, or `NotFoundError` naming the argument (`shot_id`) that held it."""
    row = session.get(model, row_id)
    if row is None:
        raise NotFoundError(field, model.__name__.lower(), row_id)
    return row


def bump_version(session: Session, row: Versioned, edited_version: int) -> None:
    """Accept an edit made on `edited_version` of `row`, or raise `StaleEditError`.

    Two guards: the version the user read must be the current one, and the UPDATE itself
    repeats that check in its WHERE clause (the models' `version_id_col`), which catches a
    writer that committed between our read and our write on backends without SQLite's lock.
    """
    entity, row_id = type(row).__name__.lower(), row.id  # a failed flush expires the row: read them first
    if row.version != edited_version:
        raise StaleEditError(entity, row_id, edited_version, row.version)
    row.version = edited_version + 1
    flush_guarded(session, lambda: StaleEditError(entity, row_id, edited_version, None))


def flush_guarded(session: Session, conflict: Callable[[], Exception]) -> None:
    """Flush now, turning a failed version guard into the repository's own error.

    `conflict` must not read attributes of the flushed rows: the failed flush has expired them.
    """
    try:
        session.flush()
    except StaleDataError as error:
        raise conflict() from error


def renumber(session: Session, rows: Sequence[Positioned], first: int = 0) -> None:
    """Give `rows` the positions first, first+1, ... in this order.

    Positions are unique per parent in the database, so rows cannot simply swap: each moving
    row first parks on a distinct negative position, then takes its final one.
    """
    moving = [(row, first + i) for i, row in enumerate(rows) if row.position != first + i]
    for parked, (row, _) in enumerate(moving, start=1):
        row.position = -parked
    session.flush()
    for row, position in moving:
        row.position = position
    session.flush()


def copy_row(row: M, **overrides: Any) -> M:
    """A new, unsaved row with `row`'s column values: new id, version 1, `overrides` applied."""
    mapper = inspect(type(row))
    values = {attr.key: getattr(row, attr.key) for attr in mapper.column_attrs if attr.key not in ("id", "version")}
    return type(row)(**{**values, **overrides})


def touch_project(session: Session, project_id: int, now: datetime) -> None:
    """Record that something in the project changed, for "recently edited" in the project list.

    A plain UPDATE of `updated_at` only: it is not an edit of the project row itself, so its
    version stays and nobody's pending rename becomes a conflict.
    """
    session.execute(update(Project).where(Project.id == project_id).values(updated_at=now))


def scene_shots(session: Session, scene_id: int) -> list[Shot]:
    """The scene's shots in position order, with their characters loaded."""
    query = select(Shot).where(Shot.scene_id == scene_id).order_by(Shot.position).options(selectinload(Shot.characters))
    return list(session.scalars(query))
