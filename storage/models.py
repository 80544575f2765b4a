"""The tables, as SQLAlchemy 2.0 typed models; the migrations must build exactly these.

Children reference their parent with ON DELETE CASCADE, so deleting a project is one
statement that the database carries through scenes, shots, characters, renders and takes.
Editable rows carry a `version` that the ORM checks in every UPDATE's WHERE clause
(`version_id_col`) but never bumps on its own (`version_id_generator=False`): repositories
bump it for a user's edit, not for housekeeping such as renumbering positions, so moving
one shot does not turn every other tab's pending edit into a conflict.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from .records import CharacterRecord, ProjectRecord, RenderRecord, SceneRecord, ShotRecord, TakeRecord, WorkerRecord
from .render_status import RENDER_KINDS, RENDER_STATUSES, RenderKind, RenderStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zones and hands back naive values; storing naive UTC and re-attaching
    UTC on the way out keeps comparisons and display correct wherever the database runs.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: storage keeps times in UTC, pass an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


R = TypeVar("R")


def _snapshot(row: object, record_type: type[R], **computed: Any) -> R:
    """The record whose fields are the row's same-named attributes, plus the `computed` ones."""
    names = (f.name for f in fields(record_type))  # type: ignore[arg-type]  # records are dataclasses
    return record_type(**{name: computed[name] if name in computed else getattr(row, name) for name in names})


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    # Named constraints, so later migrations can drop or alter them on every backend.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(none_as_null=True)}


_VERSIONED = {"version_id_generator": False}


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version, **_VERSIONED}

    def to_record(self) -> ProjectRecord:
        return _snapshot(self, ProjectRecord)


class Character(Base):
    __tablename__ = "characters"
    __table_args__ = (UniqueConstraint("project_id", "tag"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    reference_path: Mapped[str | None] = mapped_column(Text)

    __mapper_args__ = {"version_id_col": version, **_VERSIONED}

    def to_record(self) -> CharacterRecord:
        return _snapshot(self, CharacterRecord)


class Scene(Base):
    __tablename__ = "scenes"
    __table_args__ = (UniqueConstraint("project_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    position: Mapped[int]
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    fps: Mapped[float]
    width: Mapped[int]
    height: Mapped[int]
    negative_prompt: Mapped[str | None] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version, **_VERSIONED}

    def to_record(self) -> SceneRecord:
        return _snapshot(self, SceneRecord)


shot_characters = Table(
    "shot_characters",
    Base.metadata,
    Column("shot_id", ForeignKey("shots.id", ondelete="CASCADE"), primary_key=True),
    Column("character_id", ForeignKey("characters.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Shot(Base):
    __tablename__ = "shots"
    __table_args__ = (UniqueConstraint("scene_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scene_id: Mapped[int] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"))
    position: Mapped[int]
    action: Mapped[str] = mapped_column(Text)
    shot_size: Mapped[str] = mapped_column(Text)
    camera_angle: Mapped[str] = mapped_column(Text)
    camera_movement: Mapped[str] = mapped_column(Text)
    duration_s: Mapped[float]
    dialogue: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    keyframe_path: Mapped[str | None] = mapped_column(Text)

    characters: Mapped[list[Character]] = relationship(secondary=shot_characters, passive_deletes=True)

    __mapper_args__ = {"version_id_col": version, **_VERSIONED}

    def to_record(self) -> ShotRecord:
        return _snapshot(self, ShotRecord, character_ids=tuple(sorted(c.id for c in self.characters)))


class Render(Base):
    __tablename__ = "renders"
    __table_args__ = (
        CheckConstraint(_in("kind", RENDER_KINDS), name="kind"),
        CheckConstraint(_in("status", RENDER_STATUSES), name="status"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scene_id: Mapped[int] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), index=True)
    kind: Mapped[RenderKind] = mapped_column(String(16))
    status: Mapped[RenderStatus] = mapped_column(String(16), index=True)
    settings: Mapped[dict[str, Any]]
    seed: Mapped[int] = mapped_column(BigInteger)
    progress: Mapped[float]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    timings: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    engine: Mapped[dict[str, Any] | None]
    latents_path: Mapped[str | None] = mapped_column(Text)
    scene_path: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    dismissed: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The worker that claimed the job (None: queued, or run by a script's own `claim`).
    worker_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("workers.id", ondelete="SET NULL"), index=True
    )

    # Every UPDATE of a render names the status it was read in (WHERE status = ...): a cancel
    # and a "done" racing on another backend cannot both win. Only the repository sets it.
    __mapper_args__ = {"version_id_col": status, **_VERSIONED}

    def to_record(self) -> RenderRecord:
        return _snapshot(self, RenderRecord)


class Worker(Base):
    """A render worker process (a thread in the studio, or a Ray actor on a GPU node) while it lives.

    It registers when it starts, beats every few seconds, and gets `ended_at` when it stops or
    when the studio's supervisor finds it dead; rows are kept, so a job always says where it ran.
    """

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(Text)
    pid: Mapped[int]
    device: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    memory: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)

    def to_record(self) -> WorkerRecord:
        return _snapshot(self, WorkerRecord)


class Take(Base):
    __tablename__ = "takes"

    id: Mapped[int] = mapped_column(primary_key=True)
    shot_id: Mapped[int] = mapped_column(ForeignKey("shots.id", ondelete="CASCADE"), index=True)
    render_id: Mapped[int] = mapped_column(ForeignKey("renders.id", ondelete="CASCADE"), index=True)
    video_path: Mapped[str] = mapped_column(Text)
    thumbnail_path: Mapped[str | None] = mapped_column(Text)
    caption: Mapped[str] = mapped_column(Text)
    selected: Mapped[bool]
    created_at: Mapped[datetime]

    def to_record(self) -> TakeRecord:
        return _snapshot(self, TakeRecord)
