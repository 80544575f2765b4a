"""Running a scene render as a studio job: storyboard in, takes and a scene video out.

The job is a generator of `RenderUpdate`s (FramePack's tagged-message pattern, typed): the
UI yields each one to the browser. Everything durable happens as soon as it exists: each
shot's clip is written and recorded as a take the moment the VAE decodes it, so a crash
loses at most the shot being decoded, and a new take never replaces the director's chosen
one. Every status change goes through storage's guarded transition, and a failure is
recorded with its message before it reaches the user.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from safetensors.torch import save_file

from engine import Cancelled, Preview, Progress, RenderSettings, SceneFinished, SceneSpec, ShotDecoded, ShotLayout
from engine.output import build_manifest
from engine.video import frames_to_uint8, write_mp4
from storage import RenderRecord, SceneWithShots, Storage

from .compiler import CharacterBrief, CompiledScene, SceneBrief, ShotBrief, compile_scene
from .engine import EngineService

PREVIEW_SCALE = 8  # latent pixels -> screen pixels, like the VAE's spatial factor


@dataclass(frozen=True)
class RenderRequest:
    """What the director asked for; size and seed default to the scene's own."""

    scene_id: int
    steps: int = 50
    seed: int | None = None
    guidance_scale: float = 5.0
    attention: str | None = None  # None = the checkpoint's mode
    height: int | None = None
    width: int | None = None


@dataclass(frozen=True)
class RenderUpdate:
    """One message to the UI: the render row as it stands plus what just became available."""

    render: RenderRecord
    message: str
    previews: tuple[np.ndarray, ...] = field(default=(), repr=False)  # one image per shot, screen-sized
    clip: Path | None = None  # absolute path of the shot clip that just finished
    clip_shot: int | None = None
    scene_video: Path | None = None


def scene_brief(storage: Storage, scene: SceneWithShots) -> SceneBrief:
    """The storyboard rows as the prompt compiler's input."""
    characters = storage.characters.list_for_project(scene.scene.project_id)
    tags = {c.id: c.tag for c in characters}
    return SceneBrief(
        description=scene.scene.description,
        fps=scene.scene.fps,
        width=scene.scene.width,
        height=scene.scene.height,
        negative_prompt=scene.scene.negative_prompt,
        characters=tuple(CharacterBrief(c.tag, c.name, c.description) for c in characters),
        shots=tuple(
            ShotBrief(
                action=s.action,
                duration_s=s.duration_s,
                shot_size=s.shot_size,
                camera_angle=s.camera_angle,
                camera_movement=s.camera_movement,
                dialogue=s.dialogue,
                character_tags=tuple(tags[i] for i in s.character_ids),
            )
            for s in scene.shots
        ),
    )


