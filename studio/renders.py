"""Render jobs: storyboard in, a queued row out; a claimed row in, takes and a scene video out.

`enqueue` checks a request completely and writes the job's row; `execute` runs a claimed row
as a generator of `RenderUpdate`s (FramePack's tagged-message pattern, typed) for whoever
runs it (the worker, a script). Everything durable happens as soon as it exists: the
progress line on the row, each shot's clip written and recorded as a take the moment the
VAE decodes it, so a crash loses at most the shot being decoded, and a new take never
replaces the director's chosen one. Every status change goes through storage's guarded
transition, and a failure is recorded with its message before it reaches anyone.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load_file

from engine import (
    Cancelled,
    HoloCinePipeline,
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
from engine.output import RenderWriter, preview_file
from engine.parallel import RankError
from engine.scene import require_in_range
from engine.video import concat_mp4, count_frames, read_metadata, read_mp4, write_mp4
from storage import CharacterRecord, InvalidTransitionError, RenderRecord, SceneWithShots, Storage
from storage.media import project_media_dir, render_media_dir
from storage.scene_check import SceneCheck

from .compiler import CharacterBrief, CompiledScene, SceneBrief, ShotBrief, check_fits, compile_scene
from .engine import EngineService
from .jobs import EditPlan, JobPictures, JobSpec, PictureReader
from .pictures import load_picture


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
MAX_BATCH = 16  # takes one request may queue at once
# A real step takes seconds and every one is saved and previewed; a fast (toy, tiny) model's
# steps are saved at most every PROGRESS_EVERY_S and previewed every PREVIEW_EVERY_S, so the
# job's filing stays small next to its compute. Viewers read both once a second.
PROGRESS_EVERY_S = 0.25
PREVIEW_EVERY_S = 0.5


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
        characters=tuple(CharacterBrief(c.tag, c.name, c.description, c.reference_path) for c in characters),
        shots=tuple(
            ShotBrief(
                action=s.action,
                duration_s=s.duration_s,
                shot_size=s.shot_size,
                camera_angle=s.camera_angle,
                camera_movement=s.camera_movement,
                dialogue=s.dialogue,
                character_tags=tuple(tags[i] for i in s.character_ids),
                keyframe=s.keyframe_path,
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
    """Turns requests into queued jobs and runs claimed jobs on the engine, filing what they make.

    `enqueue` checks a request completely (prompt, timing, size, settings, held takes) and
    writes one queued row whose settings are the job's `JobSpec`; a refused request leaves
    no row. `execute` runs a claimed row from that record alone, so the worker, a retry after
    a restart, and `run` (enqueue, claim, execute, for scripts) all run the same code.
    """

    def __init__(self, storage: Storage, engine: EngineService) -> None:
        self.storage = storage
        self.engine = engine
        self._cancels: dict[int, threading.Event] = {}  # jobs running in this process
        self._lock = threading.Lock()

    def compile(self, scene: SceneWithShots, *, pictures: bool = False) -> CompiledScene:
        """What `scene`'s storyboard renders as, token count included; with its pictures read if asked."""
        project_id = scene.scene.project_id
        load = (lambda path, field: load_picture(self.storage, project_id, path, field)) if pictures else None
        return compile_scene(scene_brief(self.storage, scene), self.engine.pipeline.tokenizer, load)

    def picture_reader(self, project_id: int) -> PictureReader:
        """How a job of the project reads the pictures it names (project-relative), each checked again."""
        folder = project_media_dir(project_id)
        return lambda name, field: load_picture(self.storage, project_id, f"{folder}/{name}", field)

    # -- making jobs ---------------------------------------------------------------------------

    @staticmethod
    def _settings(scene_rows: SceneWithShots, request: RenderRequest | EditRequest, seed_offset: int) -> RenderSettings:
        """The request's settings, checked: a request refused here leaves no render row behind."""
        seed = scene_rows.scene.seed if request.seed is None else request.seed
        settings = RenderSettings(
            steps=request.steps,
            seed=seed + seed_offset,
            guidance_scale=request.guidance_scale,
            attention=request.attention,
            loras=request.loras,
        )
        settings.validate()
        return settings

    def plan(self, request: RenderRequest | EditRequest, seed_offset: int = 0) -> tuple[str, JobSpec]:
        """The job a request asks for, checked as the engine will run it: (kind, spec). Writes no render row."""
        if isinstance(request, RenderRequest):
            return "render", self._plan_render(request, seed_offset)
        return request.kind, self._plan_edit(request, seed_offset)

    def _plan_render(self, request: RenderRequest, seed_offset: int) -> JobSpec:
        scene_rows = self.storage.scenes.get(request.scene_id)
        scene_spec = self.compile(scene_rows, pictures=True).scene
        if request.height or request.width:
            scene_spec = replace(
                scene_spec, height=request.height or scene_spec.height, width=request.width or scene_spec.width
            )
        settings = self._settings(scene_rows, request, seed_offset)
        scene_spec, layout = self.engine.pipeline.resolve_scene(scene_spec, settings)
        resolved = replace(scene_spec, num_frames=layout.num_frames, shot_cut_frames=layout.cut_frames)
        pictures, bare = JobPictures.split(resolved)
        return JobSpec(settings, bare, tuple(shot.id for shot in scene_rows.shots), pictures=pictures)

    def _plan_edit(self, request: EditRequest, seed_offset: int) -> JobSpec:
        pipe = self.engine.pipeline
        if request.kind not in EDIT_KINDS:
            raise SceneValidationError("kind", f"must be one of {', '.join(EDIT_KINDS)}, got {request.kind!r}")
        require_in_range("strength", request.strength, limits.STRENGTH)
        scene_rows = self.storage.scenes.get(request.scene_id)
        settings = self._settings(scene_rows, request, seed_offset)
        base, layout = pipe.resolve_scene(self.compile(scene_rows, pictures=True).scene, settings)
        base = replace(base, num_frames=layout.num_frames, shot_cut_frames=layout.cut_frames)
        held = self._held_takes(scene_rows, base, layout)
        ids = tuple(shot.id for shot in scene_rows.shots)
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
            rendered = extended_scene(base, layout, new_shot)
            rendered, longer_layout = pipe.resolve_scene(rendered, settings)
            rendered = replace(rendered, num_frames=longer_layout.num_frames, shot_cut_frames=longer_layout.cut_frames)
            pictures, rendered = JobPictures.split(rendered)
            plan = EditPlan(JobPictures.split(base)[1], held, len(ids), new_shot=new_shot)
            return JobSpec(settings, rendered, (*ids, new_row.id), plan, pictures)
        if request.shot_id not in ids:
            raise SceneValidationError("shot", f"shot {request.shot_id} is not in scene {request.scene_id}")
        index = ids.index(request.shot_id)
        caption = request.caption.strip() if request.caption and request.caption.strip() else None
        strength = 1.0 if request.kind == "regenerate" else request.strength
        rendered, _ = pipe.resolve_scene(with_caption(base, index, caption), settings)  # the edited prompt fits
        rendered = replace(rendered, num_frames=layout.num_frames, shot_cut_frames=layout.cut_frames)
        pictures, rendered = JobPictures.split(rendered)  # a redo renders with the scene's pictures as they are now
        plan = EditPlan(JobPictures.split(base)[1], held, index, strength, caption)
        return JobSpec(settings, rendered, ids, plan, pictures)

    def enqueue(self, request: RenderRequest | EditRequest, takes: int = 1) -> list[RenderRecord]:
        """Queue the request as `takes` jobs with seeds seed, seed+1, ...; their rows, in queue order."""
        if isinstance(takes, bool) or not isinstance(takes, int) or not 1 <= takes <= MAX_BATCH:
            raise SceneValidationError("takes", f"must be a whole number from 1 to {MAX_BATCH}, got {takes!r}")
        if isinstance(request, EditRequest) and request.kind == "extend" and takes > 1:
            raise SceneValidationError("takes", "an extension makes one new shot; vary it afterwards for more takes")
        planned = [self.plan(request, seed_offset=n) for n in range(takes)]
        return [self._create(request.scene_id, kind, spec) for kind, spec in planned]

    def _create(self, scene_id: int, kind: str, spec: JobSpec) -> RenderRecord:
        return self.storage.renders.create(scene_id, kind, spec.to_json(), spec.settings.seed)  # type: ignore[arg-type]

    def retry(self, render_id: int) -> RenderRecord:
        """A failed, cancelled or interrupted job again: same kind, same settings, same seed."""
        old = self.storage.renders.get(render_id)
        if old.status not in ("failed", "cancelled", "interrupted"):
            raise SceneValidationError("render", f"render {render_id} is {old.status}; only a stopped job is retried")
        return self._create(old.scene_id, old.kind, JobSpec.of(old))

    def cancel(self, render_id: int) -> bool:
        """Cancel a queued job now, a running one after its current step; False if it already ended."""
        try:
            self.storage.renders.request_cancel(render_id)
        except InvalidTransitionError:
            return False
        with self._lock:
            event = self._cancels.get(render_id)
        if event is not None:
            event.set()
        return True

    # -- running jobs --------------------------------------------------------------------------

    def run(self, request: RenderRequest | EditRequest) -> Iterator[RenderUpdate]:
        """Queue the request and run it here at once (scripts and tests; the studio's worker runs the rest).

        A worker polling the same queue may claim the row between its creation and this claim;
        then this follows that job to its end instead of running it twice.
        """
        record = self.enqueue(request)[0]
        try:
            return self.execute(self.storage.renders.claim(record.id))
        except InvalidTransitionError:
            return self._follow(record.id)

    def _follow(self, render_id: int) -> Iterator[RenderUpdate]:
        while (record := self.storage.renders.get(render_id)).status in ("queued", "running"):
            time.sleep(0.1)
        yield RenderUpdate(record, record.message or record.error or record.status)

    edit = run  # a redo is a request like any other: the same queue-claim-execute path

    def execute(self, record: RenderRecord, run: EngineRun | None = None) -> Iterator[RenderUpdate]:
        """Run a claimed (running) job to its final status, streaming what it makes as updates.

        `run` drives the engine on the job's `EngineCall` (default: this process's pipeline); a
        Ulysses group's rank 0 passes one that hands the call to every rank, and files alone.
        """
        spec = JobSpec.of(record)
        cancel = threading.Event()
        with self._lock:
            self._cancels[record.id] = cancel
        try:
            layout = spec.layout
            yield RenderUpdate(
                record, f"Render {record.id} started: {layout.num_shots} shots, {layout.num_frames} frames"
            )
            record = self.storage.renders.mark_engine(record.id, self.engine.info.to_dict())
            read = self.picture_reader(self.storage.scenes.get(record.scene_id).scene.project_id)
            call = self.engine_call(spec, read)  # pictures read now: a picture gone since fails the job, named
            events = (run or self._run_here)(call, cancel)
            yield from self._stream(record, spec, call.scene, events, cancel)
        except Exception as error:
            if self.storage.renders.get(record.id).status == "running":
                self.storage.renders.transition(record.id, "failed", error=failure_message(error))
            raise
        finally:
            with self._lock:
                self._cancels.pop(record.id, None)
            # The consumer stopped listening (a closed generator): the job ends here, recorded as such.
            if self.storage.renders.get(record.id).status == "running":
                self.storage.renders.transition(record.id, "cancelled", error="the job's runner stopped")

    def engine_call(self, spec: JobSpec, read: PictureReader) -> EngineCall:
        """Everything the engine runs the job with, read from storage: its pictures and a redo's held latents."""
        scene = spec.pictures.attach(spec.scene, read)
        plan = spec.edit
        if plan is None:
            return EngineCall(spec.settings, scene)
        base = spec.pictures.attach(plan.base_scene, read)
        return EngineCall(spec.settings, scene, plan, base, self._held_latents(plan))

    def _run_here(self, call: EngineCall, cancel: threading.Event) -> Iterator[RenderEvent]:
        return call.events(self.engine.pipeline, cancel)

    def _held_takes(self, scene_rows: SceneWithShots, scene_spec: SceneSpec, layout: ShotLayout) -> tuple[int, ...]:
        """The selected take of every shot, each checked to sit on the frames its shot has now.

        Every such render must have the storyboard's current timing and size, or the held
        shots would not be the clips the director sees.
        """
        selected = self.storage.takes.selected_for_scene(scene_rows.scene.id)
        held = []
        for index, (shot, current_range) in enumerate(zip(scene_rows.shots, layout.latent_ranges)):
            take = selected.get(shot.id)
            if take is None:
                raise SceneValidationError(f"shots[{index}]", "has no selected take yet; render the scene first")
            render = self.storage.renders.get(take.render_id)
            rendered = JobSpec.of(render)
            same_size = (rendered.scene.height, rendered.scene.width) == (scene_spec.height, scene_spec.width)
            if render.latents_path is None or not same_size or rendered.frames_of(shot.id) != current_range:
                raise SceneValidationError(
                    f"shots[{index}]",
                    f"its selected take (render {render.id}) was made with other timing, order or size; "
                    "render the scene again before redoing single shots",
                )
            held.append(take.id)
        return tuple(held)

    def _held_latents(self, plan: EditPlan) -> torch.Tensor:
        """The base scene's latents, each shot's frames from the render of the take it holds."""
        layout = ShotLayout(plan.base_scene.num_frames or 0, tuple(plan.base_scene.shot_cut_frames or ()))
        loaded: dict[int, torch.Tensor] = {}
        parts = []
        for take_id, current_range in zip(plan.held_takes, layout.latent_ranges):
            take = self.storage.takes.get(take_id)
            render = self.storage.renders.get(take.render_id)
            if render.id not in loaded:
                if render.latents_path is None:
                    raise SceneValidationError("takes", f"render {render.id} kept no latents; render the scene again")
                loaded[render.id] = load_file(str(self.storage.media.path(render.latents_path)))["latents"]
            start, end = JobSpec.of(render).frames_of(take.shot_id) or current_range
            parts.append(loaded[render.id][:, :, start:end])
        return torch.cat(parts, dim=2)

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

    def _stream(
        self,
        record: RenderRecord,
        spec: JobSpec,
        scene: SceneSpec,
        events: Iterator[RenderEvent],
        cancel: threading.Event,
    ) -> Iterator[RenderUpdate]:
        """File what the engine produces: a take for each shot the job makes, then the scene's files.

        The engine's `RenderWriter` writes every file (the CLI's too); this records them. Each
        step's progress line is saved on the row, and the row's cancel request (set by any page
        or process) stops the engine after the step.
        """
        media = self.storage.media
        writer = RenderWriter(
            media.path(self.folder(record)), scene, spec.settings, self.engine.info, {"render": record.id}
        )
        made = spec.made_shots
        saved_at = previewed_at = -float("inf")  # a fast model's steps are saved and previewed at most this often
        for event in events:
            if isinstance(event, Progress):
                message = f"Step {event.step}/{event.total_steps} ({event.expert} expert), ETA {event.eta_s:.0f} s"
                if time.monotonic() - saved_at >= PROGRESS_EVERY_S or event.step == event.total_steps:
                    record = self.storage.renders.set_progress(record.id, event.step / event.total_steps, message)
                    saved_at = time.monotonic()
                    if record.cancel_requested:
                        cancel.set()
                yield RenderUpdate(record, message)
            elif isinstance(event, Preview):
                if time.monotonic() - previewed_at < PREVIEW_EVERY_S:
                    continue
                previews = tuple(writer.preview(index, image) for index, image in enumerate(event.images))
                previewed_at = time.monotonic()
                yield RenderUpdate(record, f"Preview at step {event.step}", previews=previews)
            elif isinstance(event, ShotDecoded) and event.shot_index in made:
                files = writer.shot(event)
                shot_id = made[event.shot_index]
                take = self.storage.takes.add(
                    shot_id,
                    record.id,
                    video_path=media.relative(files.video),
                    thumbnail_path=media.relative(files.still),
                    caption=spec.scene.captions[event.shot_index],
                )
                # A shot's first take becomes its selected one; later takes wait for the director's choice.
                if not any(t.selected for t in self.storage.takes.list_for_shot(shot_id)):
                    self.storage.takes.select(take.id)
                message = f"Shot {event.shot_index + 1}/{len(spec.scene.shots)} decoded"
                record = self.storage.renders.set_progress(record.id, record.progress, message)
                yield RenderUpdate(record, message, clip=files.video, clip_shot=event.shot_index)
            elif isinstance(event, SceneFinished):
                scene_files = writer.finish(event)
                done = done_message(event)
                record = self.storage.renders.transition(
                    record.id,
                    "done",
                    timings=event.timings,
                    latents_path=media.relative(scene_files.latents),
                    scene_path=media.relative(scene_files.video),
                    message=done,
                )
                yield RenderUpdate(record, done, scene_video=scene_files.video)
            elif isinstance(event, Cancelled):
                message = f"Cancelled after step {event.step}; shots already decoded are kept"
                record = self.storage.renders.transition(record.id, "cancelled", message=message)
                yield RenderUpdate(record, message)

    def folder(self, record: RenderRecord) -> str:
        """A job's render folder, relative to the data directory."""
        project_id = self.storage.scenes.get(record.scene_id).scene.project_id
        return render_media_dir(project_id, record.id)


