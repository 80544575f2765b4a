"""Shots of a scene: an ordered list whose positions are always 0..n-1, whatever the edit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TypedDict, Unpack

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import limits

from . import validation as check
from .errors import StorageValidationError
from .media import relative_media_path
from .models import Character, Scene, Shot
from .records import ShotRecord
from .rows import Repository, bump_version, copy_row, get_row, renumber, scene_shots, touch_project
from .scene_check import check_scene


class ShotFields(TypedDict, total=False):
    action: str
    shot_size: str
    camera_angle: str
    camera_movement: str
    duration_s: float
    dialogue: str
    notes: str


SHOT_RULES: dict[str, check.Rule] = {
    "action": check.text,
    "shot_size": check.label,
    "camera_angle": check.label,
    "camera_movement": check.label,
    "duration_s": check.shot_seconds,
    "dialogue": check.text,
    "notes": check.notes,
}

# 3 s: five such shots make about the 16 s (241 frames at 15 fps) HoloCine renders natively.
SHOT_DEFAULTS: ShotFields = {
    "action": "",
    "shot_size": "",
    "camera_angle": "",
    "camera_movement": "",
    "duration_s": 3.0,
    "dialogue": "",
    "notes": "",
}


class ShotRepository(Repository):
    def add(self, scene_id: int, /, **fields: Unpack[ShotFields]) -> ShotRecord:
        """A new shot at the end of the scene."""
        with self._db.transaction() as session:
            return self._insert(session, scene_id, len(scene_shots(session, scene_id)), fields)

    def insert(self, scene_id: int, position: int, /, **fields: Unpack[ShotFields]) -> ShotRecord:
        """A new shot at `position` (0 = first, number of shots = last); later shots move down one."""
        with self._db.transaction() as session:
            return self._insert(session, scene_id, position, fields)

    def duplicate(self, shot_id: int) -> ShotRecord:
        """A copy of the shot, characters included (takes not), placed right after it."""
        with self._db.transaction() as session:
            shot = get_row(session, Shot, shot_id, "shot_id")
            shots = scene_shots(session, shot.scene_id)
            renumber(session, shots[shot.position + 1 :], first=shot.position + 2)
            _check_room(len(shots))
            copy = copy_row(shot, position=shot.position + 1, characters=list(shot.characters))
            session.add(copy)
            self._touch(session, shot.scene_id)
            session.flush()
            check_scene(session, self._scene_check, shot.scene_id, (f"shots[{copy.position}]",))
            return copy.to_record()

    def delete(self, shot_id: int) -> None:
        """Delete the shot and its takes; the shots after it close the gap."""
        with self._db.transaction() as session:
            shot = get_row(session, Shot, shot_id, "shot_id")
            scene_id = shot.scene_id
            session.delete(shot)
            session.flush()
            renumber(session, scene_shots(session, scene_id))
            self._touch(session, scene_id)

    def reorder(self, scene_id: int, shot_ids: Sequence[int]) -> list[ShotRecord]:
        """Put the scene's shots in the order of `shot_ids`, which must list each of them exactly once."""
        with self._db.transaction() as session:
            get_row(session, Scene, scene_id, "scene_id")
            shots = {shot.id: shot for shot in scene_shots(session, scene_id)}
            _check_permutation(scene_id, list(shots), list(shot_ids))
            ordered = [shots[shot_id] for shot_id in shot_ids]
            renumber(session, ordered)
            self._touch(session, scene_id)
            return [shot.to_record() for shot in ordered]

    def update(
        self,
        shot_id: int,
        /,
        *,
        version: int,
        character_ids: Iterable[int] | None = None,
        **changes: Unpack[ShotFields],
    ) -> ShotRecord:
        """Change fields and, given `character_ids`, who appears: one edit, one transaction, one version step."""
        values = check.clean_fields(changes, SHOT_RULES)
        with self._db.transaction() as session:
            shot = get_row(session, Shot, shot_id, "shot_id")
            for field, value in values.items():
                setattr(shot, field, value)
            if character_ids is not None:
                shot.characters = _project_characters(session, shot, character_ids)
            bump_version(session, shot, version)
            self._touch(session, shot.scene_id)
            edited = [f"shots[{shot.position}].{field}" for field in values]
            check_scene(session, self._scene_check, shot.scene_id, edited or [f"shots[{shot.position}]"])
            return shot.to_record()

    def get(self, shot_id: int) -> ShotRecord:
        with self._db.transaction() as session:
            return get_row(session, Shot, shot_id, "shot_id").to_record()

    def set_keyframe(self, shot_id: int, path: str | None, /, *, version: int) -> ShotRecord:
        """The picture the shot opens on (a stored file, relative to the data directory), or None to clear it.

        An edit like any other: one version step, refused when `version` is stale, so a second
        tab cannot replace a keyframe it never saw. The file itself is written by the caller
        first (content-addressed, so nothing else changes if this is refused).
        """
        stored = None if path is None else relative_media_path(path, "keyframe")
        with self._db.transaction() as session:
            shot = get_row(session, Shot, shot_id, "shot_id")
            shot.keyframe_path = stored
            bump_version(session, shot, version)
            self._touch(session, shot.scene_id)
            return shot.to_record()

    def set_characters(self, shot_id: int, character_ids: Iterable[int], *, version: int) -> ShotRecord:
        """Who appears in the shot; every id must be a character of the shot's own project."""
        return self.update(shot_id, version=version, character_ids=character_ids)

    def _insert(self, session: Session, scene_id: int, position: int, fields: ShotFields) -> ShotRecord:
        values = check.clean_fields({**SHOT_DEFAULTS, **fields}, SHOT_RULES)
        get_row(session, Scene, scene_id, "scene_id")
        shots = scene_shots(session, scene_id)
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= len(shots):
            raise StorageValidationError(
                "position", f"must be a whole number from 0 to {len(shots)} (the number of shots), got {position!r}"
            )
        _check_room(len(shots))
        renumber(session, shots[position:], first=position + 1)
        shot = Shot(scene_id=scene_id, position=position, characters=[], **values)
        session.add(shot)
        self._touch(session, scene_id)
        session.flush()
        check_scene(session, self._scene_check, scene_id, [f"shots[{position}].{field}" for field in fields])
        return shot.to_record()

    def _touch(self, session: Session, scene_id: int) -> None:
        touch_project(session, get_row(session, Scene, scene_id, "scene_id").project_id, self._now())


