"""Rules for the values a director types, checked before anything reaches the database.

Each rule takes the field name and the value, and returns what to store (stripped,
converted) or raises `StorageValidationError` naming the field. Repositories declare one
table of rules per entity and pass every create and update through `clean_fields`, so a
value is judged the same way whether it is typed, duplicated or edited.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from engine import limits

from .errors import StorageValidationError

Rule = Callable[[str, Any], Any]

# Generous but finite: far beyond anything umT5's 512 tokens can read or a list can show, far
# below what would make a page, a PDF or a bundle unmanageable.
NAME_MAX_CHARS = 200  # project names, scene titles, character names, shot size / angle / move
TEXT_MAX_CHARS = 10_000  # actions, descriptions, dialogue, captions
NOTES_MAX_CHARS = 100_000  # a director's notes, a render's error message
_CHARACTER_TAG = re.compile(r"\[character([1-9][0-9]{0,5})\]")  # up to 999999: fits the tag column


def _text_up_to(field: str, value: Any, max_chars: int) -> str:
    if not isinstance(value, str):
        raise StorageValidationError(field, f"must be text, got {type(value).__name__}")
    if len(value) > max_chars:
        raise StorageValidationError(field, f"is {len(value):,} characters long; keep it under {max_chars:,}")
    return value


def text(field: str, value: Any) -> str:
    """Free text that may be empty (an action, dialogue, a description)."""
    return _text_up_to(field, value, TEXT_MAX_CHARS)


def label(field: str, value: Any) -> str:
    """A short phrase that may be empty (shot size, camera angle, camera movement)."""
    return _text_up_to(field, value, NAME_MAX_CHARS)


def notes(field: str, value: Any) -> str:
    """Long free text the model never reads (notes, a render's error)."""
    return _text_up_to(field, value, NOTES_MAX_CHARS)


def optional_text(field: str, value: Any) -> str | None:
    """Free text where None means "use the engine's default" (a scene's negative prompt)."""
    return None if value is None else text(field, value)


def optional_notes(field: str, value: Any) -> str | None:
    return None if value is None else notes(field, value)


def name(field: str, value: Any) -> str:
    """A name or title shown in lists: surrounding blanks removed, never empty."""
    stripped = _text_up_to(field, value, NAME_MAX_CHARS * 4).strip()  # blanks around a name are not its length
    if not stripped:
        raise StorageValidationError(field, "must not be empty; type a name")
    return _text_up_to(field, stripped, NAME_MAX_CHARS)


def in_range(allowed: limits.NumberRange, convert: Callable[[Any], Any] = float) -> Rule:
    """A rule for a number the model bounds (engine/limits.py), stored as `convert` of it."""

    def rule(field: str, value: Any) -> Any:
        problem = allowed.problem(value)
        if problem is not None:
            raise StorageValidationError(field, problem)
        return convert(value)

    return rule


fps = in_range(limits.FPS)
shot_seconds = in_range(limits.SHOT_SECONDS)
frame_size = in_range(limits.FRAME_SIDE, int)
seed = in_range(limits.SEED, int)


def character_tag(field: str, value: Any) -> str:
    """`[characterN]` with N >= 1: the only way HoloCine's captions refer to a person."""
    if not isinstance(value, str) or _CHARACTER_TAG.fullmatch(value) is None:
        raise StorageValidationError(
            field, f"must look like [character1], [character2], ... (N <= 999999); got {value!r}"
        )
    return value


def tag_number(tag: str) -> int:
    """N of a stored `[characterN]` tag."""
    found = _CHARACTER_TAG.fullmatch(tag)
    assert found is not None, f"stored tag {tag!r} escaped validation"
    return int(found.group(1))


def format_tag(number: int) -> str:
    return f"[character{number}]"


def clean_fields(fields: Mapping[str, Any], rules: Mapping[str, Rule]) -> dict[str, Any]:
    """Every field passed through its rule; a field without a rule is not editable and is refused."""
    cleaned = {}
    for field, value in fields.items():
        rule = rules.get(field)
        if rule is None:
            raise StorageValidationError(field, f"is not an editable field; editable fields are {', '.join(rules)}")
        cleaned[field] = rule(field, value)
    return cleaned
