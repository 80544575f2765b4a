"""Rules for the values a director types, checked before anything reaches the database.

Each rule takes the field name and the value, and returns what to store (stripped,
converted) or raises `StorageValidationError` naming the field. Repositories declare one
table of rules per entity and pass every create and update through `clean_fields`, so a
value is judged the same way whether it is typed, duplicated or edited.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import StorageValidationError

Rule = Callable[[str, Any], Any]

FRAME_SIZE_MULTIPLE = 16  # the Wan VAE's 8x spatial compression times the DiT's 2x2 patches
MAX_SEED = 2**63  # seeds are drawn with torch.Generator.manual_seed, which takes a signed 64-bit int
_CHARACTER_TAG = re.compile(r"\[character([1-9][0-9]{0,5})\]")  # up to 999999: fits the tag column


def text(field: str, value: Any) -> str:
    """Free text that may be empty (notes, dialogue): only its type is checked."""
    if not isinstance(value, str):
        raise StorageValidationError(field, f"must be text, got {value!r}")
    return value


def optional_text(field: str, value: Any) -> str | None:
    """Free text where None means "use the engine's default" (a scene's negative prompt)."""
    return None if value is None else text(field, value)


def name(field: str, value: Any) -> str:
    """A name or title shown in lists: surrounding blanks removed, never empty."""
    stripped = text(field, value).strip()
    if not stripped:
        raise StorageValidationError(field, "must not be empty; type a name")
    return stripped


def positive_number(field: str, value: Any) -> float:
    """Durations and frame rates: a finite number above zero, stored as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise StorageValidationError(field, f"must be a number > 0, got {value!r}")
    return float(value)


def frame_size(field: str, value: Any) -> int:
    """Width and height in pixels, which the model only takes in multiples of 16."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % FRAME_SIZE_MULTIPLE:
        raise StorageValidationError(
            field, f"must be a positive whole number divisible by {FRAME_SIZE_MULTIPLE}, got {value!r}"
        )
    return value


def seed(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_SEED:
        raise StorageValidationError(field, f"must be a whole number in [0, 2^63), got {value!r}")
    return value


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
