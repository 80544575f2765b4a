"""Projects: the top of the storyboard tree, and the unit that is duplicated and deleted whole."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from . import validation as check
from .database import Database
from .errors import StorageError
from .media import MediaStore, project_media_dir
from .models import Character, Project, Scene, Shot
from .records import ProjectRecord
from .rows import Clock, Repository, bump_version, copy_row, get_row, utc_now


class ProjectRepository(Repository):
    def __init__(self, db: Database, media: MediaStore, clock: Clock = utc_now) -> None:
        super().__init__(db, clock)
        self._media = media

    def create(self, name: str) -> ProjectRecord:
        now = self._now()
        with self._db.transaction() as session:
            project = Project(name=check.name("name", name), created_at=now, updated_at=now)
            session.add(project)
            session.flush()
            return project.to_record()

    def get(self, project_id: int) -> ProjectRecord:
        with self._db.transaction() as session:
            return get_row(session, Project, project_id, "project_id").to_record()

    def list_all(self) -> list[ProjectRecord]:
        """Newest first; ties (same clock tick) broken by id so the order is stable."""
        with self._db.transaction() as session:
            query = select(Project).order_by(Project.created_at.desc(), Project.id.desc())
            return [project.to_record() for project in session.scalars(query)]

    def rename(self, project_id: int, name: str, *, version: int) -> ProjectRecord:
        with self._db.transaction() as session:
            project = get_row(session, Project, project_id, "project_id")
            project.name = check.name("name", name)
            project.updated_at = self._now()
            bump_version(session, project, version)
            return project.to_record()

    def duplicate(self, project_id: int, name: str | None = None) -> ProjectRecord:
        """A new project with copies of the characters, scenes, shots and who is in each shot.

        Renders and takes stay with the original: they belong to the media it produced, and a
        copy starts with a storyboard to render, not with someone else's files. Keyframes and
        reference images are copied into the new project's folder: its rows name its own files,
        so deleting either project leaves the other's pictures whole. If the copy fails, the
        copied files go again and no row is saved.
        """
        now = self._now()
        copied_to: int | None = None
        try:
            with self._db.transaction() as session:
                copy = self._copy_rows(session, project_id, name, now)
                copied_to = copy.id
                self._copy_pictures(session, project_id, copy.id)
                return copy.to_record()
        except BaseException:
            if copied_to is not None:
                self._media.delete_project_media(copied_to)
            raise

    def _copy_rows(self, session: Session, project_id: int, name: str | None, now: datetime) -> Project:
        source = get_row(session, Project, project_id, "project_id")
        copy = Project(
            name=check.name("name", f"{source.name} (copy)" if name is None else name),
            created_at=now,
            updated_at=now,
        )
        session.add(copy)
        session.flush()
        characters = session.scalars(select(Character).where(Character.project_id == project_id)).all()
        copies = {character.id: copy_row(character, project_id=copy.id) for character in characters}
        session.add_all(copies.values())
        scenes = session.scalars(select(Scene).where(Scene.project_id == project_id)).all()
        for scene in scenes:
            scene_copy = copy_row(scene, project_id=copy.id)
            session.add(scene_copy)
            session.flush()
            shots = session.scalars(
                select(Shot).where(Shot.scene_id == scene.id).options(selectinload(Shot.characters))
            ).all()
            session.add_all(
                copy_row(shot, scene_id=scene_copy.id, characters=[copies[c.id] for c in shot.characters])
                for shot in shots
            )
        return copy

    def _copy_pictures(self, session: Session, source_id: int, copy_id: int) -> None:
        """Point the copy's rows at copies of their pictures in the copy's own folder."""
        session.flush()
        characters = list(session.scalars(select(Character).where(Character.project_id == copy_id)))
        scene_ids = select(Scene.id).where(Scene.project_id == copy_id)
        shots = list(session.scalars(select(Shot).where(Shot.scene_id.in_(scene_ids))))
        named = [c.reference_path for c in characters] + [s.keyframe_path for s in shots]
        copied = self._media.copy_pictures(source_id, copy_id, (path for path in named if path is not None))
        for character in characters:
            character.reference_path = copied.get(character.reference_path or "", character.reference_path)
        for shot in shots:
            shot.keyframe_path = copied.get(shot.keyframe_path or "", shot.keyframe_path)

    def delete(self, project_id: int) -> None:
        """Delete the project's rows (the database cascades to everything in it), then its media folder.

        The files go only after the rows are committed: if the delete fails, nothing on disk
        has been touched and the project opens as before.
        """
        with self._db.transaction() as session:
            get_row(session, Project, project_id, "project_id")
            session.execute(delete(Project).where(Project.id == project_id))
        try:
            self._media.delete_project_media(project_id)
        except OSError as error:
            raise StorageError(
                f"project {project_id} was deleted, but its media folder {project_media_dir(project_id)} could not "
                f"be removed ({error}); delete that folder by hand"
            ) from error
