"""The Gradio app: a thin layer over the studio's services.

Handlers take explicit ids (so every action is also a named API endpoint a script or test
can call), call one service, and turn the services' typed errors into a message naming the
field. Captions are shown only in plain-text components, never as HTML. One render at a
time runs on the model: every render shares the `model` concurrency id and others wait in
Gradio's queue, seeing their position.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr

from engine import HoloCineError
from engine.lora import DRAFT_GUIDANCE, DRAFT_STEPS
from storage import StorageError

from .bundle import export_bundle, import_bundle
from .examples import create_example_projects
from .exports.errors import ExportError
from .renders import EditRequest, RenderRequest, RenderUpdate, describe_compiled
from .scene_export import EXPORT_FILES, EXPORT_LABELS, export_scene
from .services import Services

log = logging.getLogger(__name__)

SHOT_COLUMNS = ["#", "action", "shot size", "camera angle", "camera movement", "seconds", "frames"]
CHARACTER_COLUMNS = ["tag", "name", "description"]
TAKE_COLUMNS = ["take", "render", "created", "selected", "caption"]
SHOT_SIZES = ["extreme wide shot", "wide shot", "medium shot", "medium close-up", "close-up", "extreme close-up"]
CAMERA_MOVES = [
    "static",
    "pan left",
    "pan right",
    "tilt up",
    "tilt down",
    "dolly in",
    "dolly out",
    "tracking",
    "handheld",
]


def shown_as_text(message: str) -> gr.Error:
    """An error toast whose message the browser shows as text.

    Gradio renders a toast's message as HTML (it strips scripts, not links, forms or images),
    and messages quote what users and files hold (a bundle's fields, a shot's caption), so
    every message is escaped: `<img src=...>` shows as those characters and fetches nothing.
    """
    return gr.Error(html.escape(message, quote=False), print_exception=False)


def user_errors(handler: Callable) -> Callable:
    """Show storage and engine errors (which name the field) as a message; never a traceback."""

    def explain(error: Exception) -> gr.Error:
        if isinstance(error, (StorageError, HoloCineError, ExportError)):
            return shown_as_text(str(error))
        log.exception("unexpected error in %s", handler.__name__)
        return gr.Error("Something went wrong on the server; the details are in its log.", print_exception=False)

    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def generator(*args: Any) -> Iterator:
            try:
                yield from handler(*args)
            except gr.Error:
                raise
            except Exception as error:
                raise explain(error) from error

        return generator

    @functools.wraps(handler)
    def plain(*args: Any) -> Any:
        try:
            return handler(*args)
        except gr.Error:
            raise
        except Exception as error:
            raise explain(error) from error

    return plain


def _loras(names: list[str] | None, strength: Any) -> tuple[tuple[str, float], ...]:
    """The ticked LoRAs, each at the one strength slider's value."""
    return tuple((name, float(strength)) for name in names or ())


def _id(value: Any, field: str) -> int:
    if value in (None, ""):
        raise gr.Error(f"{field}: choose one first", print_exception=False)
    return int(value)


