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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from engine import (
    Cancelled,
    Preview,
    Progress,
    RenderEvent,
    RenderSettings,
    SceneFinished,
    SceneSpec,
    SceneValidationError,
    Shot,
    ShotDecoded,
    ShotLayout,
    limits,
)
from engine.editing import extend, extended_scene, vary, with_caption
from engine.output import build_manifest
from engine.scene import require_in_range
from engine.video import concat_mp4, count_frames, frames_to_uint8, read_metadata, read_mp4, write_mp4
from storage import CharacterRecord, RenderRecord, SceneWithShots, ShotRecord, Storage
from storage.scene_check import SceneCheck

from .compiler import CharacterBrief, CompiledScene, SceneBrief, ShotBrief, check_fits, compile_scene
from .engine import EngineService

PREVIEW_SCALE = 8  # latent pixels -> screen pixels, like the VAE's spatial factor


@dataclass(frozen=True)
class RenderRequest:
    """What the director asked for; size and seed default to the scene's own."""

    scene_id: int
    steps: int = 50
    seed: int | None = None
    guidance_scale: float = RenderSettings.guidance_scale
    attention: str | None = None  # None = the checkpoint's mode
    height: int | None = None
    width: int | None = None
    loras: tuple[tuple[str, float], ...] = ()  # loaded LoRAs to switch on, with strengths


EDIT_KINDS = ("regenerate", "vary", "extend")


@dataclass(frozen=True)
class EditRequest:
    """Redo one shot (regenerate: from noise; vary: from its take, by `strength`) or extend the scene.

    `caption` is the redone shot's edited caption (optional), or the new shot's for extend.
    """

    scene_id: int
    kind: Literal["regenerate", "vary", "extend"]
    shot_id: int | None = None
    caption: str | None = None
    strength: float = 1.0
    duration_s: float | None = None
    steps: int = 50
    seed: int | None = None
    guidance_scale: float = RenderSettings.guidance_scale
    attention: str | None = None
    loras: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class RenderUpdate:
    """One message to the UI: the render row as it stands plus what just became available."""

    render: RenderRecord
    message: str
    previews: tuple[Path, ...] = ()  # the latest x0 preview of each shot, screen-sized PNGs (overwritten each step)
    clip: Path | None = None  # absolute path of the shot clip that just finished
    clip_shot: int | None = None
    scene_video: Path | None = None


def done_message(finished: SceneFinished) -> str:
    """What the status line says when a render ends: its time and, on a GPU, its peak memory."""
    message = f"Done in {finished.timings['total_s']:.1f} s"
    if finished.peak_memory_bytes is not None:
        message += f", peak GPU memory {finished.peak_memory_bytes / 2**30:.1f} GiB"
    return message


def scene_brief(storage: Storage, scene: SceneWithShots) -> SceneBrief:
    """The storyboard rows as the prompt compiler's input."""
    return brief_of(scene, storage.characters.list_for_project(scene.scene.project_id))


def brief_of(scene: SceneWithShots, characters: Sequence[CharacterRecord]) -> SceneBrief:
    """`scene_brief` for rows already read (inside a transaction, by storage's scene check)."""
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


def storyboard_check(tokenizer: Callable[[], Any]) -> SceneCheck:
    """Storage's scene check with the model's limits: run inside every edit that can grow a scene.

    `tokenizer` is called per check, so the check can be handed to storage before the model loads.
    """

    def check(scene: SceneWithShots, cast: Sequence[CharacterRecord], edited: Sequence[str]) -> None:
        check_fits(brief_of(scene, cast), tokenizer(), edited)

    return check


