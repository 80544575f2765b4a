"""Exceptions the storage layer raises on purpose.

The web layer catches `StorageError` once and shows its message; subclasses tell it what to
do next (highlight a field, offer a reload, refuse a button). Every message says what is
wrong and what the user can do about it, so no caller has to invent wording.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error the storage layer raises on purpose."""


class StorageValidationError(StorageError, ValueError):
    """A value the studio cannot store as given.

    `field` names the argument or column (`fps`, `shot_ids`, `tag`) so a form can point at it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFoundError(StorageValidationError, LookupError):
    """An id that names no row: usually deleted in another tab, so the fix is to reload."""

    def __init__(self, field: str, entity: str, row_id: int) -> None:
        super().__init__(field, f"{entity} {row_id} does not exist (it may have been deleted); reload the page")
        self.entity = entity
        self.row_id = row_id


class MediaPathError(StorageValidationError):
    """A media path that is absolute or would leave the data directory."""


class StaleEditError(StorageError):
    """An edit based on a version of the row that someone else has changed since.

    Raised instead of overwriting their change: the user reloads and applies the edit again.
    `current_version` is None when the conflict was caught by the database guard mid-save.
    """

    def __init__(self, entity: str, row_id: int, edited_version: int, current_version: int | None) -> None:
        now = "it changed while saving" if current_version is None else f"it is now version {current_version}"
        super().__init__(
            f"{entity} {row_id} was changed by someone else (you edited version {edited_version}, {now}); "
            "reload it and apply your edit again"
        )
        self.entity = entity
        self.row_id = row_id
        self.edited_version = edited_version
        self.current_version = current_version


class DatabaseError(StorageError):
    """The database itself failed (locked too long, disk full, read-only file); nothing was saved."""


class InvalidTransitionError(StorageError):
    """A render status change (or progress report) that its current status does not allow."""
