"""How errors reach the browser: as text, naming the field, never a traceback.

Gradio renders a toast's message as HTML (it strips scripts, not links, forms or images), and
the studio's messages quote what users and files hold (a bundle's fields, a shot's caption),
so every message is escaped before it is shown.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from engine import HoloCineError
from storage import StorageError

from ..exports.errors import ExportError

log = logging.getLogger(__name__)

USER_ERRORS = (StorageError, HoloCineError, ExportError)


def shown_as_text(message: str) -> gr.Error:
    """An error toast whose message the browser shows as the characters it holds."""
    return gr.Error(html.escape(message, quote=False), print_exception=False)


def user_message(error: Exception) -> str | None:
    """The message of an error the director can act on; None for a bug (logged by the caller)."""
    return str(error) if isinstance(error, USER_ERRORS) else None


def _explain(handler: Callable, error: Exception) -> gr.Error:
    message = user_message(error)
    if message is not None:
        return shown_as_text(message)
    log.exception("unexpected error in %s", handler.__name__)
    return gr.Error("Something went wrong on the server; the details are in its log.", print_exception=False)


def user_errors(handler: Callable) -> Callable:
    """Show storage, engine and export errors (which name the field) as a toast; never a traceback."""
    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def generator(*args: Any, **kwargs: Any) -> Iterator:
            try:
                yield from handler(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as error:
                raise _explain(handler, error) from error

        return generator

    @functools.wraps(handler)
    def plain(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:
            raise _explain(handler, error) from error

    return plain


def required_id(value: Any, field: str) -> int:
    """An id from the page; a missing one means the director has not chosen yet."""
    if value in (None, "") or (isinstance(value, float) and value != value):
        raise shown_as_text(f"{field}: choose one first")
    return int(value)
