"""What each panel of the studio shows, as typed records built from storage: the UI's read side.

Every panel's component takes one of these records (as a plain dict) and nothing else, so a
field added to a shot appears where its record puts it, by name, never by position in a tuple.
Builders read storage once per call and never raise for a row that is out of range: a view
must open whatever the database holds, or the director cannot fix it.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine import HoloCineError
from engine.text import MAX_TEXT_TOKENS, count_tokens
from storage import MediaPathError, RenderRecord, SceneWithShots, Storage, TakeRecord
from storage.media import render_media_dir

from ..compiler import SceneBrief, scene_frames, scene_prompt, shot_caption
from ..jobs import JobSpec
from ..renders import SceneCut, brief_of, preview_path

_TEMPLATE_ESCAPES = str.maketrans({"$": "&#36;", "\\": "&#92;", "`": "&#96;", "{": "&#123;", "}": "&#125;"})
FILE_ROUTE = "/gradio_api/file="  # Gradio serves files under the app's allowed paths here

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


def template_safe(value: Any) -> Any:
    """`value` with every string escaped for a `gr.HTML` template's triple-stash `{{{x}}}`.

    Why not Handlebars' own `{{x}}`: Gradio renders the Handlebars output once more as a JS
    template literal, so a caption holding `${...}` would run as code and a `\\u` would break
    the board. Escaping here (HTML, then `$`, backslash, backtick and braces as character
    references) shows every string exactly as typed, on every template, in one place.
    """
    if isinstance(value, str):
        return html.escape(value, quote=True).translate(_TEMPLATE_ESCAPES)
    if isinstance(value, dict):
        return {key: template_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [template_safe(item) for item in value]
    return value


def file_url(path: Path) -> str:
    """A URL Gradio serves `path` at, changing whenever the file does (so a re-rendered take reloads)."""
    stamp = path.stat().st_mtime_ns if path.exists() else 0
    return f"{FILE_ROUTE}{path}?v={stamp}"


def age(when: datetime) -> str:
    seconds = max((datetime.now(UTC) - when.replace(tzinfo=when.tzinfo or UTC)).total_seconds(), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


@dataclass(frozen=True)
class Chip:
    tag: str
    name: str


@dataclass(frozen=True)
class ShotCard:
    id: int
    number: int
    action: str
    framing: str  # "close-up / low angle / dolly in"
    seconds: str  # "3.0 s"
    frames: int | None  # on the 4t+1 grid; None while the timing is out of range
    characters: tuple[Chip, ...]
    status: str  # not-rendered | rendered | changed | rendering
    status_label: str
    picture: str | None  # URL of the live preview, the selected take's still, or else the keyframe
    selected: bool
    version: int = 0  # what a keyframe upload on the card names back
    keyframe: str | None = None  # URL of the shot's keyframe, if it has one (and its file is there)
    shows_keyframe: bool = False  # `picture` is the keyframe: no take yet


@dataclass(frozen=True)
class Segment:
    number: int
    frames: int
    percent: float
    selected: bool


@dataclass(frozen=True)
class Timeline:
    segments: tuple[Segment, ...]
    total: str  # "241 frames, 16.1 s" or why the timing cannot render
    tokens: str  # "130 / 512 tokens"
    over: bool  # the prompt or the timing is past what the model renders


@dataclass(frozen=True)
class BoardView:
    scene_id: int | None
    shots: tuple[ShotCard, ...]
    timeline: Timeline
    selected_id: int | None

    def as_value(self) -> dict[str, Any]:
        return template_safe(asdict(self))


EMPTY_BOARD = BoardView(None, (), Timeline((), "no scene open", "", False), None)


def _framing(shot_size: str, angle: str, move: str) -> str:
    return " / ".join(part for part in (shot_size.strip(), angle.strip(), move.strip()) if part) or "framing not set"


def board_view(
    storage: Storage,
    tokenizer: Any,
    scene_id: int | None,
    selected_id: int | None,
    rendering: dict[int, Path] | None = None,
) -> BoardView:
    """The storyboard: one card per shot and the timeline strip above them.

    `rendering` maps shot ids a render is redoing to their live x0 preview (or to the card's
    own picture before the first preview), which replaces the card's picture meanwhile.
    """
    if not scene_id:
        return EMPTY_BOARD
    scene = storage.scenes.get(int(scene_id))
    cast = storage.characters.list_for_project(scene.scene.project_id)
    names = {c.id: Chip(c.tag, c.name or c.tag) for c in cast}
    brief = brief_of(scene, cast)
    selected_takes = storage.takes.selected_for_scene(scene.scene.id)
    frames, timing_problem = _shot_frames(brief)
    rendering = rendering or {}
    cards = []
    for index, shot in enumerate(scene.shots):
        take = selected_takes.get(shot.id)
        caption = shot_caption(brief.shots[index], brief.characters)
        status, label = _status(take, caption, shot.id in rendering)
        keyframe = stored_url(storage, shot.keyframe_path)
        picture = _picture(storage, take, rendering.get(shot.id)) or keyframe
        cards.append(
            ShotCard(
                id=shot.id,
                number=index + 1,
                action=shot.action,
                framing=_framing(shot.shot_size, shot.camera_angle, shot.camera_movement),
                seconds=f"{shot.duration_s:.4g} s",
                frames=frames[index] if frames else None,
                characters=tuple(names[i] for i in shot.character_ids if i in names),
                status=status,
                status_label=label,
                picture=picture,
                selected=shot.id == selected_id,
                version=shot.version,
                keyframe=keyframe,
                shows_keyframe=keyframe is not None and picture == keyframe,
            )
        )
    timeline = _timeline(scene, brief, frames, timing_problem, selected_id, tokenizer)
    return BoardView(scene.scene.id, tuple(cards), timeline, selected_id)


def _status(take: TakeRecord | None, caption: str, rendering: bool) -> tuple[str, str]:
    if rendering:
        return "rendering", "rendering"
    if take is None:
        return "not-rendered", "not rendered"
    if take.caption.strip() != caption.strip():
        return "changed", "changed since its take"
    return "rendered", "rendered"


def _picture(storage: Storage, take: TakeRecord | None, preview: Path | None) -> str | None:
    if preview is not None and preview.exists():
        return file_url(preview)
    if take is not None and take.thumbnail_path:
        return file_url(storage.media.path(take.thumbnail_path))
    return None


def stored_url(storage: Storage, path: str | None) -> str | None:
    """The URL of a stored picture; None without one, or when its file is gone (the card shows no picture)."""
    if path is None:
        return None
    try:
        resolved = storage.media.path(path)
    except MediaPathError:
        return None
    return file_url(resolved) if resolved.is_file() else None


def _shot_frames(brief: SceneBrief) -> tuple[list[int] | None, str | None]:
    """Each shot's frames on the 4t+1 grid; or None and why, while the timing is out of the model's range."""
    if not brief.shots:
        return [], None
    try:
        num_frames, cuts = scene_frames(brief)
    except HoloCineError as error:
        return None, str(error)
    bounds = [0, *cuts, num_frames]
    return [end - start for start, end in zip(bounds, bounds[1:])], None


def _timeline(
    scene: SceneWithShots,
    brief: SceneBrief,
    frames: list[int] | None,
    timing_problem: str | None,
    selected_id: int | None,
    tokenizer: Any,
) -> Timeline:
    if not scene.shots:
        return Timeline((), "no shots yet", "", False)
    tokens = count_tokens(tokenizer, scene_prompt(brief))
    token_text = f"{tokens} / {MAX_TEXT_TOKENS} tokens"
    over_tokens = tokens > MAX_TEXT_TOKENS
    if frames is None:
        return Timeline((), f"cannot render: {timing_problem}", token_text, True)
    total = sum(frames)
    segments = tuple(
        Segment(i + 1, f, round(100 * f / total, 3), shot.id == selected_id)
        for i, (shot, f) in enumerate(zip(scene.shots, frames))
    )
    seconds = total / scene.scene.fps
    return Timeline(segments, f"{total} frames, {seconds:.1f} s at {scene.scene.fps:g} fps", token_text, over_tokens)


# -- takes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TakeCard:
    id: int
    number: int  # 1 = the first take of the shot
    picture: str | None
    video: str
    seed: int
    age: str
    caption_differs: bool  # rendered from text other than today's
    selected: bool


@dataclass(frozen=True)
class FilmstripView:
    shot_id: int | None
    shot_number: int | None
    takes: tuple[TakeCard, ...]  # newest first

    def as_value(self) -> dict[str, Any]:
        return template_safe(asdict(self))


EMPTY_FILMSTRIP = FilmstripView(None, None, ())


def filmstrip_view(storage: Storage, scene_id: int | None, shot_id: int | None) -> FilmstripView:
    if not scene_id or not shot_id:
        return EMPTY_FILMSTRIP
    scene = storage.scenes.get(int(scene_id))
    index = next((i for i, s in enumerate(scene.shots) if s.id == int(shot_id)), None)
    if index is None:
        return EMPTY_FILMSTRIP
    cast = storage.characters.list_for_project(scene.scene.project_id)
    brief = brief_of(scene, cast)
    caption = shot_caption(brief.shots[index], brief.characters)
    takes = storage.takes.list_for_shot(int(shot_id))
    seeds = {r.id: r.seed for r in storage.renders.list_for_scene(scene.scene.id)}
    cards = tuple(
        TakeCard(
            id=t.id,
            number=len(takes) - n,
            picture=file_url(storage.media.path(t.thumbnail_path)) if t.thumbnail_path else None,
            video=file_url(storage.media.path(t.video_path)),
            seed=seeds.get(t.render_id, 0),
            age=age(t.created_at),
            caption_differs=t.caption.strip() != caption.strip(),
            selected=t.selected,
        )
        for n, t in enumerate(takes)
    )
    return FilmstripView(int(shot_id), index + 1, cards)


# -- the scene as cut ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    number: int
    start_s: float
    percent: float
    start_frame: int = 0  # where the shot's take starts in the cut
    frames: int = 0
    take_id: int = 0  # the take the cut shows for the shot ("use this frame" takes it from there)
    shot_id: int = 0
    shot_version: int = 0


@dataclass(frozen=True)
class CutView:
    video: str | None  # the selected takes joined; None until every shot has one
    frames: int
    fps: float
    markers: tuple[Marker, ...]
    seek_s: float | None  # where the player jumps to (the selected shot's start)
    missing: str  # why there is no cut yet

    def as_value(self) -> dict[str, Any]:
        return template_safe(asdict(self))


EMPTY_CUT = CutView(None, 0, 1.0, (), None, "no scene open")


def cut_view(storage: Storage, scene_id: int | None, cut: SceneCut | None, selected_id: int | None) -> CutView:
    """The scene as cut from each shot's selected take, with a marker where each shot starts."""
    if not scene_id:
        return EMPTY_CUT
    scene = storage.scenes.get(int(scene_id))
    fps = scene.scene.fps if 0 < scene.scene.fps < 1e6 else 1.0
    if cut is None:
        return CutView(None, 0, fps, (), None, "the cut plays here once every shot has a take")
    total = sum(cut.frames) or 1
    markers, start, seek = [], 0, None
    for i, (shot, length, take_id) in enumerate(zip(scene.shots, cut.frames, cut.take_ids)):
        markers.append(
            Marker(
                i + 1,
                round(start / fps, 3),
                round(100 * length / total, 3),
                start,
                length,
                take_id,
                shot.id,
                shot.version,
            )
        )
        if shot.id == selected_id:
            seek = round(start / fps, 3)
        start += length
    return CutView(file_url(cut.path), sum(cut.frames), fps, tuple(markers), seek, "")


