"""The one error type exports raise, so the UI can turn it into a message for the user."""

from __future__ import annotations


class ExportError(ValueError):
    """An export cannot be written as asked; the message says what to change."""