class RenderService:
    """Compiles a scene, runs it on the engine and files the results; one job per call."""

    def __init__(self, storage: Storage, engine: EngineService) -> None:
        self.storage = storage
        self.engine = engine
        self._cancels: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def compile(self, scene: SceneWithShots) -> CompiledScene:
        """What `scene`'s storyboard renders as, token count included."""
        return compile_scene(scene_brief(self.storage, scene), self.engine.pipeline.tokenizer)

    def cancel(self, render_id: int) -> bool:
        """Ask a running render to stop after its current step; False if it is not running here."""
        with self._lock:
            event = self._cancels.get(render_id)
        if event is None:
            return False
        event.set()
        return True

    @staticmethod
    def _settings(scene_rows: SceneWithShots, request: RenderRequest | EditRequest) -> RenderSettings:
        """The request's settings, checked: a request refused here leaves no render row behind."""
        settings = RenderSettings(
            steps=request.steps,
            seed=scene_rows.scene.seed if request.seed is None else request.seed,
            guidance_scale=request.guidance_scale,
            attention=request.attention,
            loras=request.loras,
        )
        settings.validate()
        return settings

    def run(self, request: RenderRequest) -> Iterator[RenderUpdate]:
        """Render the whole scene; every shot gets a take."""
        scene_rows = self.storage.scenes.get(request.scene_id)
        scene_spec = self.compile(scene_rows).scene
        if request.height or request.width:
            scene_spec = replace(
                scene_spec, height=request.height or scene_spec.height, width=request.width or scene_spec.width
            )
        settings = self._settings(scene_rows, request)
        scene_spec, layout = self.engine.pipeline.resolve_scene(scene_spec, settings)  # checks before a row exists
        return self._job(
            "render",
            scene_rows,
            scene_spec,
            layout,
            settings,
            {"shot_ids": [shot.id for shot in scene_rows.shots]},
            lambda cancel: self.engine.pipeline.generate(scene_spec, settings, cancel=cancel),
            dict(enumerate(scene_rows.shots)),
        )

    def edit(self, request: EditRequest) -> Iterator[RenderUpdate]:
        """Regenerate or vary one shot, or extend the scene, holding every other shot as selected."""
        pipe = self.engine.pipeline
        if request.kind not in EDIT_KINDS:
            raise SceneValidationError("kind", f"must be one of {', '.join(EDIT_KINDS)}, got {request.kind!r}")
        require_in_range("strength", request.strength, limits.STRENGTH)
        scene_rows = self.storage.scenes.get(request.scene_id)
        settings = self._settings(scene_rows, request)
        scene_spec = self.compile(scene_rows).scene
        scene_spec, layout = pipe.resolve_scene(scene_spec, settings)
        stored = self.selected_latents(scene_rows, scene_spec, layout)
        ids = [shot.id for shot in scene_rows.shots]
        if request.kind == "extend":
            caption = (request.caption or "").strip()
            if not caption:
                raise SceneValidationError("caption", "describe the new shot")
            new_row = self.storage.shots.add(request.scene_id, action=caption, duration_s=request.duration_s or 0.0)
            try:
                longer = self.compile(self.storage.scenes.get(request.scene_id))
            except SceneValidationError:
                self.storage.shots.delete(new_row.id)  # a shot too short to render is not kept
                raise
            new_shot = Shot(longer.shot_captions[-1], frames=longer.layout.num_frames - layout.num_frames)
            rendered = extended_scene(scene_spec, layout, new_shot)
            return self._job(
                "extend",
                scene_rows,
                rendered,
                longer.layout,
                settings,
                {"shot": len(ids), "shot_ids": [*ids, new_row.id]},
                lambda cancel: extend(pipe, scene_spec, stored, new_shot, settings, cancel),
                {len(ids): new_row},
            )
        if request.shot_id not in ids:
            raise SceneValidationError("shot", f"shot {request.shot_id} is not in scene {request.scene_id}")
        index = ids.index(request.shot_id)
        caption = request.caption.strip() if request.caption and request.caption.strip() else None
        strength = 1.0 if request.kind == "regenerate" else request.strength
        rendered, _ = pipe.resolve_scene(with_caption(scene_spec, index, caption), settings)  # the edited prompt fits
        return self._job(
            request.kind,
            scene_rows,
            rendered,
            layout,
            settings,
            {"shot": index, "strength": strength, "shot_ids": ids},
            lambda cancel: vary(pipe, scene_spec, stored, index, strength, settings, caption, cancel),
            {index: scene_rows.shots[index]},
        )

    def selected_latents(self, scene_rows: SceneWithShots, scene_spec: SceneSpec, layout: ShotLayout) -> torch.Tensor:
        """The scene's latents as currently cut: each shot's frames from the render of its selected take.

        Every such render must have the storyboard's current timing and size, or the held
        shots would not be the clips the director sees.
        """
        selected = self.storage.takes.selected_for_scene(scene_rows.scene.id)
        loaded: dict[int, torch.Tensor] = {}
        parts = []
        for index, (shot, current_range) in enumerate(zip(scene_rows.shots, layout.latent_ranges)):
            take = selected.get(shot.id)
            if take is None:
                raise SceneValidationError(f"shots[{index}]", "has no selected take yet; render the scene first")
            render = self.storage.renders.get(take.render_id)
            if render.id not in loaded and render.latents_path is not None:
                loaded[render.id] = load_file(str(self.storage.media.path(render.latents_path)))["latents"]
            if not self._same_frames(render, shot.id, current_range, scene_spec) or render.id not in loaded:
                raise SceneValidationError(
                    f"shots[{index}]",
                    f"its selected take (render {render.id}) was made with other timing, order or size; "
                    "render the scene again before redoing single shots",
                )
            start, end = current_range
            parts.append(loaded[render.id][:, :, start:end])
        return torch.cat(parts, dim=2)

    @staticmethod
    def _same_frames(render: RenderRecord, shot_id: int, current_range: tuple[int, int], scene: SceneSpec) -> bool:
        """Did `render` put shot `shot_id` on exactly the latent frames it has now, at this size?"""
        rendered = render.settings.get("scene", {})
        shot_ids = render.settings.get("shot_ids", [])
        if shot_id not in shot_ids or (rendered.get("height"), rendered.get("width")) != (scene.height, scene.width):
            return False
        old = ShotLayout(rendered["num_frames"], tuple(rendered.get("shot_cut_frames", ())))
        return old.latent_ranges[shot_ids.index(shot_id)] == current_range

    def assemble_scene(self, scene_id: int) -> SceneCut | None:
        """The scene as cut: the selected take of every shot, joined without re-encoding when possible.

        The file records which takes it joins, so opening a scene whose selection has not
        changed reads that record instead of joining every clip again.
        """
        scene = self.storage.scenes.get(scene_id)
        selected = self.storage.takes.selected_for_scene(scene_id)
        takes = [selected.get(shot.id) for shot in scene.shots]
        if not takes or any(t is None for t in takes):
            return None
        take_ids = tuple(t.id for t in takes if t is not None)
        media = self.storage.media
        out = media.path(f"media/projects/{scene.scene.project_id}/scenes/{scene_id}/scene.mp4")
        existing = SceneCut.read(out)
        if existing is not None and existing.take_ids == take_ids:
            return existing
        clips = [media.path(t.video_path) for t in takes if t is not None]
        cut = SceneCut(out, take_ids, tuple(count_frames(c) for c in clips))
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            concat_mp4(clips, out, cut.metadata())
        except ValueError:  # clips of different sizes or encoder settings: re-encode them as one
            frames = np.concatenate([read_mp4(c)[0] for c in clips])
            write_mp4(out, frames, scene.scene.fps, cut.metadata())
        return cut

    def _job(
        self,
        kind: str,
        scene_rows: SceneWithShots,
        scene_spec: SceneSpec,
        layout: ShotLayout,
        settings: RenderSettings,
        details: dict[str, Any],
        start: Callable[[threading.Event], Iterator[RenderEvent]],
        shot_rows: dict[int, ShotRecord],
    ) -> Iterator[RenderUpdate]:
        """One render row from queued to a final status, streaming the engine's events as updates."""
        record = self.storage.renders.create(
            scene_rows.scene.id,
            kind,  # type: ignore[arg-type]
            {**settings.to_dict(), **details, "prompt": scene_spec.prompt, "scene": scene_spec.to_dict()},
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
            yield from self._stream(record, scene_rows, scene_spec, settings, start(cancel), shot_rows)
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
        settings: RenderSettings,
        events: Iterator[RenderEvent],
        shot_rows: dict[int, ShotRecord],
    ) -> Iterator[RenderUpdate]:
        """File what the engine produces: a take for each shot in `shot_rows`, then the scene's files."""
        media = self.storage.media
        folder = self._folder(record, scene_rows.scene.project_id)
        media.path(folder).mkdir(parents=True, exist_ok=True)
        for event in events:
            if isinstance(event, Progress):
                record = self.storage.renders.set_progress(record.id, event.step / event.total_steps)
                yield RenderUpdate(
                    record, f"Step {event.step}/{event.total_steps} ({event.expert} expert), ETA {event.eta_s:.0f} s"
                )
            elif isinstance(event, Preview):
                previews = []
                for index, image in enumerate(event.images):
                    path = media.path(f"{folder}/previews/shot_{index + 1:02d}.png")
                    _write_png(path, np.kron(image, np.ones((PREVIEW_SCALE, PREVIEW_SCALE, 1), np.uint8)))
                    previews.append(path)
                yield RenderUpdate(record, f"Preview at step {event.step}", previews=tuple(previews))
            elif isinstance(event, ShotDecoded) and event.shot_index in shot_rows:
                frames = frames_to_uint8(event.video)
                video = f"{folder}/shot_{event.shot_index + 1:02d}.mp4"
                thumbnail = f"{folder}/shot_{event.shot_index + 1:02d}.png"
                tags = {"comment": json.dumps({"render": record.id, "caption": scene_spec.captions[event.shot_index]})}
                write_mp4(media.path(video), frames, scene_spec.fps, tags)
                _write_png(media.path(thumbnail), frames[len(frames) // 2])
                shot = shot_rows[event.shot_index]
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
                    f"Shot {event.shot_index + 1}/{len(scene_spec.shots)} decoded",
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
                manifest = build_manifest(scene_spec, settings, self.engine.info, event)
                media.write_bytes(
                    f"{folder}/manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode()
                )
                record = self.storage.renders.transition(
                    record.id, "done", timings=event.timings, latents_path=latents, scene_path=scene_video
                )
                yield RenderUpdate(record, done_message(event), scene_video=media.path(scene_video))
            elif isinstance(event, Cancelled):
                record = self.storage.renders.transition(record.id, "cancelled")
                yield RenderUpdate(record, f"Cancelled after step {event.step}; shots already decoded are kept")


@dataclass(frozen=True)
class SceneCut:
    """The scene as cut on disk, and what it joins: each shot's selected take and its frame count."""

    path: Path
    take_ids: tuple[int, ...]
    frames: tuple[int, ...]  # per shot, in shot order

    def metadata(self) -> dict[str, str]:
        return {"comment": json.dumps({"takes": self.take_ids, "frames": self.frames})}

    @classmethod
    def read(cls, path: Path) -> SceneCut | None:
        """The record an earlier `assemble_scene` wrote into the file; None without one."""
        if not path.is_file():
            return None
        try:
            recorded = json.loads(read_metadata(path).get("comment", ""))
            return cls(path, tuple(int(i) for i in recorded["takes"]), tuple(int(f) for f in recorded["frames"]))
        except (ValueError, KeyError, TypeError):
            return None


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