# -- characters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CharacterCard:
    id: int
    tag: str
    name: str
    look: str
    notes: str
    selected: bool
    version: int = 0  # what a reference upload on the card names back
    reference: str | None = None  # URL of the character's reference image


@dataclass(frozen=True)
class CastView:
    characters: tuple[CharacterCard, ...]
    selected_id: int | None

    def as_value(self) -> dict[str, Any]:
        return template_safe(asdict(self))


def cast_view(storage: Storage, project_id: int | None, selected_id: int | None) -> CastView:
    if not project_id:
        return CastView((), None)
    cards = tuple(
        CharacterCard(
            c.id,
            c.tag,
            c.name,
            c.description,
            c.notes,
            c.id == selected_id,
            c.version,
            stored_url(storage, c.reference_path),
        )
        for c in storage.characters.list_for_project(int(project_id))
    )
    return CastView(cards, selected_id)


# -- editors -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    checked: bool = False


@dataclass(frozen=True)
class FormField:
    name: str  # the storage field it saves to
    label: str
    kind: str  # text | textarea | number | checks
    value: Any = ""
    suggestions: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()  # for checks
    step: float | None = None


@dataclass(frozen=True)
class FormView:
    """An editor for one row: saved field by field as the director types, against `version`."""

    entity: str  # shot | character | scene
    id: int | None
    version: int
    title: str
    fields: tuple[FormField, ...] = field(default=())
    empty: str = ""  # what the panel says when there is nothing to edit

    def as_value(self) -> dict[str, Any]:
        value = asdict(self)
        for item in value["fields"]:
            item[f"is_{item['kind']}"] = True  # Handlebars has no `eq`: the template tests a flag per kind
        return template_safe(value)


