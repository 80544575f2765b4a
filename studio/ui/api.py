"""The studio's operations with typed arguments: one method, one service call.

The page's event handlers call these, and `StudioUI` publishes each as a named API endpoint
(`gr.api`), so a script (gradio_client) and a director's click run exactly the same code.
Each returns plain data (ids, versions, view records as dicts) a client can read by name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from storage import RenderRecord, Storage

from ..bundle import export_bundle, import_bundle
from ..examples import create_example_projects
from ..exports.errors import ExportError
from ..pictures import PictureService, decode_upload
from ..renders import EditRequest, RenderRequest, describe_compiled
from ..scene_export import EXPORT_FILES, export_scene
from ..services import Services
from . import views


class StudioAPI:
    """Operations on projects, the storyboard, takes and renders, for the page and for scripts."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.storage: Storage = services.storage
        self.pictures = PictureService(services.storage)

    # -- projects -----------------------------------------------------------------------------

    def create_project(self, name: str) -> dict[str, int]:
        """A new project with one empty scene at the model's own size and frame rate."""
        project = self.storage.projects.create(name)
        d = self.services.engine.pipeline.defaults
        scene = self.storage.scenes.add(project.id, title="Scene 1", fps=d.fps, width=d.width, height=d.height)
        return {"project_id": project.id, "scene_id": scene.id}

    def add_examples(self) -> list[int]:
        """One project per example storyboard in the shipped toy model's vocabulary; their scene ids."""
        return create_example_projects(self.storage)

    def rename_project(self, project_id: int, name: str, version: int) -> int:
        return self.storage.projects.rename(project_id, name, version=version).version

    def duplicate_project(self, project_id: int) -> int:
        return self.storage.projects.duplicate(project_id).id

    def delete_project(self, project_id: int) -> None:
        self.storage.projects.delete(project_id)

    # -- the storyboard -----------------------------------------------------------------------

    def save_scene(self, scene_id: int, version: int, fields: dict[str, Any]) -> int:
        """Change scene fields by name (title, description, fps, width, height, seed, negative_prompt)."""
        changes = dict(fields)
        if "negative_prompt" in changes and isinstance(changes["negative_prompt"], str):
            changes["negative_prompt"] = changes["negative_prompt"].strip() or None
        return self.storage.scenes.update(scene_id, version=version, **changes).version

    def add_character(self, project_id: int, name: str, description: str = "", notes: str = "") -> int:
        return self.storage.characters.add(project_id, name, description=description, notes=notes).id

    def save_character(self, character_id: int, version: int, fields: dict[str, Any]) -> int:
        return self.storage.characters.update(character_id, version=version, **fields).version

    def delete_character(self, character_id: int) -> None:
        self.storage.characters.delete(character_id)

    def add_shot(self, scene_id: int, action: str = "", after_shot_id: int | None = None) -> int:
        """A new shot after `after_shot_id` (at the end without one); its id."""
        shots = self.storage.scenes.get(scene_id).shots
        ids = [s.id for s in shots]
        position = ids.index(after_shot_id) + 1 if after_shot_id in ids else len(ids)
        return self.storage.shots.insert(scene_id, position, action=action).id

    def save_shot(self, shot_id: int, version: int, fields: dict[str, Any]) -> int:
        """Change shot fields by name (action, shot_size, ..., duration_s, character_ids) in one edit."""
        changes = dict(fields)
        characters = changes.pop("character_ids", None)
        return self.storage.shots.update(shot_id, version=version, character_ids=characters, **changes).version

    def duplicate_shot(self, shot_id: int) -> int:
        return self.storage.shots.duplicate(shot_id).id

    def delete_shot(self, shot_id: int) -> None:
        self.storage.shots.delete(shot_id)

    def reorder_shots(self, scene_id: int, shot_ids: list[int]) -> list[int]:
        return [shot.id for shot in self.storage.shots.reorder(scene_id, [int(i) for i in shot_ids])]

    # -- pictures -----------------------------------------------------------------------------

    def upload_keyframe(self, shot_id: int, version: int, image: str, name: str = "upload") -> int:
        """Make an image the picture shot `shot_id` opens on; `image` is the file's bytes as base64
        (or a `data:` URL). Refused, naming `keyframe`, unless it is a readable, opaque image within
        PIL's pixel limit; the shot's new version."""
        return self.pictures.set_keyframe(shot_id, version, decode_upload(image, "keyframe"), name).version

    def clear_keyframe(self, shot_id: int, version: int) -> int:
        return self.pictures.clear_keyframe(shot_id, version).version

    def frame_as_keyframe(self, take_id: int, frame: int, shot_id: int, version: int) -> int:
        """Frame `frame` (0 = first) of take `take_id`, as its clip decodes, as shot `shot_id`'s keyframe.

        The page sends the frame under the cut player's playhead for that take's own shot; any
        shot of the project may be named (to open shot 3 on shot 2's last frame)."""
        return self.pictures.keyframe_from_take(take_id, frame, shot_id, version).version

    def upload_reference(self, character_id: int, version: int, image: str, name: str = "upload") -> int:
        """Make an image the character's reference (every shot of a scene they appear in sees it); base64."""
        return self.pictures.set_reference(character_id, version, decode_upload(image, "reference"), name).version

    def clear_reference(self, character_id: int, version: int) -> int:
        return self.pictures.clear_reference(character_id, version).version

    def compiled(self, scene_id: int) -> dict[str, Any]:
        """What the scene renders as: captions, frames on the 4t+1 grid, cuts, tokens against 512."""
        scene = self.storage.scenes.get(scene_id)
        return describe_compiled(self.services.renders.compile(scene), scene.scene.fps)

    def board(self, scene_id: int, selected_shot_id: int | None = None) -> dict[str, Any]:
        """The storyboard as the page shows it: cards, pictures, statuses and the timeline."""
        tokenizer = self.services.engine.pipeline.tokenizer
        return views.board_view(self.storage, tokenizer, scene_id, selected_shot_id).as_value()

    # -- takes --------------------------------------------------------------------------------

    def takes(self, scene_id: int, shot_id: int) -> dict[str, Any]:
        return views.filmstrip_view(self.storage, scene_id, shot_id).as_value()

    def select_take(self, take_id: int) -> int:
        return self.storage.takes.select(take_id).id

    def scene_as_cut(self, scene_id: int) -> str | None:
        """The selected take of every shot joined as one MP4 (None until every shot has a take)."""
        cut = self.services.renders.assemble_scene(scene_id)
        return None if cut is None else str(cut.path)

    # -- render jobs --------------------------------------------------------------------------

    def enqueue(self, request: RenderRequest | EditRequest, takes: int = 1) -> list[int]:
        """Queue `takes` jobs (seeds seed, seed+1, ...) for the worker; their ids. Nothing runs here."""
        ids = [record.id for record in self.services.renders.enqueue(request, takes)]
        self.services.worker.wake()
        return ids

    def render(
        self,
        scene_id: int,
        steps: int = 50,
        seed: int | None = None,
        guidance_scale: float | None = None,
        attention: str | None = None,
        height: int | None = None,
        width: int | None = None,
        loras: list[list[Any]] | None = None,
        takes: int = 1,
    ) -> list[int]:
        """Queue renders of the whole scene (`takes` of them, consecutive seeds); the job ids.

        `guidance_scale` defaults to the model card's CFG, `loras` is [[name, strength], ...].
        Follow a job with `/follow`.
        """
        request = RenderRequest(
            scene_id, steps, seed, self._cfg(guidance_scale), attention, height, width, _lora_pairs(loras)
        )
        return self.enqueue(request, takes)

    def edit(
        self,
        scene_id: int,
        kind: str,
        shot_id: int | None = None,
        caption: str | None = None,
        strength: float = 1.0,
        duration_s: float | None = None,
        steps: int = 50,
        seed: int | None = None,
        guidance_scale: float | None = None,
        loras: list[list[Any]] | None = None,
        takes: int = 1,
    ) -> list[int]:
        """Queue a redo (`kind`: regenerate or vary shot `shot_id`, or extend the scene), the rest held as cut."""
        request = EditRequest(
            scene_id, kind, shot_id, caption, strength, duration_s, steps, seed,  # type: ignore[arg-type]
            self._cfg(guidance_scale), loras=_lora_pairs(loras),
        )  # fmt: skip
        return self.enqueue(request, takes)

    def job(self, render_id: int) -> dict[str, Any]:
        """One job as it stands: {render_id, status, progress, message, error}."""
        return _job_state(self.storage.renders.get(render_id))

    def follow(self, render_id: int, poll_s: float = 0.1) -> Iterator[dict[str, Any]]:
        """A job's state each time it changes, until it ends: any number of clients may follow one job."""
        last = None
        while True:
            state = self.job(render_id)
            if state != last:
                yield state
                last = state
            if state["status"] not in ("queued", "running"):
                return
            time.sleep(poll_s)

    def jobs(self) -> dict[str, Any]:
        """The Jobs panel: queued jobs in order with ETAs, the running one, finished ones."""
        return views.jobs_view(self.storage).as_value()

    def cancel(self, render_id: int) -> bool:
        """Cancel a queued job before it starts, or a running one after its current step."""
        return self.services.renders.cancel(render_id)

    def retry(self, render_id: int) -> int:
        """Queue a failed, cancelled or interrupted job again with the same settings and seed; the new id."""
        record = self.services.renders.retry(render_id)
        self.services.worker.wake()
        return record.id

    def dismiss(self, render_id: int) -> None:
        """Take a finished job off the Jobs panel (its takes stay)."""
        self.storage.renders.dismiss(render_id)

    def _cfg(self, guidance_scale: float | None) -> float:
        return self.services.engine.pipeline.defaults.guidance_scale if guidance_scale is None else guidance_scale

    # -- export and import --------------------------------------------------------------------

    def export(self, project_id: int, scene_id: int, formats: list[str]) -> list[str]:
        """Write the chosen exports into a new folder of the data directory; the files for download."""
        folder = self.services.settings.data_dir / "exports" / datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        unknown = [name for name in formats if name != "bundle" and name not in EXPORT_FILES]
        if unknown or not formats:
            choices = ", ".join([*EXPORT_FILES, "bundle"])
            raise ExportError(f"formats: choose one or more of {choices}; got {', '.join(unknown) or 'none'}")
        files: list[Path] = []
        for name in formats:
            if name == "bundle":
                files.append(export_bundle(self.storage, project_id, folder / "project.zip"))
            else:
                files += export_scene(self.storage, scene_id, name, folder / EXPORT_FILES[name])
        return [str(f) for f in files if f.is_file()]

    def import_project(self, bundle: str) -> int:
        return import_bundle(self.storage, Path(bundle)).id


def _lora_pairs(loras: list[list[Any]] | None) -> tuple[tuple[str, float], ...]:
    return tuple((str(name), float(strength)) for name, strength in loras or ())


def _job_state(render: RenderRecord) -> dict[str, Any]:
    return {
        "render_id": render.id,
        "status": render.status,
        "progress": render.progress,
        "message": render.message,
        "error": render.error,
    }
