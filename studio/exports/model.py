"""What an export needs to know about a scene, as plain frozen values.

The studio builds an `ExportScene` from its database; the exporters never touch storage,
so they can be tested on synthetic clips and reused by a script. Frame ranges are the
single source of timing truth: the scene video, the timelines and the storyboard's
timecodes are all derived from them, so they are checked once here instead of trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .clips import probe_clip
from .errors import ExportError


@dataclass(frozen=True)
class ExportCharacter:
    """A recurring character, listed on the storyboard's first page."""

    tag: str
    name: str
    description: str
    reference_path: Path | None = None  # the character's reference image, printed beside them


@dataclass(frozen=True)
class ExportShot:
    """One shot's storyboard fields, its place in the scene and its selected take."""

    number: int  # 1-based, in scene order
    caption: str  # exactly as rendered
    action: str
    shot_size: str
    camera_angle: str
    camera_movement: str
    dialogue: str
    duration_s: float
    frame_range: tuple[int, int]  # [start, end) in the scene video
    video_path: Path  # the selected take, an H.264 MP4
    thumbnail_path: Path | None = None
    keyframe_path: Path | None = None  # the picture the shot opens on, if the director gave one

    @property
    def frame_count(self) -> int:
        return self.frame_range[1] - self.frame_range[0]


@dataclass(frozen=True)
class ExportScene:
    """A scene ready to leave the studio: storyboard, generation settings and takes."""

    project_name: str
    title: str
    description: str
    fps: float
    width: int
    height: int
    global_caption: str
    prompt: str
    seed: int
    settings: dict[str, Any]  # generation settings, JSON-able
    characters: tuple[ExportCharacter, ...]
    shots: tuple[ExportShot, ...]


def validate_scene(scene: ExportScene, *, check_clips: bool = False) -> None:
    """Raise `ExportError` unless the scene's timing is consistent.

    Shots must be numbered 1..N in order and their frame ranges must tile the scene from
    frame 0 without gaps or overlaps. With `check_clips`, each take is also probed: it must
    exist, be H.264/yuv420p and have exactly its range's frame count at the scene's fps and
    size, because a remuxed scene video or a timeline built on a mismatched take would
    drift out of sync.
    """
    if not scene.fps > 0:
        raise ExportError(f"scene fps must be positive, got {scene.fps}")
    if not scene.shots:
        raise ExportError(f"scene {scene.title!r} has no shots; add at least one shot before exporting")
    try:
        json.dumps(scene.settings)
    except (TypeError, ValueError) as error:
        raise ExportError(f"scene settings must be JSON-able to be embedded in exports: {error}") from error
    expected_start = 0
    for index, shot in enumerate(scene.shots, start=1):
        if shot.number != index:
            raise ExportError(
                f"shot numbers must run 1..{len(scene.shots)} in order, got {shot.number} at position {index}"
            )
        start, end = shot.frame_range
        if start != expected_start or end <= start:
            raise ExportError(
                f"shot {shot.number} has frame range [{start}, {end}) but must start at frame {expected_start} "
                "and be non-empty; frame ranges have to tile the scene from frame 0"
            )
        expected_start = end
        if check_clips:
            _check_clip(scene, shot)


def _check_clip(scene: ExportScene, shot: ExportShot) -> None:
    """Compare a take's real frame count, codec, fps and size with what the scene says."""
    info = probe_clip(shot.video_path)
    if info.frame_count != shot.frame_count:
        raise ExportError(
            f"shot {shot.number}'s take {shot.video_path} has {info.frame_count} frames but its frame range "
            f"{shot.frame_range} spans {shot.frame_count}; select a take rendered for this layout"
        )
    if (info.codec, info.pix_fmt) != ("h264", "yuv420p"):
        raise ExportError(
            f"shot {shot.number}'s take {shot.video_path} is {info.codec}/{info.pix_fmt}; exports copy takes "
            "without re-encoding, so they must be H.264/yuv420p as engine.video.write_mp4 writes them"
        )
    if abs(info.fps - scene.fps) > 1e-3:
        raise ExportError(
            f"shot {shot.number}'s take {shot.video_path} runs at {info.fps:g} fps, the scene at {scene.fps:g}"
        )
    if (info.width, info.height) != (scene.width, scene.height):
        raise ExportError(
            f"shot {shot.number}'s take {shot.video_path} is {info.width}x{info.height}, "
            f"the scene {scene.width}x{scene.height} (WxH)"
        )


def scene_record(scene: ExportScene) -> dict[str, Any]:
    """Everything an export file carries about its scene: enough to re-render it."""
    return {
        "project": scene.project_name,
        "scene": scene.title,
        "description": scene.description,
        "fps": scene.fps,
        "width": scene.width,
        "height": scene.height,
        "prompt": scene.prompt,
        "global_caption": scene.global_caption,
        "seed": scene.seed,
        "settings": scene.settings,
        "characters": [{"tag": c.tag, "name": c.name, "description": c.description} for c in scene.characters],
    }


def shot_record(shot: ExportShot) -> dict[str, Any]:
    """Everything an export file carries about one shot."""
    return {
        "shot": shot.number,
        "caption": shot.caption,
        "action": shot.action,
        "shot_size": shot.shot_size,
        "camera_angle": shot.camera_angle,
        "camera_movement": shot.camera_movement,
        "dialogue": shot.dialogue,
        "duration_s": shot.duration_s,
        "frame_range": list(shot.frame_range),
    }