def _check_room(shot_count: int) -> None:
    """A scene renders at most `limits.MAX_SHOTS` shots: refuse the one past that where it is added."""
    if shot_count >= limits.MAX_SHOTS:
        raise StorageValidationError(
            "shots", f"a scene holds at most {limits.MAX_SHOTS} shots; split the scene or delete a shot first"
        )


def _project_characters(session: Session, shot: Shot, character_ids: Iterable[int]) -> list[Character]:
    wanted = set(character_ids)
    project_id = get_row(session, Scene, shot.scene_id, "scene_id").project_id
    found = session.scalars(select(Character).where(Character.id.in_(wanted), Character.project_id == project_id)).all()
    unknown = wanted - {character.id for character in found}
    if unknown:
        raise StorageValidationError(
            "character_ids",
            f"{', '.join(map(str, sorted(unknown)))} are not characters of this project; pick from its cast",
        )
    return list(found)


def _check_permutation(scene_id: int, current: list[int], proposed: list[int]) -> None:
    unknown = sorted(set(proposed) - set(current))
    missing = sorted(set(current) - set(proposed))
    repeated = sorted(shot_id for shot_id, count in Counter(proposed).items() if count > 1)
    problems = [
        f"{label} {', '.join(map(str, ids))}"
        for label, ids in (("unknown shot ids", unknown), ("missing", missing), ("repeated", repeated))
        if ids
    ]
    if problems:
        raise StorageValidationError(
            "shot_ids",
            f"must list every shot of scene {scene_id} exactly once ({'; '.join(problems)}); reload and try again",
        )
