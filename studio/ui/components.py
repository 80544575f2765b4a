"""The studio's visual pieces as `gr.HTML` custom components: templates, styles and scripts in web/.

Each component renders one view record from `views` (escaped there by `template_safe`, and
shown with Handlebars' triple-stash only) and reports what the director does through
`trigger(...)` events, which the app wires to services. No separate frontend build: the
files are read once at import and handed to Gradio.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import gradio as gr

WEB = Path(__file__).parent / "web"


@cache
def _asset(name: str) -> str:
    return (WEB / name).read_text()


def _html(name: str, value: dict[str, Any], elem_id: str, **kwargs: Any) -> gr.HTML:
    return gr.HTML(
        value,
        html_template=_asset(f"{name}.html"),
        css_template=_asset(f"{name}.css"),
        js_on_load=_asset(f"{name}.js"),
        elem_id=elem_id,
        apply_default_css=False,
        **kwargs,
    )


def board(value: dict[str, Any]) -> gr.HTML:
    """Cards in shot order with the timeline strip. Events: select_shot {shot_id}, reorder {shot_ids},
    add_shot {after_id}, duplicate_shot {shot_id}, delete_shot {shot_id}, show_prompt,
    upload_keyframe {shot_id, version, name, data (a data: URL)}, clear_keyframe {shot_id, version}."""
    return _html("board", value, "board")


def filmstrip(value: dict[str, Any]) -> gr.HTML:
    """The selected shot's takes, newest first. Event: pick_take {take_id}."""
    return _html("filmstrip", value, "filmstrip")


def cut_player(value: dict[str, Any]) -> gr.HTML:
    """The scene as cut, with a marker per shot. Event: use_frame {take_id, frame, shot_id, version}."""
    return _html("cut", value, "cut-player")


def jobs(value: dict[str, Any]) -> gr.HTML:
    """Every job, queued, running and finished. Events: cancel_job, retry_job, remove_job {render_id}."""
    return _html("jobs", value, "jobs")


def cast(value: dict[str, Any]) -> gr.HTML:
    """Character cards. Events: select_character {character_id}, add_character, delete_character {character_id},
    upload_reference {character_id, version, name, data (a data: URL)}, clear_reference {character_id, version}."""
    return _html("cast", value, "cast")


Save = Callable[[int, int, dict[str, Any]], int]


def editor(value: dict[str, Any], elem_id: str, save: Save, explain: Callable[[Exception], str | None]) -> gr.HTML:
    """A row's fields, saved as the director types through `save(id, version, values) -> new version`.

    `explain` turns an error the director can act on into its message (None: not theirs, re-raised).
    The reply goes back to the page as data and is shown with `textContent`, never as HTML.
    Event: saved {id, version}.
    """

    def save_fields(request: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"version": save(int(request["id"]), int(request["version"]), dict(request["values"]))}
        except Exception as error:
            message = explain(error)
            if message is None:
                raise
            return {"error": message}

    save_fields.__name__ = "save"  # what the script calls: server.save(...)
    return _html("form", value, elem_id, server_functions=[save_fields])
