"""A caller's rule for a whole scene, run inside the transaction of every edit that can grow it.

Why a hook: whether a storyboard can ever render depends on the model (its tokenizer counts
the prompt's tokens, its frame cap bounds the length), which storage must not know. The
studio hands such a rule to `build_storage`; each edit that adds text or time to a scene
(a shot added, duplicated or edited, the scene's description or fps, a character's look)
calls it with the scene as it WOULD be after the edit, before the commit. A rule that raises
rolls the edit back, so a scene that can never render is refused where it is typed and no
other state changes. Deleting and reordering only shrink or keep a scene and are not checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Character, Scene
from .records import CharacterRecord, SceneWithShots
from .rows import scene_shots
from .validation import tag_number


class SceneCheck(Protocol):
    def __call__(self, scene: SceneWithShots, cast: Sequence[CharacterRecord], edited: Sequence[str]) -> None:
        """Raise (an error naming one of `edited`, the fields the edit changed) if `scene` is refused."""


def check_scene(session: Session, rule: SceneCheck | None, scene_id: int, edited: Sequence[str]) -> None:
    """Run `rule` on scene `scene_id` as this session sees it now (pending changes flushed)."""
    if rule is None:
        return
    session.flush()
    scene = session.get(Scene, scene_id)
    assert scene is not None
    cast = project_cast(session, scene.project_id)
    shots = tuple(shot.to_record() for shot in scene_shots(session, scene_id))
    rule(SceneWithShots(scene.to_record(), shots), cast, edited)


def check_project_scenes(session: Session, rule: SceneCheck | None, project_id: int, edited: Sequence[str]) -> None:
    """Run `rule` on every scene of the project: a character's look is part of each scene's prompt."""
    if rule is None:
        return
    session.flush()
    for scene_id in session.scalars(select(Scene.id).where(Scene.project_id == project_id)):
        check_scene(session, rule, scene_id, edited)


def project_cast(session: Session, project_id: int) -> tuple[CharacterRecord, ...]:
    """The project's characters in tag order: [character1], [character2], ... (10 after 9)."""
    characters = session.scalars(select(Character).where(Character.project_id == project_id))
    return tuple(sorted((c.to_record() for c in characters), key=lambda c: tag_number(c.tag)))
