"""Exceptions the engine raises for input a user can fix.

Every error names what is wrong so a CLI can print one line and a UI can point at the
field; none of them is ever swallowed and replaced by a silent fallback.
"""

from __future__ import annotations


class HoloCineError(Exception):
    """Base class of every error the engine raises on purpose."""


class SceneValidationError(HoloCineError, ValueError):
    """A scene, prompt or render setting that the model cannot render as given.

    `field` is a dotted path into the scene description (`shots[2].caption`,
    `shot_cut_frames`, `prompt`) so the caller can highlight it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class WeightsError(HoloCineError):
    """Weights that cannot be found, downloaded or loaded; says what to put where."""


class BackendUnavailableError(HoloCineError):
    """An attention backend was asked for by name but cannot run here."""
