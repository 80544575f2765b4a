"""`build_storage`: the one place the storage services are built and wired to one database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .characters import CharacterRepository
from .database import Database
from .media import MediaStore
from .projects import ProjectRepository
from .renders import RenderRepository
from .rows import Clock, utc_now
from .scenes import SceneRepository
from .shots import ShotRepository
from .takes import TakeRepository


@dataclass(frozen=True)
class Storage:
    """Every repository of the studio, sharing one `Database` and one `MediaStore`."""

    database: Database
    media: MediaStore
    projects: ProjectRepository
    characters: CharacterRepository
    scenes: SceneRepository
    shots: ShotRepository
    renders: RenderRepository
    takes: TakeRepository

    def recover(self) -> int:
        """Start-up crash recovery: renders a killed process left queued or running become interrupted.

        Returns how many, so the app can tell the user. Run once, before the render worker starts.
        """
        return self.renders.mark_interrupted_on_startup()

    def close(self) -> None:
        self.database.dispose()


def build_storage(data_dir: Path, *, database_url: str | None = None, clock: Clock = utc_now) -> Storage:
    """Storage over `data_dir`, its schema migrated to the newest revision.

    The database is `<data_dir>/studio.db` unless `database_url` names another (any
    SQLAlchemy URL); media files always live under `data_dir`. `clock` lets tests pin time.
    """
    database = Database.for_data_dir(data_dir) if database_url is None else Database(database_url)
    database.migrate()
    media = MediaStore(data_dir)
    return Storage(
        database=database,
        media=media,
        projects=ProjectRepository(database, media, clock),
        characters=CharacterRepository(database, clock),
        scenes=SceneRepository(database, clock),
        shots=ShotRepository(database, clock),
        renders=RenderRepository(database, clock),
        takes=TakeRepository(database, clock),
    )
