"""The studio's persistence: storyboard projects, render jobs and takes, over SQLAlchemy.

The only package that knows SQL. It imports neither the engine nor the UI: the web layer
calls the repositories, gets frozen records back, and turns `StorageError`s into messages.

    storage = build_storage(data_dir)   # migrates the schema to head
    storage.recover()                   # renders a killed process left running -> interrupted
    project = storage.projects.create("Harbour")
"""

from .characters import CharacterChanges, CharacterRepository
from .database import Database, alembic_config
from .errors import (
    DatabaseError,
    InvalidTransitionError,
    MediaPathError,
    NotFoundError,
    StaleEditError,
    StorageError,
    StorageValidationError,
)
from .facade import Storage, build_storage
from .media import MediaStore, project_media_dir, relative_media_path
from .portable import (
    SNAPSHOT_VERSION,
    ProjectSnapshot,
    Relocation,
    read_snapshot,
    restore_project,
    snapshot_project,
)
from .projects import ProjectRepository
from .records import (
    CharacterRecord,
    ProjectRecord,
    RenderRecord,
    SceneRecord,
    SceneWithShots,
    ShotRecord,
    TakeRecord,
    WorkerRecord,
)
from .render_status import ALLOWED_TRANSITIONS, FINISHED_STATUSES, RenderKind, RenderStatus
from .renders import RenderRepository
from .scenes import SceneFields, SceneRepository
from .shots import ShotFields, ShotRepository
from .takes import TakeRepository
from .workers import WorkerRepository

__all__ = [
    "ALLOWED_TRANSITIONS",
    "FINISHED_STATUSES",
    "SNAPSHOT_VERSION",
    "CharacterChanges",
    "CharacterRecord",
    "CharacterRepository",
    "Database",
    "DatabaseError",
    "InvalidTransitionError",
    "MediaPathError",
    "MediaStore",
    "NotFoundError",
    "ProjectRecord",
    "ProjectRepository",
    "ProjectSnapshot",
    "Relocation",
    "RenderKind",
    "RenderRecord",
    "RenderRepository",
    "RenderStatus",
    "SceneFields",
    "SceneRecord",
    "SceneRepository",
    "SceneWithShots",
    "ShotFields",
    "ShotRecord",
    "ShotRepository",
    "StaleEditError",
    "Storage",
    "StorageError",
    "StorageValidationError",
    "TakeRecord",
    "TakeRepository",
    "WorkerRecord",
    "WorkerRepository",
    "alembic_config",
    "build_storage",
    "project_media_dir",
    "read_snapshot",
    "relative_media_path",
    "restore_project",
    "snapshot_project",
]
