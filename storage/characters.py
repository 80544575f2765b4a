"""Characters of a project, each known to the model only by its `[characterN]` tag."""

from __future__ import annotations

from typing import TypedDict, Unpack

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import validation as check
from .errors import StorageValidationError
from .media import relative_media_path
from .models import Character, Project
from .records import CharacterRecord
from .rows import Repository, bump_version, get_row, touch_project
from .scene_check import check_project_scenes, project_cast


class CharacterChanges(TypedDict, total=False):
    name: str
    tag: str
    description: str
    notes: str


CHARACTER_RULES: dict[str, check.Rule] = {
    "name": check.name,
    "tag": check.character_tag,
    "description": check.text,
    "notes": check.notes,
}


class CharacterRepository(Repository):
    def add(self, project_id: int, name: str, *, description: str = "", notes: str = "") -> CharacterRecord:
        """A new character with the lowest free tag number.

        Lowest rather than highest: HoloCine was trained on casts numbered 1, 2, 3, ..., so a
        project whose second character was deleted gets `[character2]` back, not `[character4]`.
        """
        fields = check.clean_fields({"name": name, "description": description, "notes": notes}, CHARACTER_RULES)
        with self._db.transaction() as session:
            get_row(session, Project, project_id, "project_id")
            used = {check.tag_number(tag) for tag in _tags(session, project_id)}
            number = next(n for n in range(1, len(used) + 2) if n not in used)
            character = Character(project_id=project_id, tag=check.format_tag(number), **fields)
            session.add(character)
            touch_project(session, project_id, self._now())
            session.flush()
            check_project_scenes(session, self._scene_check, project_id, ("description",))
            return character.to_record()

    def update(self, character_id: int, /, *, version: int, **changes: Unpack[CharacterChanges]) -> CharacterRecord:
        fields = check.clean_fields(changes, CHARACTER_RULES)
        with self._db.transaction() as session:
            character = get_row(session, Character, character_id, "character_id")
            tag = fields.get("tag", character.tag)
            if tag != character.tag and tag in _tags(session, character.project_id):
                raise StorageValidationError("tag", f"{tag} already belongs to another character of this project")
            for field, value in fields.items():
                setattr(character, field, value)
            bump_version(session, character, version)
            touch_project(session, character.project_id, self._now())
            check_project_scenes(session, self._scene_check, character.project_id, tuple(fields))
            return character.to_record()

    def get(self, character_id: int) -> CharacterRecord:
        with self._db.transaction() as session:
            return get_row(session, Character, character_id, "character_id").to_record()

    def set_reference(self, character_id: int, path: str | None, /, *, version: int) -> CharacterRecord:
        """The character's reference image (a stored file, relative to the data directory), or None to clear it.

        Versioned like `update`: a stale `version` is refused and nothing changes.
        """
        stored = None if path is None else relative_media_path(path, "reference")
        with self._db.transaction() as session:
            character = get_row(session, Character, character_id, "character_id")
            character.reference_path = stored
            bump_version(session, character, version)
            touch_project(session, character.project_id, self._now())
            return character.to_record()

    def delete(self, character_id: int) -> None:
        """Delete the character; the shots it appeared in simply no longer list it."""
        with self._db.transaction() as session:
            character = get_row(session, Character, character_id, "character_id")
            session.delete(character)
            touch_project(session, character.project_id, self._now())

    def list_for_project(self, project_id: int) -> list[CharacterRecord]:
        """In tag order: [character1], [character2], ... (numerically, so 10 comes after 9)."""
        with self._db.transaction() as session:
            get_row(session, Project, project_id, "project_id")
            return list(project_cast(session, project_id))


def _tags(session: Session, project_id: int) -> set[str]:
    return set(session.scalars(select(Character.tag).where(Character.project_id == project_id)))
