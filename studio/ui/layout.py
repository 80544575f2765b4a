"""The page's layout: one function per area, each returning the typed record of its controls.

Why records: handlers and wiring name every control (`shot.regenerate`, `render.steps`), so a
control added to a panel is wired by name and can never land in the wrong slot of a tuple.
Values come from `views`; nothing here reads storage or calls a service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine import EngineInfo
from engine.lora import DRAFT_GUIDANCE, DRAFT_STEPS

from ..scene_export import EXPORT_LABELS
from . import components, views
from .components import Save
from .errors import user_message


def as_markdown_text(text: str) -> str:
    """Markdown whose HTML stays text: the engine panel quotes a model card, which is a file's text."""
    return text.replace("&", "&amp;").replace("<", "&lt;")


@dataclass(frozen=True)
class Header:
    project: gr.Dropdown
    scene: gr.Dropdown
    render: gr.Button
    cancel: gr.Button
    status: gr.Markdown
    progress: gr.Markdown


def header(projects: list[tuple[str, int]], info: EngineInfo, recovered: int) -> Header:
    """The bar a director works from: which project and scene, and the render button."""
    with gr.Row(elem_id="header"):
        gr.Markdown("## HoloCine Studio", elem_classes="title")
        project = gr.Dropdown(
            projects, label="Project", value=None, scale=2, allow_custom_value=True, elem_id="project-picker"
        )
        scene = gr.Dropdown([], label="Scene", value=None, scale=2, allow_custom_value=True, elem_id="scene-picker")
        render = gr.Button("Render scene", variant="primary", elem_id="render", scale=1)
        cancel = gr.Button("Cancel", variant="stop", elem_id="cancel", scale=0, min_width=80)
    if info.random_weights or info.notice:
        headline = "⚠️ Tiny random-weight model in use." if info.random_weights else f"ℹ️ {info.model_name}."
        gr.Markdown(f"> **{as_markdown_text(headline)}** {as_markdown_text(info.notice)}")
    if recovered:
        gr.Markdown(f"> {recovered} render(s) were interrupted by a restart and are marked so.")
    return Header(
        project, scene, render, cancel, gr.Markdown("", elem_id="status"), gr.Markdown("", elem_id="progress")
    )


@dataclass(frozen=True)
class BoardArea:
    board: gr.HTML
    prompt_box: gr.Accordion
    compiled: gr.JSON
    filmstrip: gr.HTML
    cut: gr.HTML


def board_area() -> BoardArea:
    """The storyboard, the compiled prompt one click away, the selected shot's takes, the cut."""
    board = components.board(views.EMPTY_BOARD.as_value())
    with gr.Accordion("Compiled prompt (what the model reads)", open=False) as prompt_box:
        compiled = gr.JSON(label="Captions, frames on the 4t+1 grid, cuts, tokens", elem_id="compiled")
    filmstrip = components.filmstrip(views.EMPTY_FILMSTRIP.as_value())
    cut = components.cut_player(views.EMPTY_CUT.as_value())
    return BoardArea(board, prompt_box, compiled, filmstrip, cut)


def editor(form: views.FormView, elem_id: str, save: Save) -> gr.HTML:
    return components.editor(form.as_value(), elem_id, save, user_message)


@dataclass(frozen=True)
class ShotPanel:
    editor: gr.HTML
    caption: gr.Textbox
    seed: gr.Number
    strength: gr.Slider
    regenerate: gr.Button
    vary: gr.Button
    extend_caption: gr.Textbox
    extend_duration: gr.Number
    extend: gr.Button


def shot_panel(empty: views.FormView, save: Save) -> ShotPanel:
    """The selected card's fields, and redoing it with the rest of the scene held as cut."""
    shot_editor = editor(empty, "shot-editor", save)
    with gr.Accordion("Redo this shot, the rest held as cut", open=False):
        caption = gr.Textbox(label="Edited caption (empty = as compiled)")
        seed = gr.Number(label="Seed (-1 = the scene's)", value=-1, precision=0)
        strength = gr.Slider(0, 1, value=0.6, step=0.05, label="Vary strength (0 = unchanged, 1 = new)")
        with gr.Row():
            regenerate = gr.Button("Regenerate", elem_id="regenerate")
            vary = gr.Button("Vary", elem_id="vary")
    with gr.Accordion("Extend the scene with a new shot", open=False):
        extend_caption = gr.Textbox(label="New shot")
        extend_duration = gr.Number(label="Duration (s)", value=3.0)
        extend = gr.Button("Extend scene", elem_id="extend")
    return ShotPanel(shot_editor, caption, seed, strength, regenerate, vary, extend_caption, extend_duration, extend)