@dataclass(frozen=True)
class EngineCall:
    """One job's engine run as plain data (no storage in it), so any process holding the model can run it.

    Why a record: a Ulysses worker group runs every job on N processes while only rank 0 reads
    storage; rank 0 builds the call and broadcasts it, and every rank runs `events` on its own
    pipeline, the very call a single-process worker makes.
    """

    settings: RenderSettings
    scene: SceneSpec  # what is rendered, with its pictures
    edit: EditPlan | None = None
    base_scene: SceneSpec | None = None  # a redo's scene as cut, with its pictures
    held_latents: torch.Tensor | None = None  # a redo's base latents, each shot from the take it holds

    def events(self, pipe: HoloCinePipeline, cancel: threading.Event) -> Iterator[RenderEvent]:
        plan = self.edit
        if plan is None:
            return pipe.generate(self.scene, self.settings, cancel=cancel)
        assert self.base_scene is not None and self.held_latents is not None, "a redo's call holds its base"
        if plan.new_shot is not None:
            return extend(pipe, self.base_scene, self.held_latents, plan.new_shot, self.settings, cancel)
        return vary(
            pipe, self.base_scene, self.held_latents, plan.shot, plan.strength, self.settings, plan.caption, cancel
        )


EngineRun = Callable[[EngineCall, threading.Event], Iterator[RenderEvent]]


def failure_message(error: Exception) -> str:
    """A failed job's error line: the exception's type and words (a rank's error already names its rank)."""
    return str(error) if isinstance(error, RankError) else f"{type(error).__name__}: {error}"


def preview_path(folder: str, shot_index: int) -> str:
    """Where a job's latest x0 preview of a shot is (`RenderWriter.preview`): any viewer can read it."""
    return f"{folder}/{preview_file(shot_index)}"


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


def describe_compiled(compiled: CompiledScene, fps: float) -> dict[str, Any]:
    """What the storyboard shows before rendering: captions, per-shot frames, total length, tokens.

    With reference images, their hidden shots' captions too (they count against the tokens).
    """
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
        **({"reference_captions": list(compiled.reference_captions)} if compiled.reference_captions else {}),
    }