def shot_form(storage: Storage, scene_id: int | None, shot_id: int | None) -> FormView:
    if not scene_id or not shot_id:
        return FormView("shot", None, 0, "Shot", empty="Click a card on the board to edit its shot.")
    scene = storage.scenes.get(int(scene_id))
    index, shot = next(((i, s) for i, s in enumerate(scene.shots) if s.id == int(shot_id)), (None, None))
    if shot is None or index is None:
        return FormView("shot", None, 0, "Shot", empty="That shot was deleted; click another card.")
    cast = storage.characters.list_for_project(scene.scene.project_id)
    return FormView(
        "shot",
        shot.id,
        shot.version,
        f"Shot {index + 1}",
        (
            FormField("action", "Action (what happens)", "textarea", shot.action),
            FormField("shot_size", "Shot size", "text", shot.shot_size, tuple(SHOT_SIZES)),
            FormField("camera_angle", "Camera angle", "text", shot.camera_angle),
            FormField("camera_movement", "Camera movement", "text", shot.camera_movement, tuple(CAMERA_MOVES)),
            FormField("duration_s", "Duration (s)", "number", shot.duration_s, step=0.1),
            FormField("dialogue", "Dialogue", "textarea", shot.dialogue),
            FormField("notes", "Notes (not sent to the model)", "textarea", shot.notes),
            FormField(
                "character_ids",
                "Characters in the shot",
                "checks",
                options=tuple(Option(str(c.id), f"{c.name} {c.tag}", c.id in shot.character_ids) for c in cast),
            ),
        ),
    )