class RenderService:
    """Compiles a scene, runs it on the engine and files the results; one job per call."""

    def __init__(self, storage: Storage, engine: EngineService) -> None:
        self.storage = storage
        self.engine = engine
        self._cancels: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def compile(self, scene_id: int) -> CompiledScene:
        scene = self.storage.scenes.get(scene_id)
        return compile_scene(scene_brief(self.storage, scene), self.engine.pipeline.tokenizer)

    def cancel(self, render_id: int) -> bool:
        """Ask a running render to stop after its current step; False if it is not running here."""
        with self._lock:
            event = self._cancels.get(render_id)
        if event is None:
            return False
        event.set()
        return True

    def run(self, request: RenderRequest) -> Iterator[RenderUpdate]:
        scene_rows = self.storage.scenes.get(request.scene_id)
        scene_spec = compile_scene(scene_brief(self.storage, scene_rows), self.engine.pipeline.tokenizer).scene
        if request.height or request.width:
            scene_spec = replace(
                scene_spec, height=request.height or scene_spec.height, width=request.width or scene_spec.width
            )
        settings = RenderSettings(
            steps=request.steps,
            seed=scene_rows.scene.seed if request.seed is None else request.seed,
            guidance_scale=request.guidance_scale,
            attention=request.attention,  # type: ignore[arg-type]
        )
        pipe = self.engine.pipeline
        scene_spec, layout = pipe.resolve_scene(scene_spec, settings)  # every input check before a row exists
        record = self.storage.renders.create(
            request.scene_id,
            "render",
            {**settings.to_dict(), "prompt": scene_spec.prompt, "scene": scene_spec.to_dict()},
            settings.seed,
        )
        cancel = threading.Event()
        with self._lock:
            self._cancels[record.id] = cancel
        try:
            record = self.storage.renders.transition(record.id, "running", engine=self.engine.info.to_dict())
            yield RenderUpdate(
                record, f"Render {record.id} started: {layout.num_shots} shots, {layout.num_frames} frames"
            )
            yield from self._stream(record, scene_rows, scene_spec, layout, settings, cancel)
        except Exception as error:
            if self.storage.renders.get(record.id).status == "running":
                self.storage.renders.transition(record.id, "failed", error=f"{type(error).__name__}: {error}")
            raise
        finally:
            with self._lock:
                self._cancels.pop(record.id, None)
            # The consumer stopped listening (closed tab, closed generator): the job ends here, recorded as such.
            if self.storage.renders.get(record.id).status == "running":
                self.storage.renders.transition(record.id, "cancelled", error="the render's viewer went away")

    def _folder(self, record: RenderRecord, project_id: int) -> str:
        return f"media/projects/{project_id}/renders/{record.id}"

    def _stream(
        self,
        record: RenderRecord,
        scene_rows: SceneWithShots,
        scene_spec: SceneSpec,
        layout: ShotLayout,
        settings: RenderSettings,
        cancel: threading.Event,
    ) -> Iterator[RenderUpdate]:
        media = self.storage.media
        folder = self._folder(record, scene_rows.scene.project_id)
        media.path(folder).mkdir(parents=True, exist_ok=True)
        shots = scene_rows.shots
        for event in self.engine.pipeline.generate(scene_spec, settings, cancel=cancel):
            if isinstance(event, Progress):
                record = self.storage.renders.set_progress(record.id, event.step / event.total_steps)
                yield RenderUpdate(
                    record, f"Step {event.step}/{event.total_steps} ({event.expert} expert), ETA {event.eta_s:.0f} s"
                )
            elif isinstance(event, Preview):
                images = tuple(
                    np.kron(image, np.ones((PREVIEW_SCALE, PREVIEW_SCALE, 1), np.uint8)) for image in event.images
                )
                yield RenderUpdate(record, f"Preview at step {event.step}", previews=images)
            elif isinstance(event, ShotDecoded):
                frames = frames_to_uint8(event.video)
                video = f"{folder}/shot_{event.shot_index + 1:02d}.mp4"
                thumbnail = f"{folder}/shot_{event.shot_index + 1:02d}.png"
                tags = {"comment": json.dumps({"render": record.id, "caption": scene_spec.captions[event.shot_index]})}
                write_mp4(media.path(video), frames, scene_spec.fps, tags)
                _write_png(media.path(thumbnail), frames[len(frames) // 2])
                shot = shots[event.shot_index]
                take = self.storage.takes.add(
                    shot.id,
                    record.id,
                    video_path=video,
                    thumbnail_path=thumbnail,
                    caption=scene_spec.captions[event.shot_index],
                )
                # A shot's first take becomes its selected one; later takes wait for the director's choice.
                if not any(t.selected for t in self.storage.takes.list_for_shot(shot.id)):
                    self.storage.takes.select(take.id)
                yield RenderUpdate(
                    record,
                    f"Shot {event.shot_index + 1}/{layout.num_shots} decoded",
                    clip=media.path(video),
                    clip_shot=event.shot_index,
                )
            elif isinstance(event, SceneFinished):
                scene_video = f"{folder}/scene.mp4"
                latents = f"{folder}/latents.safetensors"
                write_mp4(
                    media.path(scene_video),
                    frames_to_uint8(event.video),
                    scene_spec.fps,
                    {"comment": scene_spec.prompt},
                )
                save_file({"latents": event.latents.contiguous()}, str(media.path(latents)))
                manifest = build_manifest(scene_spec, event.layout, settings, self.engine.info, event.timings)
                media.write_bytes(
                    f"{folder}/manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode()
                )
                record = self.storage.renders.transition(
                    record.id, "done", timings=event.timings, latents_path=latents, scene_path=scene_video
                )
                yield RenderUpdate(
                    record, f"Done in {event.timings['total_s']:.1f} s", scene_video=media.path(scene_video)
                )
            elif isinstance(event, Cancelled):
                record = self.storage.renders.transition(record.id, "cancelled")
                yield RenderUpdate(record, f"Cancelled after step {event.step}; shots already decoded are kept")


def _write_png(path: Path, frame: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.png")
    Image.fromarray(frame).save(temporary, format="PNG")
    temporary.replace(path)


def describe_compiled(compiled: CompiledScene, fps: float) -> dict[str, Any]:
    """What the storyboard shows before rendering: captions, per-shot frames, total length, tokens."""
    return {
        "global_caption": compiled.global_caption,
        "shots": [
            {"caption": caption, "frames": end - start, "frame_range": [start, end]}
            for caption, (start, end) in zip(compiled.shot_captions, compiled.layout.frame_ranges)
        ],
        "num_frames": compiled.layout.num_frames,
        "duration_s": round(compiled.layout.num_frames / fps, 2),
        "shot_cut_frames": list(compiled.layout.cut_frames),
        "tokens": compiled.token_count,
        "token_limit": compiled.token_limit,
    }