@dataclass(frozen=True)
class RenderPanel:
    steps: gr.Slider
    seed: gr.Number
    cfg: gr.Slider
    height: gr.Number
    width: gr.Number
    attention: gr.Radio
    loras: gr.CheckboxGroup
    lora_strength: gr.Slider
    draft: gr.Button
    takes: gr.Slider

    def settings(self) -> list[Any]:
        """The controls a render reads, in `StudioUI.render`'s argument order."""
        return [
            self.steps,
            self.seed,
            self.cfg,
            self.height,
            self.width,
            self.attention,
            self.loras,
            self.lora_strength,
            self.takes,
        ]


def render_panel(guidance_scale: float, lora_names: list[str]) -> RenderPanel:
    steps = gr.Slider(1, 100, value=50, step=1, label="Steps")
    seed = gr.Number(label="Seed (-1 = the scene's)", value=-1, precision=0)
    cfg = gr.Slider(1, 10, value=guidance_scale, step=0.5, label="CFG")
    with gr.Row():
        height = gr.Number(label="Height (0 = scene's)", value=0, precision=0)
        width = gr.Number(label="Width (0 = scene's)", value=0, precision=0)
    attention = gr.Radio(["checkpoint default", "sparse", "full"], value="checkpoint default", label="Attention")
    loras = gr.CheckboxGroup(
        lora_names,
        label="LoRAs (this render and shot redos)",
        info=None if lora_names else "None loaded: start the studio with --lora NAME=FILE[,LOW_FILE]",
    )
    lora_strength = gr.Slider(0, 2, value=1.0, step=0.05, label="LoRA strength")
    draft = gr.Button(f"Draft settings: {DRAFT_STEPS} steps, CFG {DRAFT_GUIDANCE:g} (with a step-distillation LoRA)")
    takes = gr.Slider(
        1, 8, value=1, step=1, label="Takes per request (seeds seed, seed+1, ...: Render, Regenerate, Vary)",
        elem_id="takes",
    )  # fmt: skip
    return RenderPanel(steps, seed, cfg, height, width, attention, loras, lora_strength, draft, takes)


@dataclass(frozen=True)
class ScenePanel:
    editor: gr.HTML
    cast: gr.HTML
    character_editor: gr.HTML


def scene_panel(
    scene: views.FormView, cast: views.CastView, character: views.FormView, saves: tuple[Save, Save]
) -> ScenePanel:
    """The scene's settings, and the cast as cards with an editor for the chosen one."""
    scene_editor = editor(scene, "scene-editor", saves[0])
    gr.Markdown("**Characters** (each gets a `[characterN]` tag; their names in shot text become tags)")
    cast_board = components.cast(cast.as_value())
    return ScenePanel(scene_editor, cast_board, editor(character, "character-editor", saves[1]))


@dataclass(frozen=True)
class ProjectPanel:
    name: gr.Textbox
    version: gr.State
    create: gr.Button
    rename: gr.Button
    duplicate: gr.Button
    delete: gr.Button
    examples: gr.Button
    formats: gr.CheckboxGroup
    export: gr.Button
    downloads: gr.File
    bundle: gr.File
    import_bundle: gr.Button


def project_panel() -> ProjectPanel:
    """Projects, exports to editing tools, and bundles in and out."""
    name = gr.Textbox(label="Project name", elem_id="project-name")
    version = gr.State(0)
    with gr.Row():
        create = gr.Button("Create", variant="primary", elem_id="create-project")
        rename = gr.Button("Rename")
        duplicate = gr.Button("Duplicate")
        delete = gr.Button("Delete", variant="stop")
    examples = gr.Button("Add example projects (toy-world vocabulary)", elem_id="add-examples")
    formats = gr.CheckboxGroup(
        [(label, key) for key, label in EXPORT_LABELS.items()], value=["mp4", "pdf"], label="Export"
    )
    export = gr.Button("Export", elem_id="export")
    downloads = gr.File(label="Downloads", file_count="multiple", interactive=False)
    bundle = gr.File(
        label="Project bundle to import (.zip)", file_types=[".zip"], type="filepath", elem_id="bundle-upload"
    )
    import_bundle = gr.Button("Import project", elem_id="import-project")
    return ProjectPanel(
        name, version, create, rename, duplicate, delete, examples, formats, export, downloads, bundle, import_bundle
    )