class StudioUI:
    """Builds the Blocks and owns the handlers; every handler goes through `services`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.storage = services.storage

    # -- read models -------------------------------------------------------------------------

    def project_choices(self) -> list[tuple[str, int]]:
        return [(p.name, p.id) for p in self.storage.projects.list_all()]

    def scene_choices(self, project_id: int | None) -> list[tuple[str, int]]:
        if not project_id:
            return []
        return [(s.title, s.id) for s in self.storage.scenes.list_for_project(int(project_id))]

    def storyboard(self, scene_id: Any) -> tuple:
        """Everything the storyboard tab shows for a scene, in the order of `storyboard_outputs`."""
        if not scene_id:
            return (
                "",
                "",
                15,
                832,
                480,
                0,
                "",
                0,
                [],
                gr.Dropdown(choices=[], value=None),
                [],
                gr.Dropdown(choices=[], value=None),
                {},
                gr.CheckboxGroup(choices=[]),
            )
        scene = self.storage.scenes.get(int(scene_id))
        characters = self.storage.characters.list_for_project(scene.scene.project_id)
        try:
            compiled = self.services.renders.compile(scene)
            summary: dict[str, Any] = describe_compiled(compiled, scene.scene.fps)
            frames = [end - start for start, end in compiled.layout.frame_ranges]
        except HoloCineError as error:
            summary, frames = {"not renderable yet": str(error)}, [None] * len(scene.shots)
        shots = [
            [s.position + 1, s.action, s.shot_size, s.camera_angle, s.camera_movement, s.duration_s, f]
            for s, f in zip(scene.shots, frames)
        ]
        s = scene.scene
        return (
            s.title,
            s.description,
            s.fps,
            s.width,
            s.height,
            s.seed,
            s.negative_prompt or "",
            s.version,
            [[c.tag, c.name, c.description] for c in characters],
            gr.Dropdown(choices=[(f"{c.tag} {c.name}", c.id) for c in characters], value=None),
            shots,
            gr.Dropdown(choices=[(f"{x.position + 1}. {x.action[:40]}", x.id) for x in scene.shots], value=None),
            summary,
            gr.CheckboxGroup(choices=[(f"{c.tag} {c.name}", c.id) for c in characters]),
        )

    # -- projects -------------------------------------------------------------------------------

    def _engine_defaults(self) -> dict[str, Any]:
        d = self.services.engine.pipeline.defaults
        return {"fps": d.fps, "width": d.width, "height": d.height}

    @user_errors
    def create_project(self, name: str) -> tuple:
        project = self.storage.projects.create(name)
        scene = self.storage.scenes.add(project.id, title="Scene 1", **self._engine_defaults())
        return (
            gr.Dropdown(choices=self.project_choices(), value=project.id),
            gr.Dropdown(choices=self.scene_choices(project.id), value=scene.id),
            f"Created project {project.name!r}",
        )

    @user_errors
    def add_examples(self) -> tuple:
        """One project per example storyboard in the shipped toy model's vocabulary; opens the first."""
        scene_ids = create_example_projects(self.storage)
        first = self.storage.scenes.get(scene_ids[0]).scene
        return (
            gr.Dropdown(choices=self.project_choices(), value=first.project_id),
            gr.Dropdown(choices=self.scene_choices(first.project_id), value=first.id),
            f"Added {len(scene_ids)} example projects: open one and press Render",
        )

    @user_errors
    def open_project(self, project_id: Any) -> tuple:
        if not project_id:
            return gr.Dropdown(choices=[], value=None), "", 0
        project = self.storage.projects.get(int(project_id))
        scenes = self.scene_choices(project.id)
        return gr.Dropdown(choices=scenes, value=scenes[0][1] if scenes else None), project.name, project.version

    @user_errors
    def rename_project(self, project_id: Any, name: str, version: float) -> tuple:
        project = self.storage.projects.rename(_id(project_id, "project"), name, version=int(version))
        return (
            gr.Dropdown(choices=self.project_choices(), value=project.id),
            project.version,
            f"Renamed to {project.name!r}",
        )

    @user_errors
    def duplicate_project(self, project_id: Any) -> tuple:
        copy = self.storage.projects.duplicate(_id(project_id, "project"))
        return gr.Dropdown(choices=self.project_choices(), value=copy.id), f"Duplicated as {copy.name!r}"

    @user_errors
    def delete_project(self, project_id: Any) -> tuple:
        self.storage.projects.delete(_id(project_id, "project"))
        choices = self.project_choices()
        return gr.Dropdown(choices=choices, value=choices[0][1] if choices else None), "Project deleted"

    # -- scene and characters ----------------------------------------------------------------

    @user_errors
    def save_scene(self, scene_id: Any, title, description, fps, width, height, seed, negative, version) -> tuple:
        self.storage.scenes.update(
            _id(scene_id, "scene"),
            version=int(version),
            title=title,
            description=description,
            fps=float(fps),
            width=int(width),
            height=int(height),
            seed=int(seed),
            negative_prompt=negative.strip() or None,
        )
        return self.storyboard(scene_id)

    @user_errors
    def add_character(self, scene_id: Any, name: str, description: str, notes: str) -> tuple:
        scene = self.storage.scenes.get(_id(scene_id, "scene"))
        self.storage.characters.add(scene.scene.project_id, name, description=description, notes=notes)
        return self.storyboard(scene_id)

    @user_errors
    def load_character(self, scene_id: Any, character_id: Any) -> tuple:
        if not character_id or not scene_id:
            return "", "", "", 0
        project_id = self.storage.scenes.get(int(scene_id)).scene.project_id
        character = next(c for c in self.storage.characters.list_for_project(project_id) if c.id == int(character_id))
        return character.name, character.description, character.notes, character.version

    @user_errors
    def save_character(self, scene_id: Any, character_id: Any, name, description, notes, version) -> tuple:
        self.storage.characters.update(
            _id(character_id, "character"), version=int(version), name=name, description=description, notes=notes
        )
        return self.storyboard(scene_id)

    @user_errors
    def delete_character(self, scene_id: Any, character_id: Any) -> tuple:
        self.storage.characters.delete(_id(character_id, "character"))
        return self.storyboard(scene_id)

    # -- shots --------------------------------------------------------------------------------

    @user_errors
    def add_shot(self, scene_id: Any, action: str = "") -> tuple:
        self.storage.shots.add(_id(scene_id, "scene"), action=action)
        return self.storyboard(scene_id)

    @user_errors
    def load_shot(self, scene_id: Any, shot_id: Any) -> tuple:
        if not shot_id or not scene_id:
            return "", "", "", "", 3.0, "", "", [], 0
        shot = next(s for s in self.storage.scenes.get(int(scene_id)).shots if s.id == int(shot_id))
        return (
            shot.action,
            shot.shot_size,
            shot.camera_angle,
            shot.camera_movement,
            shot.duration_s,
            shot.dialogue,
            shot.notes,
            list(shot.character_ids),
            shot.version,
        )

    @user_errors
    def save_shot(
        self, scene_id, shot_id, action, size, angle, movement, duration, dialogue, notes, characters, version
    ) -> tuple:
        self.storage.shots.update(
            _id(shot_id, "shot"),
            version=int(version),
            action=action,
            shot_size=size or "",
            camera_angle=angle or "",
            camera_movement=movement or "",
            duration_s=float(duration),
            dialogue=dialogue,
            notes=notes,
            character_ids=[int(c) for c in characters or []],
        )
        return self.storyboard(scene_id)

    @user_errors
    def duplicate_shot(self, scene_id: Any, shot_id: Any) -> tuple:
        self.storage.shots.duplicate(_id(shot_id, "shot"))
        return self.storyboard(scene_id)

    @user_errors
    def delete_shot(self, scene_id: Any, shot_id: Any) -> tuple:
        self.storage.shots.delete(_id(shot_id, "shot"))
        return self.storyboard(scene_id)

    @user_errors
    def move_shot(self, scene_id: Any, shot_id: Any, offset: int) -> tuple:
        ids = [s.id for s in self.storage.scenes.get(_id(scene_id, "scene")).shots]
        index = ids.index(_id(shot_id, "shot"))
        target = min(max(index + offset, 0), len(ids) - 1)
        ids.insert(target, ids.pop(index))
        self.storage.shots.reorder(int(scene_id), ids)
        return self.storyboard(scene_id)

    # -- render --------------------------------------------------------------------------------

    @user_errors
    def render(
        self, scene_id: Any, steps, seed, cfg, height, width, attention, loras, lora_strength
    ) -> Iterator[tuple]:
        request = RenderRequest(
            scene_id=_id(scene_id, "scene"),
            steps=int(steps),
            seed=None if seed in (None, "") or seed < 0 else int(seed),
            guidance_scale=float(cfg),
            attention=None if attention == "checkpoint default" else attention,
            height=int(height) if height else None,
            width=int(width) if width else None,
            loras=_loras(loras, lora_strength),
        )
        yield from self._updates(self.services.renders.run(request))

    @staticmethod
    def _updates(updates: Iterator[RenderUpdate]) -> Iterator[tuple]:
        """A job's updates as (render id, status, previews, clips so far, scene video)."""
        previews: list = []
        clips: list = []
        scene_video = None
        for update in updates:
            if update.previews:
                previews = [(image, f"shot {i + 1}") for i, image in enumerate(update.previews)]
            if update.clip is not None:
                clips.append((str(update.clip), f"shot {update.clip_shot + 1}"))
            if update.scene_video is not None:
                scene_video = str(update.scene_video)
            status = f"{update.message} [{update.render.status}, {update.render.progress:.0%}]"
            yield update.render.id, status, previews, clips, scene_video

    def _edit(
        self, kind: str, scene_id, shot_id, caption, strength, duration, seed, steps, cfg, loras, lora_strength
    ) -> Iterator[tuple]:
        request = EditRequest(
            scene_id=_id(scene_id, "scene"),
            kind=kind,  # type: ignore[arg-type]
            shot_id=None if kind == "extend" else _id(shot_id, "shot"),
            caption=caption or None,
            strength=float(strength),
            duration_s=float(duration) if duration else None,
            seed=None if seed in (None, "") or seed < 0 else int(seed),
            steps=int(steps),
            guidance_scale=float(cfg),
            loras=_loras(loras, lora_strength),
        )
        yield from self._updates(self.services.renders.edit(request))

    @user_errors
    def regenerate(self, scene_id, shot_id, caption, seed, steps, cfg, loras, lora_strength) -> Iterator[tuple]:
        yield from self._edit(
            "regenerate", scene_id, shot_id, caption, 1.0, None, seed, steps, cfg, loras, lora_strength
        )

    @user_errors
    def vary(self, scene_id, shot_id, caption, strength, seed, steps, cfg, loras, lora_strength) -> Iterator[tuple]:
        yield from self._edit(
            "vary", scene_id, shot_id, caption, strength, None, seed, steps, cfg, loras, lora_strength
        )

    @user_errors
    def extend(self, scene_id, caption, duration, seed, steps, cfg, loras, lora_strength) -> Iterator[tuple]:
        yield from self._edit("extend", scene_id, None, caption, 1.0, duration, seed, steps, cfg, loras, lora_strength)

    @user_errors
    def cancel(self, render_id: Any) -> str:
        if not render_id:
            return "Nothing is rendering"
        stopping = self.services.renders.cancel(int(render_id))
        return "Cancelling after the current step…" if stopping else f"Render {int(render_id)} is not running"

    # -- takes ---------------------------------------------------------------------------------

    @user_errors
    def takes(self, shot_id: Any) -> tuple:
        """A shot's takes (newest first), its selected clip, and the scene as cut from selected takes."""
        if not shot_id:
            return [], None, None
        takes = self.storage.takes.list_for_shot(int(shot_id))
        rows = [[t.id, t.render_id, t.created_at.strftime("%Y-%m-%d %H:%M:%S"), t.selected, t.caption] for t in takes]
        selected = next((t for t in takes if t.selected), None)
        scene_id = self.storage.renders.get(takes[0].render_id).scene_id if takes else None
        cut = self.services.renders.assemble_scene(scene_id) if scene_id else None
        return (
            rows,
            str(self.storage.media.path(selected.video_path)) if selected else None,
            str(cut) if cut else None,
        )

    @user_errors
    def select_take(self, shot_id: Any, take_id: Any) -> tuple:
        self.storage.takes.select(_id(take_id, "take"))
        return self.takes(shot_id)

    # -- export and import ------------------------------------------------------------------

    @user_errors
    def export(self, project_id: Any, scene_id: Any, formats: list[str]) -> list[str]:
        """Write the chosen exports into a new folder of the data directory; return them for download."""
        if not formats:
            raise gr.Error("formats: choose at least one", print_exception=False)
        folder = self.services.settings.data_dir / "exports" / datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        files: list[Path] = []
        for name in formats:
            if name == "bundle":
                files.append(export_bundle(self.storage, _id(project_id, "project"), folder / "project.zip"))
            else:
                files += export_scene(self.storage, _id(scene_id, "scene"), name, folder / EXPORT_FILES[name])
        return [str(f) for f in files if f.is_file()]

    @user_errors
    def import_project(self, bundle: Any) -> tuple:
        if not bundle:
            raise gr.Error("bundle: choose a .zip exported by HoloCine Studio", print_exception=False)
        project = import_bundle(self.storage, Path(bundle))
        return gr.Dropdown(choices=self.project_choices(), value=project.id), f"Imported project {project.name!r}"

    # -- layout --------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        info = self.services.engine.info
        with gr.Blocks(title="HoloCine Studio") as demo:
            gr.Markdown("# HoloCine Studio")
            if info.random_weights:
                gr.Markdown(f"> ⚠️ **Tiny random-weight model in use.** {info.notice}")
            elif info.notice:
                gr.Markdown(f"> ℹ️ **{info.model_name}.** {info.notice}")
            if self.services.recovered:
                gr.Markdown(f"> {self.services.recovered} render(s) were interrupted by a restart and are marked so.")
            with gr.Row():
                project = gr.Dropdown(
                    self.project_choices(),
                    label="Project",
                    value=None,
                    scale=2,
                    allow_custom_value=True,
                    elem_id="project-picker",
                )
                scene = gr.Dropdown(
                    [], label="Scene", value=None, scale=2, allow_custom_value=True, elem_id="scene-picker"
                )
            status = gr.Textbox(label="Status", interactive=False, lines=1)

            with gr.Tab("Projects"):
                project_name = gr.Textbox(label="Project name")
                project_version = gr.Number(visible=False, precision=0)
                with gr.Row():
                    create = gr.Button("Create", variant="primary")
                    rename = gr.Button("Rename")
                    duplicate = gr.Button("Duplicate")
                    delete = gr.Button("Delete", variant="stop")
                examples = gr.Button("Add example projects (toy-world vocabulary)", elem_id="add-examples")

            with gr.Tab("Storyboard"):
                with gr.Accordion("Scene", open=True):
                    with gr.Row():
                        title = gr.Textbox(label="Title")
                        fps = gr.Number(label="fps", value=15)
                        width = gr.Number(label="width", value=832, precision=0)
                        height = gr.Number(label="height", value=480, precision=0)
                        seed = gr.Number(label="seed", value=0, precision=0)
                    description = gr.Textbox(label="Description (place, time, mood, style)", lines=2)
                    negative = gr.Textbox(label="Negative prompt (empty = the model's default)")
                    scene_version = gr.Number(visible=False, precision=0)
                    save_scene = gr.Button("Save scene")
                with gr.Accordion("Characters", open=True):
                    characters = gr.Dataframe(headers=CHARACTER_COLUMNS, interactive=False, wrap=True)
                    character = gr.Dropdown([], label="Character", allow_custom_value=True)
                    with gr.Row():
                        character_name = gr.Textbox(label="Name")
                        character_description = gr.Textbox(label="Look (what the model should see)")
                        character_notes = gr.Textbox(label="Notes")
                    character_version = gr.Number(visible=False, precision=0)
                    with gr.Row():
                        add_character = gr.Button("Add character")
                        save_character = gr.Button("Save character")
                        delete_character = gr.Button("Delete character", variant="stop")
                with gr.Accordion("Shots", open=True):
                    shots = gr.Dataframe(headers=SHOT_COLUMNS, interactive=False, wrap=True)
                    shot = gr.Dropdown([], label="Shot", elem_id="shot-picker", allow_custom_value=True)
                    shot_action = gr.Textbox(label="Action", lines=2, elem_id="shot-action")
                    with gr.Row():
                        shot_size = gr.Dropdown(SHOT_SIZES, label="Shot size", allow_custom_value=True)
                        shot_angle = gr.Textbox(label="Camera angle")
                        shot_movement = gr.Dropdown(CAMERA_MOVES, label="Camera movement", allow_custom_value=True)
                        shot_duration = gr.Number(label="Duration (s)", value=3.0)
                    shot_dialogue = gr.Textbox(label="Dialogue")
                    shot_notes = gr.Textbox(label="Notes")
                    shot_characters = gr.CheckboxGroup([], label="Characters in the shot")
                    shot_version = gr.Number(visible=False, precision=0)
                    with gr.Row():
                        add_shot = gr.Button("Add shot")
                        save_shot = gr.Button("Save shot", variant="primary", elem_id="save-shot")
                        duplicate_shot = gr.Button("Duplicate")
                        up = gr.Button("Move up")
                        down = gr.Button("Move down")
                        delete_shot = gr.Button("Delete shot", variant="stop")
                compiled = gr.JSON(label="What will be rendered (captions, frames on the 4t+1 grid, tokens)")

            with gr.Tab("Render"):
                with gr.Row():
                    steps = gr.Slider(1, 100, value=50, step=1, label="Steps")
                    render_seed = gr.Number(label="Seed (-1 = the scene's)", value=-1, precision=0)
                    cfg = gr.Slider(
                        1, 10, value=self.services.engine.pipeline.defaults.guidance_scale, step=0.5, label="CFG"
                    )
                    render_height = gr.Number(label="Height (0 = scene's)", value=0, precision=0)
                    render_width = gr.Number(label="Width (0 = scene's)", value=0, precision=0)
                    attention = gr.Radio(
                        ["checkpoint default", "sparse", "full"], value="checkpoint default", label="Attention"
                    )
                with gr.Row():
                    lora_names = self.services.engine.lora_names
                    loras = gr.CheckboxGroup(
                        lora_names,
                        label="LoRAs (this render and shot redos)",
                        info=None if lora_names else "None loaded: start the studio with --lora NAME=FILE[,LOW_FILE]",
                    )
                    lora_strength = gr.Slider(0, 2, value=1.0, step=0.05, label="LoRA strength")
                    draft_button = gr.Button(
                        f"Draft settings: {DRAFT_STEPS} steps, CFG {DRAFT_GUIDANCE:g} (with a step-distillation LoRA)"
                    )
                with gr.Row():
                    render_button = gr.Button("Render", variant="primary", elem_id="render")
                    cancel_button = gr.Button("Cancel", variant="stop")
                render_id = gr.Number(label="Render", precision=0, interactive=False)
                render_status = gr.Textbox(label="Progress", interactive=False)
                previews = gr.Gallery(label="Live previews (x0 estimate, per shot)", columns=6, height=200)
                clips = gr.Gallery(label="Shots as they are decoded", columns=6, height=220)
                scene_video = gr.Video(label="Scene", elem_id="scene-video")

            with gr.Tab("Takes"):
                take_shot = gr.Dropdown([], label="Shot", allow_custom_value=True)
                take_rows = gr.Dataframe(headers=TAKE_COLUMNS, interactive=False, wrap=True)
                take_id = gr.Number(label="Take to select", precision=0)
                select_take = gr.Button("Select take")
                with gr.Row():
                    take_video = gr.Video(label="Selected take")
                    cut_video = gr.Video(label="Scene as cut (selected takes)", elem_id="cut-video")
                with gr.Accordion("Redo this shot, the rest of the scene held as selected", open=True):
                    edit_caption = gr.Textbox(label="Edited caption (empty = as compiled)")
                    with gr.Row():
                        edit_seed = gr.Number(label="Seed (-1 = the scene's)", value=-1, precision=0)
                        strength = gr.Slider(0, 1, value=0.6, step=0.05, label="Vary strength (0 = unchanged, 1 = new)")
                    with gr.Row():
                        regenerate = gr.Button("Regenerate shot")
                        vary = gr.Button("Vary shot")
                with gr.Accordion("Extend the scene with a new shot", open=False):
                    extend_caption = gr.Textbox(label="New shot")
                    extend_duration = gr.Number(label="Duration (s)", value=3.0)
                    extend = gr.Button("Extend scene")

            with gr.Tab("Export"):
                formats = gr.CheckboxGroup(
                    [(label, key) for key, label in EXPORT_LABELS.items()], value=["mp4", "pdf"], label="Formats"
                )
                export_button = gr.Button("Export", variant="primary")
                export_files = gr.File(label="Downloads", file_count="multiple", interactive=False)
                bundle_upload = gr.File(
                    label="Project bundle to import (.zip)", file_types=[".zip"], type="filepath", elem_id="bundle-upload"
                )
                import_button = gr.Button("Import project", elem_id="import-project")

            with gr.Tab("Engine"):
                gr.Markdown(self.services.engine.markdown())

            storyboard_outputs = [
                title, fps, width, height, seed, negative, scene_version, characters, character, shots, shot,
                compiled, shot_characters,
            ]  # fmt: skip
            storyboard_outputs.insert(1, description)

            demo.load(lambda: gr.Dropdown(choices=self.project_choices()), None, [project], api_name=False)
            project.change(
                self.open_project, [project], [scene, project_name, project_version], api_name="open_project"
            )
            scene.change(self.storyboard, [scene], storyboard_outputs, api_name="storyboard")
            scene.change(lambda s: gr.Dropdown(choices=self._shot_choices(s), value=None), [scene], [take_shot])
            create.click(self.create_project, [project_name], [project, scene, status], api_name="create_project")
            examples.click(self.add_examples, None, [project, scene, status], api_name="add_examples")
            rename.click(
                self.rename_project, [project, project_name, project_version], [project, project_version, status],
                api_name="rename_project",
            )  # fmt: skip
            duplicate.click(self.duplicate_project, [project], [project, status], api_name="duplicate_project")
            delete.click(self.delete_project, [project], [project, status], api_name="delete_project")

            save_scene.click(
                self.save_scene, [scene, title, description, fps, width, height, seed, negative, scene_version],
                storyboard_outputs, api_name="save_scene",
            )  # fmt: skip
            add_character.click(
                self.add_character, [scene, character_name, character_description, character_notes],
                storyboard_outputs, api_name="add_character",
            )  # fmt: skip
            character.change(
                self.load_character, [scene, character],
                [character_name, character_description, character_notes, character_version], api_name="load_character",
            )  # fmt: skip
            save_character.click(
                self.save_character,
                [scene, character, character_name, character_description, character_notes, character_version],
                storyboard_outputs, api_name="save_character",
            )  # fmt: skip
            delete_character.click(
                self.delete_character, [scene, character], storyboard_outputs, api_name="delete_character"
            )

            shot_fields = [
                shot_action, shot_size, shot_angle, shot_movement, shot_duration, shot_dialogue, shot_notes,
                shot_characters, shot_version,
            ]  # fmt: skip
            add_shot.click(self.add_shot, [scene, shot_action], storyboard_outputs, api_name="add_shot")
            shot.change(self.load_shot, [scene, shot], shot_fields, api_name="load_shot")
            save_shot.click(self.save_shot, [scene, shot, *shot_fields], storyboard_outputs, api_name="save_shot")
            duplicate_shot.click(self.duplicate_shot, [scene, shot], storyboard_outputs, api_name="duplicate_shot")
            delete_shot.click(self.delete_shot, [scene, shot], storyboard_outputs, api_name="delete_shot")
            up.click(lambda s, x: self.move_shot(s, x, -1), [scene, shot], storyboard_outputs, api_name="move_shot_up")
            down.click(
                lambda s, x: self.move_shot(s, x, 1), [scene, shot], storyboard_outputs, api_name="move_shot_down"
            )

            render_event = render_button.click(
                self.render,
                [scene, steps, render_seed, cfg, render_height, render_width, attention, loras, lora_strength],
                [render_id, render_status, previews, clips, scene_video],
                api_name="render",
                concurrency_limit=1,
                concurrency_id="model",
            )
            cancel_button.click(self.cancel, [render_id], [render_status], api_name="cancel", queue=False)
            draft_button.click(
                lambda: (DRAFT_STEPS, DRAFT_GUIDANCE), None, [steps, cfg], api_name="draft_settings", queue=False
            )
            render_event.then(lambda s: gr.Dropdown(choices=self._shot_choices(s)), [scene], [take_shot])

            export_button.click(self.export, [project, scene, formats], [export_files], api_name="export")
            import_button.click(self.import_project, [bundle_upload], [project, status], api_name="import_project")
            take_outputs = [take_rows, take_video, cut_video]
            take_shot.change(self.takes, [take_shot], take_outputs, api_name="takes")
            select_take.click(self.select_take, [take_shot, take_id], take_outputs, api_name="select_take")
            job_outputs = [render_id, render_status, previews, clips, scene_video]
            for button, handler, inputs in (
                (regenerate, self.regenerate, [scene, take_shot, edit_caption, edit_seed, steps, cfg]),
                (vary, self.vary, [scene, take_shot, edit_caption, strength, edit_seed, steps, cfg]),
                (extend, self.extend, [scene, extend_caption, extend_duration, edit_seed, steps, cfg]),
            ):
                event = button.click(
                    handler,
                    [*inputs, loras, lora_strength],
                    job_outputs,
                    api_name=handler.__name__,
                    concurrency_limit=1,
                    concurrency_id="model",
                )
                event.then(self.takes, [take_shot], take_outputs)
        return demo

    def _shot_choices(self, scene_id: Any) -> list[tuple[str, int]]:
        if not scene_id:
            return []
        return [(f"{s.position + 1}. {s.action[:40]}", s.id) for s in self.storage.scenes.get(int(scene_id)).shots]


def build_app(services: Services) -> gr.Blocks:
    return StudioUI(services).build()
