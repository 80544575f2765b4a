"""Scenes of a project: what HoloCine renders in one go, with its size, frame rate and seed."""

from __future__ import annotations

from typing import TypedDict, Unpack

from sqlalchemy import func, select

from . import validation as check
from .models import Project, Scene
from .records import SceneRecord, SceneWithShots
from .rows import Repository, bump_version, get_row, scene_shots, touch_project
from .scene_check import check_scene


class SceneFields(TypedDict, total=False):
    title: str
    description: str
    fps: float
    width: int
    height: int
    negative_prompt: str | None
    seed: int


SCENE_RULES: dict[str, check.Rule] = {
    "title": check.name,
    "description": check.text,
    "fps": check.fps,
    "width": check.frame_size,
    "height": check.frame_size,
    "negative_prompt": check.optional_text,
    "seed": check.seed,
}

# The real HoloCine model's native format (480x832 at 15 fps); None = the engine's negative prompt.
SCENE_DEFAULTS: SceneFields = {
    "description": "",
    "fps": 15.0,
    "width": 832,
    "height": 480,
    "negative_prompt": None,
    "seed": 0,
}


class SceneRepository(Repository):
    def add(self, project_id: int, /, **fields: Unpack[SceneFields]) -> SceneRecord:
        """A new scene after the project's last one; `title` defaults to "Scene N"."""
        with self._db.transaction() as session:
            get_row(session, Project, project_id, "project_id")
            count = session.scalar(select(func.count()).where(Scene.project_id == project_id)) or 0
            values = check.clean_fields({"title": f"Scene {count + 1}", **SCENE_DEFAULTS, **fields}, SCENE_RULES)
            scene = Scene(project_id=project_id, position=count, **values)
            session.add(scene)
            touch_project(session, project_id, self._now())
            session.flush()
            return scene.to_record()

    def update(self, scene_id: int, /, *, version: int, **changes: Unpack[SceneFields]) -> SceneRecord:
        values = check.clean_fields(changes, SCENE_RULES)
        with self._db.transaction() as session:
            scene = get_row(session, Scene, scene_id, "scene_id")
            for field, value in values.items():
                setattr(scene, field, value)
            bump_version(session, scene, version)
            touch_project(session, scene.project_id, self._now())
            check_scene(session, self._scene_check, scene_id, tuple(values))
            return scene.to_record()

    def list_for_project(self, project_id: int) -> list[SceneRecord]:
        with self._db.transaction() as session:
            get_row(session, Project, project_id, "project_id")
            query = select(Scene).where(Scene.project_id == project_id).order_by(Scene.position)
            return [scene.to_record() for scene in session.scalars(query)]

    def get(self, scene_id: int) -> SceneWithShots:
        """The scene and its shots in order, read in one transaction so they agree with each other."""
        with self._db.transaction() as session:
            scene = get_row(session, Scene, scene_id, "scene_id")
            return SceneWithShots(scene.to_record(), tuple(shot.to_record() for shot in scene_shots(session, scene_id)))
