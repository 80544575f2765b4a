"""Takes: one shot's clip from one render, and which take of each shot the director picked."""

from __future__ import annotations

import sqlalchemy as sa

from . import validation as check
from .errors import StorageValidationError
from .media import relative_media_path
from .models import Render, Scene, Shot, Take
from .records import TakeRecord
from .rows import Repository, get_row, scene_shots


class TakeRepository(Repository):
    def add(
        self, shot_id: int, render_id: int, *, video_path: str, caption: str, thumbnail_path: str | None = None
    ) -> TakeRecord:
        """Record a clip the render wrote for the shot; paths are relative to the data directory.

        Not selected: picking a take is the director's decision, made with `select`.
        """
        video = relative_media_path(video_path, "video_path")
        thumbnail = None if thumbnail_path is None else relative_media_path(thumbnail_path, "thumbnail_path")
        with self._db.transaction() as session:
            shot = get_row(session, Shot, shot_id, "shot_id")
            render = get_row(session, Render, render_id, "render_id")
            if shot.scene_id != render.scene_id:
                raise StorageValidationError(
                    "shot_id",
                    f"shot {shot_id} is in scene {shot.scene_id}, but render {render_id} is of scene {render.scene_id}",
                )
            take = Take(
                shot_id=shot_id,
                render_id=render_id,
                video_path=video,
                thumbnail_path=thumbnail,
                caption=check.text("caption", caption),
                selected=False,
                created_at=self._now(),
            )
            session.add(take)
            session.flush()
            return take.to_record()

    def get(self, take_id: int) -> TakeRecord:
        with self._db.transaction() as session:
            return get_row(session, Take, take_id, "take_id").to_record()

    def list_for_shot(self, shot_id: int) -> list[TakeRecord]:
        """Newest first."""
        with self._db.transaction() as session:
            get_row(session, Shot, shot_id, "shot_id")
            query = sa.select(Take).where(Take.shot_id == shot_id).order_by(Take.created_at.desc(), Take.id.desc())
            return [take.to_record() for take in session.scalars(query)]

    def select(self, take_id: int) -> TakeRecord:
        """Make this the shot's take; the shot's other takes are unselected in the same transaction."""
        with self._db.transaction() as session:
            take = get_row(session, Take, take_id, "take_id")
            session.execute(
                sa.update(Take).where(Take.shot_id == take.shot_id, Take.id != take_id).values(selected=False)
            )
            take.selected = True
            session.flush()
            return take.to_record()

    def selected_for_scene(self, scene_id: int) -> dict[int, TakeRecord | None]:
        """Shot id -> its selected take (None if none yet), for every shot of the scene in order."""
        with self._db.transaction() as session:
            get_row(session, Scene, scene_id, "scene_id")
            shot_ids = [shot.id for shot in scene_shots(session, scene_id)]
            query = sa.select(Take).where(Take.shot_id.in_(shot_ids), Take.selected)
            selected = {take.shot_id: take.to_record() for take in session.scalars(query)}
            return {shot_id: selected.get(shot_id) for shot_id in shot_ids}
