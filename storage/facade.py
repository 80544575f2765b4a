"""`build_storage`: the one place the storage services are built and wired to one database."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from .characters import CharacterRepository
from .database import Database
from .media import MediaStore, derived_media_paths, render_media_dir
from .models import Render, Scene, Take
from .projects import ProjectRepository
from .render_status import UNFINISHED_STATUSES
from .renders import RenderRepository
from .rows import Clock, utc_now
from .scene_check import SceneCheck
from .scenes import SceneRepository
from .shots import ShotRepository
from .takes import TakeRepository
from .workers import WorkerRepository

log = logging.getLogger(__name__)


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
    workers: WorkerRepository

    def recover(self) -> int:
        """Start-up crash recovery: renders a killed process was running become interrupted (queued ones wait),
        then the files it left that no row references are removed (`sweep_media`, logged).

        Returns how many renders, so the app can tell the user. Run once, before the render
        worker starts, and only where this studio is the data directory's one user: a second
        studio rendering into the same folder would lose its render to both steps.
        """
        interrupted = self.renders.mark_interrupted_on_startup()
        removed = self.sweep_media()
        if removed:
            log.info("removed %d leftover media file(s) no row references: %s", len(removed), ", ".join(removed))
        return interrupted

    def sweep_media(self) -> list[str]:
        """Delete the files under media/projects/ that no row references; return their relative paths.

        What stays: every path a take or render row stores, the studio's own unreferenced files
        (a done render's manifest.json, a scene's assembled cut) and, whole, the folders of
        renders still queued or running. Read in one transaction, one query per table.
        """
        keep: set[str] = set()
        protected: set[str] = set()
        done: defaultdict[int, list[int]] = defaultdict(list)
        scenes: defaultdict[int, list[int]] = defaultdict(list)
        with self.database.transaction() as session:
            for video, thumbnail in session.execute(select(Take.video_path, Take.thumbnail_path)):
                keep.update(path for path in (video, thumbnail) if path is not None)
            renders = select(Render.id, Render.status, Render.latents_path, Render.scene_path, Scene.project_id)
            for render_id, status, latents, scene_video, project_id in session.execute(renders.join(Scene)):
                keep.update(path for path in (latents, scene_video) if path is not None)
                if status in UNFINISHED_STATUSES:
                    protected.add(render_media_dir(project_id, render_id))
                elif status == "done":
                    done[project_id].append(render_id)
            for scene_id, project_id in session.execute(select(Scene.id, Scene.project_id)):
                scenes[project_id].append(scene_id)
        for project_id in done.keys() | scenes.keys():
            keep |= derived_media_paths(project_id, done[project_id], scenes[project_id])
        return self.media.sweep_unreferenced(keep, protected=protected)

    def close(self) -> None:
        self.database.dispose()


def build_storage(
    data_dir: Path,
    *,
    database_url: str | None = None,
    clock: Clock = utc_now,
    scene_check: SceneCheck | None = None,
) -> Storage:
    """Storage over `data_dir`, its schema migrated to the newest revision.

    The database is `<data_dir>/studio.db` unless `database_url` names another (any
    SQLAlchemy URL); media files always live under `data_dir`. `clock` lets tests pin time.
    `scene_check` judges a scene inside every edit that can grow it (the studio passes the
    model's token and frame limits); without one, only per-field rules apply.
    """
    database = Database.for_data_dir(data_dir) if database_url is None else Database(database_url)
    database.migrate()
    media = MediaStore(data_dir)
    return Storage(
        database=database,
        media=media,
        projects=ProjectRepository(database, media, clock),
        characters=CharacterRepository(database, clock, scene_check),
        scenes=SceneRepository(database, clock, scene_check),
        shots=ShotRepository(database, clock, scene_check),
        renders=RenderRepository(database, clock),
        takes=TakeRepository(database, clock),
        workers=WorkerRepository(database, clock),
    )
