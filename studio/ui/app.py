"""The Gradio app: a visual storyboard over the studio's services.

The page a director meets: a header bar (project, scene, render), the board (a card per shot
under a timeline strip), the selected shot's takes as a filmstrip, the scene as cut, and a
side panel (shot editor and redo, render settings, scene and cast, project and exports,
engine). Handlers read the page's selection, call one `StudioAPI` operation and return the
panels that changed as `{component: value}`, built by `views`, never as positional tuples.
Renders are only queued here; the studio's worker runs them, and a one-second tick reads the
jobs' rows and files, so every page (reloaded or new) shows the same progress.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine.lora import DRAFT_GUIDANCE, DRAFT_STEPS

from ..renders import EditRequest, RenderRequest
from ..services import Services
from . import components, layout, views
from .api import StudioAPI
from .errors import required_id, shown_as_text, user_errors, user_message

TICK_S = 1.0  # how often a page reads the jobs' rows: progress, previews, finished jobs


@dataclass
class Panels:
    """Every component a handler may update, by name."""

    project: gr.Dropdown
    scene: gr.Dropdown
    status: gr.Markdown
    board: gr.HTML
    prompt_box: gr.Accordion
    compiled: gr.JSON
    filmstrip: gr.HTML
    cut: gr.HTML
    shot_editor: gr.HTML
    scene_editor: gr.HTML
    cast: gr.HTML
    character_editor: gr.HTML
    project_name: gr.Textbox
    project_version: gr.State
    shot: gr.State
    character: gr.State
    jobs: gr.HTML
    seen: gr.State  # what the last tick showed: finished job ids and the scene's live progress
    progress: gr.Markdown


class StudioUI:
    """Builds the Blocks and owns the handlers; every handler goes through `StudioAPI`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.storage = services.storage
        self.api = StudioAPI(services)
        self.p: Panels  # set by build()

    # -- read side ----------------------------------------------------------------------------

    def project_choices(self) -> list[tuple[str, int]]:
        return [(p.name, p.id) for p in self.storage.projects.list_all()]

    def scene_choices(self, project_id: Any) -> list[tuple[str, int]]:
        if not project_id:
            return []
        return [(s.title, s.id) for s in self.storage.scenes.list_for_project(int(project_id))]

    def _project_of(self, scene_id: Any) -> int | None:
        return self.storage.scenes.get(int(scene_id)).scene.project_id if scene_id else None

    def _compiled(self, scene_id: Any) -> dict[str, Any]:
        if not scene_id:
            return {}
        try:
            return self.api.compiled(int(scene_id))
        except Exception as error:
            message = user_message(error)
            if message is None:
                raise
            return {"not renderable yet": message}

    def _cut(self, scene_id: Any, shot_id: Any) -> dict[str, Any]:
        cut = self.services.renders.assemble_scene(int(scene_id)) if scene_id else None
        return views.cut_view(self.storage, scene_id, cut, shot_id).as_value()

    def panels(
        self,
        scene_id: Any,
        shot_id: Any,
        *parts: str,
        character_id: Any = None,
    ) -> dict[Any, Any]:
        """The named panels as they are now in storage: the one place views are built for the page."""
        p, out = self.p, {}
        tokenizer = self.services.engine.pipeline.tokenizer
        for part in parts:
            if part == "board":
                live = views.live_previews(self.storage, scene_id)
                out[p.board] = views.board_view(self.storage, tokenizer, scene_id, shot_id, live).as_value()
            elif part == "compiled":
                out[p.compiled] = self._compiled(scene_id)
            elif part == "filmstrip":
                out[p.filmstrip] = views.filmstrip_view(self.storage, scene_id, shot_id).as_value()
            elif part == "cut":
                out[p.cut] = self._cut(scene_id, shot_id)
            elif part == "shot":
                out[p.shot_editor] = views.shot_form(self.storage, scene_id, shot_id).as_value()
            elif part == "scene":
                out[p.scene_editor] = views.scene_form(self.storage, scene_id).as_value()
            elif part == "cast":
                out[p.cast] = views.cast_view(self.storage, self._project_of(scene_id), character_id).as_value()
            elif part == "jobs":
                out[p.jobs] = views.jobs_view(self.storage).as_value()
            elif part == "character":
                project_id = self._project_of(scene_id)
                out[p.character_editor] = views.character_form(self.storage, project_id, character_id).as_value()
            else:
                raise ValueError(f"no panel {part!r}")
        return out

    # -- projects and scenes ------------------------------------------------------------------

    @user_errors
    def open_project(self, project_id: Any) -> dict[Any, Any]:
        p = self.p
        if not project_id:
            return {p.scene: gr.Dropdown(choices=[], value=None), p.project_name: "", p.project_version: 0}
        project = self.storage.projects.get(int(project_id))
        scenes = self.scene_choices(project.id)
        return {
            p.scene: gr.Dropdown(choices=scenes, value=scenes[0][1] if scenes else None),
            p.project_name: project.name,
            p.project_version: project.version,
        }

    @user_errors
    def open_scene(self, scene_id: Any) -> dict[Any, Any]:
        shots = self.storage.scenes.get(int(scene_id)).shots if scene_id else ()
        shot_id = shots[0].id if shots else None
        out = self.panels(scene_id, shot_id, "board", "compiled", "filmstrip", "cut", "shot", "scene", "cast")
        out.update(self.panels(scene_id, None, "character"))
        return {**out, self.p.shot: shot_id, self.p.character: None}

    def _opened(self, project_id: int, scene_id: int | None, message: str) -> dict[Any, Any]:
        return {
            self.p.project: gr.Dropdown(choices=self.project_choices(), value=project_id),
            self.p.scene: gr.Dropdown(choices=self.scene_choices(project_id), value=scene_id),
            self.p.status: message,
        }

    @user_errors
    def create_project(self, name: str) -> dict[Any, Any]:
        made = self.api.create_project(name)
        return self._opened(made["project_id"], made["scene_id"], "Created the project: add shots on the board")

    @user_errors
    def add_examples(self) -> dict[Any, Any]:
        scene_ids = self.api.add_examples()
        first = self.storage.scenes.get(scene_ids[0]).scene
        return self._opened(first.project_id, first.id, f"Added {len(scene_ids)} example projects: press Render")

    @user_errors
    def rename_project(self, project_id: Any, name: str, version: int) -> dict[Any, Any]:
        version = self.api.rename_project(required_id(project_id, "project"), name, int(version))
        return {
            self.p.project: gr.Dropdown(choices=self.project_choices(), value=int(project_id)),
            self.p.project_version: version,
            self.p.status: "Renamed",
        }

    @user_errors
    def duplicate_project(self, project_id: Any) -> dict[Any, Any]:
        copy = self.api.duplicate_project(required_id(project_id, "project"))
        return {self.p.project: gr.Dropdown(choices=self.project_choices(), value=copy), self.p.status: "Duplicated"}

    @user_errors
    def delete_project(self, project_id: Any) -> dict[Any, Any]:
        self.api.delete_project(required_id(project_id, "project"))
        choices = self.project_choices()
        return {
            self.p.project: gr.Dropdown(choices=choices, value=choices[0][1] if choices else None),
            self.p.status: "Project deleted",
        }

    # -- the board ------------------------------------------------------------------------------

    @user_errors
    def select_shot(self, scene_id: Any, event: gr.EventData) -> dict[Any, Any]:
        shot_id = int(event.shot_id)
        return {**self.panels(scene_id, shot_id, "shot", "filmstrip", "cut"), self.p.shot: shot_id}

    @user_errors
    def reorder(self, scene_id: Any, shot_id: Any, event: gr.EventData) -> dict[Any, Any]:
        self.api.reorder_shots(required_id(scene_id, "scene"), list(event.shot_ids))
        return self.panels(scene_id, shot_id, "board", "compiled", "cut", "shot")

    @user_errors
    def add_shot(self, scene_id: Any, event: gr.EventData) -> dict[Any, Any]:
        shot_id = self.api.add_shot(required_id(scene_id, "scene"), "", event.after_id)
        return {**self.panels(scene_id, shot_id, "board", "compiled", "filmstrip", "shot"), self.p.shot: shot_id}

    @user_errors
    def duplicate_shot(self, scene_id: Any, event: gr.EventData) -> dict[Any, Any]:
        shot_id = self.api.duplicate_shot(int(event.shot_id))
        out = self.panels(scene_id, shot_id, "board", "compiled", "filmstrip", "cut", "shot")
        return {**out, self.p.shot: shot_id}

    @user_errors
    def delete_shot(self, scene_id: Any, shot_id: Any, event: gr.EventData) -> dict[Any, Any]:
        deleted = int(event.shot_id)
        ids = [s.id for s in self.storage.scenes.get(required_id(scene_id, "scene")).shots]
        self.api.delete_shot(deleted)
        rest = [i for i in ids if i != deleted]
        keep = shot_id if shot_id in rest else (rest[min(ids.index(deleted), len(rest) - 1)] if rest else None)
        out = self.panels(scene_id, keep, "board", "compiled", "filmstrip", "cut", "shot")
        return {**out, self.p.shot: keep}

    @user_errors
    def edited(self, scene_id: Any, shot_id: Any) -> dict[Any, Any]:
        """After a field was saved from an editor: what shows the storyboard's text and timing."""
        return self.panels(scene_id, shot_id, "board", "compiled", "filmstrip")

    @user_errors
    def pick_take(self, scene_id: Any, shot_id: Any, event: gr.EventData) -> dict[Any, Any]:
        self.api.select_take(int(event.take_id))
        return self.panels(scene_id, shot_id, "board", "filmstrip", "cut")

    # -- pictures ------------------------------------------------------------------------------

    def _keyframe_set(self, scene_id: Any, shot_id: int, what: str) -> dict[Any, Any]:
        """After a shot's keyframe changed: its card, the prompt, and its editor (the shot has a new version)."""
        shots = [s.id for s in self.storage.scenes.get(required_id(scene_id, "scene")).shots]
        number = shots.index(shot_id) + 1 if shot_id in shots else "?"
        out = self.panels(scene_id, shot_id, "board", "compiled", "filmstrip", "shot")
        return {**out, self.p.shot: shot_id, self.p.status: f"Shot {number}: {what}"}

    @user_errors
    def upload_keyframe(self, scene_id: Any, event: gr.EventData) -> dict[Any, Any]:
        shot_id = int(event.shot_id)
        self.api.upload_keyframe(shot_id, int(event.version), str(event.data), str(event.name or "upload"))
        return self._keyframe_set(scene_id, shot_id, "keyframe set; the shot opens on it from the next render")

    @user_errors
    def use_frame(self, scene_id: Any, event: gr.EventData) -> dict[Any, Any]:
        shot_id = int(event.shot_id)
        self.api.frame_as_keyframe(int(event.take_id), int(event.frame), shot_id, int(event.version))
        return self._keyframe_set(scene_id, shot_id, f"frame {int(event.frame) + 1} of its take is now its keyframe")

    @user_errors
    def clear_keyframe(self, scene_id: Any, event: gr.EventData) -> dict[Any, Any]:
        shot_id = int(event.shot_id)
        self.api.clear_keyframe(shot_id, int(event.version))
        return self._keyframe_set(scene_id, shot_id, "keyframe removed")

    def _reference_set(self, scene_id: Any, shot_id: Any, character_id: int, what: str) -> dict[Any, Any]:
        """After a reference changed: the cast, the character's editor (new version), and the prompt's tokens."""
        out = self.panels(scene_id, shot_id, "board", "compiled", "cast", "character", character_id=character_id)
        return {**out, self.p.character: character_id, self.p.status: what}

    @user_errors
    def upload_reference(self, scene_id: Any, shot_id: Any, event: gr.EventData) -> dict[Any, Any]:
        character_id = int(event.character_id)
        self.api.upload_reference(character_id, int(event.version), str(event.data), str(event.name or "upload"))
        return self._reference_set(scene_id, shot_id, character_id, "Reference image set")

    @user_errors
    def clear_reference(self, scene_id: Any, shot_id: Any, event: gr.EventData) -> dict[Any, Any]:
        character_id = int(event.character_id)
        self.api.clear_reference(character_id, int(event.version))
        return self._reference_set(scene_id, shot_id, character_id, "Reference image removed")

    # -- characters ----------------------------------------------------------------------------

    @user_errors
    def select_character(self, scene_id: Any, event: gr.EventData) -> dict[Any, Any]:
        character_id = int(event.character_id)
        return {**self.panels(scene_id, None, "character", character_id=character_id), self.p.character: character_id}

    @user_errors
    def add_character(self, scene_id: Any) -> dict[Any, Any]:
        project_id = self._project_of(required_id(scene_id, "scene"))
        assert project_id is not None
        count = len(self.storage.characters.list_for_project(project_id))
        character_id = self.api.add_character(project_id, f"Character {count + 1}")
        out = self.panels(scene_id, None, "cast", "character", character_id=character_id)
        return {**out, self.p.character: character_id}

    @user_errors
    def delete_character(self, scene_id: Any, shot_id: Any, event: gr.EventData) -> dict[Any, Any]:
        self.api.delete_character(int(event.character_id))
        out = self.panels(scene_id, shot_id, "board", "compiled", "cast", "character", "shot")
        return {**out, self.p.character: None}

    @user_errors
    def character_edited(self, scene_id: Any, shot_id: Any, character_id: Any) -> dict[Any, Any]:
        return self.panels(scene_id, shot_id, "board", "compiled", "cast", character_id=character_id)

    # -- render jobs ---------------------------------------------------------------------------

    def _queued(self, scene_id: Any, shot_id: Any, ids: list[int]) -> dict[Any, Any]:
        what = f"render {ids[0]}" if len(ids) == 1 else f"renders {ids[0]}-{ids[-1]}"
        out = self.panels(scene_id, shot_id, "board", "jobs")
        return {**out, self.p.status: f"Queued {what}: the Jobs panel follows it; closing this page changes nothing"}

    @user_errors
    def render(self, scene_id, shot_id, steps, seed, cfg, height, width, attention, loras, lora_strength, takes):
        request = RenderRequest(
            scene_id=required_id(scene_id, "scene"),
            steps=int(steps),
            seed=_seed(seed),
            guidance_scale=float(cfg),
            attention=None if attention == "checkpoint default" else attention,
            height=int(height) if height else None,
            width=int(width) if width else None,
            loras=_loras(loras, lora_strength),
        )
        return self._queued(scene_id, shot_id, self.api.enqueue(request, int(takes)))

    def _edit(
        self, kind, scene_id, shot_id, caption, strength, duration, seed, steps, cfg, loras, lora_strength, takes
    ):
        request = EditRequest(
            scene_id=required_id(scene_id, "scene"),
            kind=kind,
            shot_id=None if kind == "extend" else required_id(shot_id, "shot (click a card)"),
            caption=caption or None,
            strength=float(strength),
            duration_s=float(duration) if duration else None,
            seed=_seed(seed),
            steps=int(steps),
            guidance_scale=float(cfg),
            loras=_loras(loras, lora_strength),
        )
        out = self._queued(scene_id, shot_id, self.api.enqueue(request, 1 if kind == "extend" else int(takes)))
        return {**out, **self.panels(scene_id, shot_id, "board", "compiled")}

    @user_errors
    def regenerate(self, scene_id, shot_id, caption, seed, steps, cfg, loras, lora_strength, takes):
        return self._edit(
            "regenerate", scene_id, shot_id, caption, 1.0, None, seed, steps, cfg, loras, lora_strength, takes
        )

    @user_errors
    def vary(self, scene_id, shot_id, caption, strength, seed, steps, cfg, loras, lora_strength, takes):
        return self._edit(
            "vary", scene_id, shot_id, caption, strength, None, seed, steps, cfg, loras, lora_strength, takes
        )

    @user_errors
    def extend(self, scene_id, shot_id, caption, duration, seed, steps, cfg, loras, lora_strength, takes):
        return self._edit(
            "extend", scene_id, None, caption, 1.0, duration, seed, steps, cfg, loras, lora_strength, takes
        )

    @user_errors
    def cancel_current(self, scene_id: Any) -> dict[Any, Any]:
        """The header's Cancel: the scene's running job, else its next queued one."""
        jobs = self.storage.renders.list_for_scene(required_id(scene_id, "scene"))
        live = [r for r in jobs if r.status == "running"] or sorted(
            (r for r in jobs if r.status == "queued"), key=lambda r: r.id
        )
        if not live:
            return {self.p.status: "Nothing of this scene is queued or rendering"}
        self.api.cancel(live[0].id)
        return {**self.panels(scene_id, None, "jobs"), self.p.status: f"Cancelling render {live[0].id}…"}

    def _after_job_action(self, scene_id: Any, shot_id: Any, message: str) -> dict[Any, Any]:
        return {**self.panels(scene_id, shot_id, "jobs", "board"), self.p.status: message}

    @user_errors
    def cancel_job(self, scene_id: Any, shot_id: Any, event: gr.EventData) -> dict[Any, Any]:
        render_id = int(event.render_id)
        message = "Cancelling…" if self.api.cancel(render_id) else f"Render {render_id} already ended"
        return self._after_job_action(scene_id, shot_id, message)

    @user_errors
    def retry_job(self, scene_id: Any, shot_id: Any, event: gr.EventData) -> dict[Any, Any]:
        render_id = int(event.render_id)
        message = f"Queued render {self.api.retry(render_id)}, a retry of render {render_id} (same settings and seed)"
        return self._after_job_action(scene_id, shot_id, message)

    @user_errors
    def remove_job(self, scene_id: Any, shot_id: Any, event: gr.EventData) -> dict[Any, Any]:
        self.api.dismiss(int(event.render_id))
        return self._after_job_action(
            scene_id, shot_id, f"Removed render {event.render_id} from the list (its takes stay)"
        )

    def tick(self, scene_id: Any, shot_id: Any, seen: dict[str, Any] | None) -> dict[Any, Any]:
        """Every second: the Jobs panel and progress line; the board while the scene renders, and
        the takes and cut when one of its jobs has just finished (a toast says so, on any panel)."""
        jobs = self.storage.renders.jobs()
        finished = {r.id: r.status for r in jobs if r.status not in ("queued", "running")}
        live = [r for r in jobs if r.status == "running" and scene_id and r.scene_id == int(scene_id)]
        digest = [(r.id, r.progress, r.message) for r in live]
        out: dict[Any, Any] = {
            self.p.jobs: views.jobs_view(self.storage, jobs).as_value(),
            self.p.progress: _progress_line(jobs),
        }
        previous = seen or {}
        new = [i for i in finished if previous and str(i) not in previous.get("finished", {})]
        for render_id in new:
            status = finished[render_id]
            message = f"Render {render_id} {status}"
            (gr.Info if status == "done" else gr.Warning)(message)
        ours = [i for i in new if scene_id and self.storage.renders.get(i).scene_id == int(scene_id)]
        if digest != previous.get("digest") or ours:
            out.update(self.panels(scene_id, shot_id, "board"))
        if ours:
            out.update(self.panels(scene_id, shot_id, "filmstrip", "cut"))
        out[self.p.seen] = {"finished": {str(i): s for i, s in finished.items()}, "digest": digest}
        return out

    def engine_panel(self) -> str:
        """The engine and the render workers serving the queue, read on each page load: a cluster's
        actors start, die and come back while the studio runs."""
        text = self.services.engine.markdown() + "\n\n" + views.workers_markdown(self.storage)
        return layout.as_markdown_text(text)

    # -- export and import ---------------------------------------------------------------------

    @user_errors
    def export(self, project_id: Any, scene_id: Any, formats: list[str]) -> list[str]:
        if not formats:
            raise shown_as_text("formats: choose at least one")
        return self.api.export(required_id(project_id, "project"), required_id(scene_id, "scene"), formats)

    @user_errors
    def import_project(self, bundle: Any) -> dict[Any, Any]:
        if not bundle:
            raise shown_as_text("bundle: choose a .zip exported by HoloCine Studio")
        project_id = self.api.import_project(str(bundle))
        scenes = self.scene_choices(project_id)
        return self._opened(project_id, scenes[0][1] if scenes else None, "Imported the project")

    # -- layout --------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        engine, api, storage = self.services.engine, self.api, self.storage
        with gr.Blocks(title="HoloCine Studio") as demo:
            top = layout.header(self.project_choices(), engine.info, self.services.recovered)
            with gr.Row():
                with gr.Column(scale=3, elem_id="main"):
                    area = layout.board_area()
                with gr.Column(scale=2, elem_id="side"), gr.Tabs():
                    with gr.Tab("Shot"):
                        shot_panel = layout.shot_panel(views.shot_form(storage, None, None), api.save_shot)
                    with gr.Tab("Render"):
                        render = layout.render_panel(engine.pipeline.defaults.guidance_scale, engine.lora_names)
                    with gr.Tab("Jobs"):
                        jobs = components.jobs(views.jobs_view(storage).as_value())
                    with gr.Tab("Scene & cast"):
                        scene_panel = layout.scene_panel(
                            views.scene_form(storage, None),
                            views.cast_view(storage, None, None),
                            views.character_form(storage, None, None),
                            (api.save_scene, api.save_character),
                        )
                    with gr.Tab("Project"):
                        project_panel = layout.project_panel()
                    with gr.Tab("Engine"):
                        self._engine_panel = gr.Markdown(self.engine_panel())
            shot, character, seen = gr.State(None), gr.State(None), gr.State(None)
            self.p = Panels(
                top.project, top.scene, top.status, area.board, area.prompt_box, area.compiled, area.filmstrip,
                area.cut, shot_panel.editor, scene_panel.editor, scene_panel.cast, scene_panel.character_editor,
                project_panel.name, project_panel.version, shot, character, jobs, seen, top.progress,
            )  # fmt: skip
            self._publish_api()  # first: the published operations keep their own names, page events get suffixes
            self._wire(demo, top, area, shot_panel, render, scene_panel, project_panel)
        return demo

    def _wire(self, demo, top, area, shot_panel, render, scene_panel, project_panel) -> None:
        """Each control's event to its handler; every handler may update any panel (`Panels`)."""
        p = self.p
        everything = list(vars(p).values())
        private: dict[str, Any] = {"api_visibility": "private", "show_progress": "hidden"}
        # Every click counts and runs in order (each event's queue runs one at a time), so a
        # quick second click is never dropped and the last one decides what the page shows.
        each = {"trigger_mode": "multiple", **private}

        demo.load(lambda: gr.Dropdown(choices=self.project_choices()), None, [p.project], **private)
        demo.load(self.engine_panel, None, [self._engine_panel], **private)
        p.project.change(self.open_project, [p.project], everything, **private)
        p.scene.change(self.open_scene, [p.scene], everything, **private)
        project_panel.create.click(self.create_project, [p.project_name], everything, **private)
        project_panel.examples.click(self.add_examples, None, everything, **private)
        project_panel.rename.click(
            self.rename_project, [p.project, p.project_name, p.project_version], everything, **private
        )
        project_panel.duplicate.click(self.duplicate_project, [p.project], everything, **private)
        project_panel.delete.click(self.delete_project, [p.project], everything, **private)
        project_panel.export.click(
            self.export, [p.project, p.scene, project_panel.formats], [project_panel.downloads], **private
        )
        project_panel.import_bundle.click(self.import_project, [project_panel.bundle], everything, **private)

        area.board.select_shot(self.select_shot, [p.scene], everything, **each)
        area.board.reorder(self.reorder, [p.scene, p.shot], everything, **each)
        area.board.add_shot(self.add_shot, [p.scene], everything, **each)
        area.board.duplicate_shot(self.duplicate_shot, [p.scene], everything, **each)
        area.board.delete_shot(self.delete_shot, [p.scene, p.shot], everything, **each)
        area.board.show_prompt(lambda: gr.Accordion(open=True), None, [p.prompt_box], **private)
        area.board.upload_keyframe(self.upload_keyframe, [p.scene], everything, **each)
        area.board.clear_keyframe(self.clear_keyframe, [p.scene], everything, **each)
        area.cut.use_frame(self.use_frame, [p.scene], everything, **each)
        area.filmstrip.pick_take(self.pick_take, [p.scene, p.shot], everything, **each)
        p.shot_editor.saved(self.edited, [p.scene, p.shot], everything, **each)
        p.scene_editor.saved(self.edited, [p.scene, p.shot], everything, **each)
        p.cast.select_character(self.select_character, [p.scene], everything, **each)
        p.cast.add_character(self.add_character, [p.scene], everything, **each)
        p.cast.delete_character(self.delete_character, [p.scene, p.shot], everything, **each)
        p.cast.upload_reference(self.upload_reference, [p.scene, p.shot], everything, **each)
        p.cast.clear_reference(self.clear_reference, [p.scene, p.shot], everything, **each)
        p.character_editor.saved(self.character_edited, [p.scene, p.shot, p.character], everything, **each)

        top.render.click(self.render, [p.scene, p.shot, *render.settings()], everything, **each)
        top.cancel.click(self.cancel_current, [p.scene], everything, **each)
        render.draft.click(lambda: (DRAFT_STEPS, DRAFT_GUIDANCE), None, [render.steps, render.cfg], **private)
        redo = [render.steps, render.cfg, render.loras, render.lora_strength, render.takes]
        s = shot_panel
        s.regenerate.click(self.regenerate, [p.scene, p.shot, s.caption, s.seed, *redo], everything, **each)
        s.vary.click(self.vary, [p.scene, p.shot, s.caption, s.strength, s.seed, *redo], everything, **each)
        extend_inputs = [p.scene, p.shot, s.extend_caption, s.extend_duration, s.seed, *redo]
        s.extend.click(self.extend, extend_inputs, everything, **each)
        p.jobs.cancel_job(self.cancel_job, [p.scene, p.shot], everything, **each)
        p.jobs.retry_job(self.retry_job, [p.scene, p.shot], everything, **each)
        p.jobs.remove_job(self.remove_job, [p.scene, p.shot], everything, **each)
        gr.Timer(TICK_S).tick(self.tick, [p.scene, p.shot, p.seen], everything, **private)

    def _publish_api(self) -> None:
        """Every operation as a named endpoint (`/create_project`, `/save_shot`, ...) for gradio_client."""
        api = self.api
        for operation in (
            api.create_project, api.add_examples, api.rename_project, api.duplicate_project, api.delete_project,
            api.save_scene, api.add_character, api.save_character, api.delete_character, api.add_shot,
            api.save_shot, api.duplicate_shot, api.delete_shot, api.reorder_shots, api.compiled, api.board,
            api.upload_keyframe, api.clear_keyframe, api.frame_as_keyframe, api.upload_reference, api.clear_reference,
            api.takes, api.select_take, api.scene_as_cut, api.render, api.edit, api.job, api.follow, api.jobs,
            api.cancel, api.retry, api.dismiss, api.import_project, api.export,
        ):  # fmt: skip
            gr.api(user_errors(operation), api_name=operation.__name__)


def _progress_line(jobs: list) -> str:
    """The header's one line about the queue: what renders now, how far, what waits."""
    running = [r for r in jobs if r.status == "running"]
    queued = sum(r.status == "queued" for r in jobs)
    parts = [f"Render {r.id}: {r.progress:.0%} · {r.message or 'starting'}" for r in running]
    if queued:
        parts.append(f"{queued} queued")
    return html.escape(" · ".join(parts))


def _seed(value: Any) -> int | None:
    return None if value in (None, "") or float(value) < 0 else int(value)


def _loras(names: list[str] | None, strength: Any) -> tuple[tuple[str, float], ...]:
    """The ticked LoRAs, each at the one strength slider's value."""
    return tuple((name, float(strength)) for name in names or ())


def build_app(services: Services) -> gr.Blocks:
    return StudioUI(services).build()