def character_form(storage: Storage, project_id: int | None, character_id: int | None) -> FormView:
    character = None
    if project_id and character_id:
        character = next(
            (c for c in storage.characters.list_for_project(int(project_id)) if c.id == int(character_id)), None
        )
    if character is None:
        return FormView("character", None, 0, "Character", empty="Click a character card to edit it.")
    return FormView(
        "character",
        character.id,
        character.version,
        f"{character.tag}",
        (
            FormField("name", "Name (in shot text it becomes the tag)", "text", character.name),
            FormField("description", "Look (what the model should see)", "textarea", character.description),
            FormField("notes", "Notes", "textarea", character.notes),
        ),
    )


def scene_form(storage: Storage, scene_id: int | None) -> FormView:
    if not scene_id:
        return FormView("scene", None, 0, "Scene", empty="Open or create a project.")
    s = storage.scenes.get(int(scene_id)).scene
    return FormView(
        "scene",
        s.id,
        s.version,
        "Scene",
        (
            FormField("title", "Title", "text", s.title),
            FormField("description", "Description (place, time, mood, style)", "textarea", s.description),
            FormField("fps", "Frames per second", "number", s.fps, step=1),
            FormField("width", "Width (px, multiple of 16)", "number", s.width, step=16),
            FormField("height", "Height (px, multiple of 16)", "number", s.height, step=16),
            FormField("seed", "Seed", "number", s.seed, step=1),
            FormField(
                "negative_prompt", "Negative prompt (empty = the model's default)", "textarea", s.negative_prompt or ""
            ),
        ),
    )


# -- render jobs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobCard:
    id: int
    title: str  # "Render 12 · Harbour / Scene 1 · vary shot 2"
    status: str
    progress: int  # percent
    line: str  # what the job is doing, or why it stopped, in words
    eta: str  # "about 40 s" / "" when unknown or finished
    can_cancel: bool
    can_retry: bool
    can_remove: bool
    where: str = ""  # the worker that runs (or ran) it: "gpu-node-2 (pid 4242) · cuda:0"


