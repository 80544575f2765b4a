"""The scene as cut, in the shape the exporters take: selected takes, their exact captions and frames.

Exports describe what the director chose, not what the storyboard currently says: each shot
is its selected take's clip and the caption it was rendered with; frame ranges come from the
clips themselves, so a timeline always matches the media it points to.
"""

from __future__ import annotations

from pathlib import Path

from engine import SceneValidationError
from engine.scene import parse_prompt
from storage import Storage

from .exports.clips import probe_clip
from .exports.contact_sheet import write_contact_sheet
from .exports.errors import ExportError
from .exports.model import ExportCharacter, ExportScene, ExportShot
from .exports.storyboard import write_storyboard_pdf
from .exports.timeline import write_timeline
from .exports.videos import export_scene_video, export_shot_videos
from .jobs import JobSpec


def export_model(storage: Storage, scene_id: int) -> ExportScene:
    scene = storage.scenes.get(scene_id)
    selected = storage.takes.selected_for_scene(scene_id)
    project = storage.projects.get(scene.scene.project_id)
    shots, start, latest = [], 0, None
    for index, shot in enumerate(scene.shots):
        take = selected.get(shot.id)
        if take is None:
            raise SceneValidationError(f"shots[{index}]", "has no selected take; render the scene before exporting")
        video = storage.media.path(take.video_path)
        render = storage.renders.get(take.render_id)
        frames = probe_clip(video).frame_count
        latest = render if latest is None or render.created_at > latest.created_at else latest
        shots.append(
            ExportShot(
                number=index + 1,
                caption=take.caption,
                action=shot.action,
                shot_size=shot.shot_size,
                camera_angle=shot.camera_angle,
                camera_movement=shot.camera_movement,
                dialogue=shot.dialogue,
                duration_s=frames / float(JobSpec.of(render).scene.fps or 1),
                frame_range=(start, start + frames),
                video_path=video,
                thumbnail_path=storage.media.path(take.thumbnail_path) if take.thumbnail_path else None,
                keyframe_path=storage.media.path(shot.keyframe_path) if shot.keyframe_path else None,
            )
        )
        start += frames
    if latest is None:
        raise SceneValidationError("shots", "the scene has no shots to export")
    rendered = JobSpec.of(latest)
    return ExportScene(
        project_name=project.name,
        title=scene.scene.title,
        description=scene.scene.description,
        fps=rendered.scene.fps,
        width=rendered.scene.width,
        height=rendered.scene.height,
        global_caption=parse_prompt(rendered.scene.prompt)[0],
        prompt=rendered.scene.prompt,
        seed=latest.seed,
        settings={**rendered.settings.to_dict(), "shot_ids": list(rendered.shot_ids)},
        characters=tuple(
            ExportCharacter(
                c.tag, c.name, c.description, storage.media.path(c.reference_path) if c.reference_path else None
            )
            for c in storage.characters.list_for_project(project.id)
        ),
        shots=tuple(shots),
    )


# format -> file (or folder) name inside an export folder, and its label in the UI
EXPORT_FILES: dict[str, str] = {
    "mp4": "scene.mp4",
    "shots": "shots",
    "otio": "scene.otio",
    "edl": "scene.edl",
    "fcp7xml": "scene.xml",
    "pdf": "storyboard.pdf",
    "contact-sheet": "contact_sheet.png",
}
SCENE_FORMATS = tuple(EXPORT_FILES)
EXPORT_LABELS: dict[str, str] = {
    "mp4": "Scene MP4",
    "shots": "Shot MP4s",
    "otio": "OpenTimelineIO (.otio)",
    "edl": "CMX 3600 EDL",
    "fcp7xml": "Final Cut Pro 7 XML (Premiere, Resolve)",
    "pdf": "PDF storyboard",
    "contact-sheet": "Contact sheet (PNG)",
    "bundle": "Project bundle (.zip)",
}


def export_scene(storage: Storage, scene_id: int, format: str, out: Path) -> list[Path]:
    """Write one export of the scene as cut; returns the files written.

    A timeline is written with the shot files beside it (`shots/`), which its clips point to.
    """
    if format not in EXPORT_FILES:
        raise ExportError(f"format: {format!r} is not one of {', '.join(EXPORT_FILES)}")
    model = export_model(storage, scene_id)
    out = Path(out)
    if format == "mp4":
        return [export_scene_video(model, out)]
    if format == "shots":
        return export_shot_videos(model, out)
    if format == "pdf":
        return [write_storyboard_pdf(model, out)]
    if format == "contact-sheet":
        return [write_contact_sheet(model, out)]
    media = out.parent / "shots"
    shots = export_shot_videos(model, media)
    return [write_timeline(model, out, format, media), *shots]  # type: ignore[arg-type]