@dataclass(frozen=True)
class JobsView:
    jobs: tuple[JobCard, ...]
    summary: str  # "1 running · 2 queued"
    finished: tuple[int, ...]  # ids of finished jobs, so the page can tell which just finished

    def as_value(self) -> dict[str, Any]:
        return template_safe(asdict(self))


def step_seconds(renders: list[RenderRecord]) -> float | None:
    """The model's measured cost of one step (whole job time over its steps), from the latest finished job.

    A running job's own pace replaces it once it has taken a step (see `jobs_view`).
    """
    for render in renders:
        if render.status == "done" and render.timings and render.timings.get("total_s"):
            return float(render.timings["total_s"]) / max(int(render.settings.get("steps", 1)), 1)
    return None


def jobs_view(storage: Storage, renders: list[RenderRecord] | None = None) -> JobsView:
    """The Jobs panel: queued jobs with their position and ETA, the running one, the finished ones."""
    renders = storage.renders.jobs() if renders is None else renders
    per_step = step_seconds(sorted(renders, key=lambda r: -r.id))
    ahead_s = 0.0
    position = 0
    cards = []
    titles: dict[int, str] = {}
    workers: dict[str, str] = {}
    for render in renders:
        if render.worker_id is not None and render.worker_id not in workers:
            workers[render.worker_id] = storage.workers.get(render.worker_id).label
        if render.scene_id not in titles:
            scene = storage.scenes.get(render.scene_id).scene
            titles[render.scene_id] = f"{storage.projects.get(scene.project_id).name} / {scene.title}"
        steps = int(render.settings.get("steps", 1))
        eta = ""
        if render.status == "running":
            if render.progress > 0 and render.started_at is not None:  # its own measured pace is the best guess
                elapsed = (datetime.now(UTC) - render.started_at).total_seconds()
                per_step = elapsed / (render.progress * steps)
            ahead_s += (1 - render.progress) * steps * per_step if per_step else 0.0
            line = render.message or "starting"  # the engine's line, with its own ETA
        elif render.status == "queued":
            position += 1
            ahead_s += steps * per_step if per_step else 0.0
            eta = f"done in about {ahead_s:.0f} s" if per_step else ""
            line = f"queued, position {position}"
        else:
            line = render.error if render.status != "done" and render.error else (render.message or render.status)
        kind = "" if render.kind == "render" else f" · {render.kind}"
        cards.append(
            JobCard(
                id=render.id,
                title=f"Render {render.id} · {titles[render.scene_id]}{kind} · seed {render.seed}",
                status=render.status,
                progress=round(100 * render.progress),
                line=line,
                eta=eta,
                can_cancel=render.status in ("queued", "running") and not render.cancel_requested,
                can_retry=render.status in ("failed", "cancelled", "interrupted"),
                can_remove=render.status in ("done", "failed", "cancelled", "interrupted"),
                where="" if render.worker_id is None else f"on {workers[render.worker_id]}",
            )
        )
    running = sum(r.status == "running" for r in renders)
    summary = f"{running} running · {position} queued" if running or position else "no jobs waiting"
    finished = tuple(r.id for r in renders if r.status not in ("queued", "running"))
    return JobsView(tuple(cards), summary, finished)


def workers_markdown(storage: Storage) -> str:
    """The engine panel's list of render workers serving the queue (this studio's and a cluster's)."""
    live = storage.workers.live()
    if not live:
        return "**Render workers:** none running; queued jobs wait for one"
    lines = [f"**Render workers ({len(live)}):**"]
    lines += [f"- {w.label} · {w.model} · memory {w.memory}" for w in live]
    return "\n".join(lines)


def live_previews(storage: Storage, scene_id: int | None) -> dict[int, Path]:
    """Shot id -> the latest x0 preview of each shot a running job of the scene is making.

    Read from the job's row and folder, not from the process that runs it, so any page opened
    or reloaded mid-render shows the same previews.
    """
    if not scene_id:
        return {}
    live: dict[int, Path] = {}
    for render in storage.renders.list_for_scene(int(scene_id)):
        if render.status != "running":
            continue
        project_id = storage.scenes.get(render.scene_id).scene.project_id
        folder = render_media_dir(project_id, render.id)
        for index, shot_id in JobSpec.of(render).made_shots.items():
            live[shot_id] = storage.media.path(preview_path(folder, index))
    return live
