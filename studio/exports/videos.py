"""Scene and per-shot MP4s that carry their own generation record.

Takes are copied packet for packet (`engine.video.concat_mp4`), never re-encoded, so an
exported file is bit-identical video to what the director approved. The prompt, seed and
settings ride along as a JSON `comment` tag: a file that leaves the studio can still be
traced back to, and re-rendered from, exactly what made it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av

from engine.video import concat_mp4

from .errors import ExportError
from .model import ExportScene, scene_record, shot_record, validate_scene

METADATA_TAG = "comment"  # a standard tag players show, kept by the mp4 muxer's use_metadata_tags


def shot_file_name(number: int) -> str:
    """The name `export_shot_videos` gives shot `number`; timelines point at these names."""
    return f"shot_{number:02d}.mp4"


def export_scene_video(scene: ExportScene, path: Path) -> Path:
    """Join the shots' selected takes into one MP4 at `path`, without re-encoding."""
    validate_scene(scene, check_clips=True)
    record = scene_record(scene)
    record["shots"] = [shot_record(shot) for shot in scene.shots]
    concat_mp4([shot.video_path for shot in scene.shots], path, _tags(f"{scene.project_name} - {scene.title}", record))
    return Path(path)


def export_shot_videos(scene: ExportScene, folder: Path) -> list[Path]:
    """Copy each shot's selected take to `folder/shot_NN.mp4`, tagged with its shot's record.

    Only this scene's shot files are written; files of a longer earlier export in the same
    folder are left alone, so use a fresh folder per export.
    """
    validate_scene(scene, check_clips=True)
    paths = []
    for shot in scene.shots:
        record = scene_record(scene) | shot_record(shot)
        path = Path(folder) / shot_file_name(shot.number)
        concat_mp4([shot.video_path], path, _tags(f"{scene.project_name} - {scene.title} - shot {shot.number}", record))
        paths.append(path)
    return paths


def read_video_metadata(path: Path) -> dict[str, Any]:
    """The generation record an export embedded in `path` (see `export_scene_video`)."""
    if not Path(path).is_file():
        raise ExportError(f"no video file at {path}")
    with av.open(str(path)) as container:
        text = container.metadata.get(METADATA_TAG)
    if text is None:
        raise ExportError(f"{path} has no '{METADATA_TAG}' tag; it was not written by a HoloCine export")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ExportError(f"{path}'s '{METADATA_TAG}' tag is not a HoloCine export record: {error}") from error
    if not isinstance(record, dict):
        raise ExportError(f"{path}'s '{METADATA_TAG}' tag is not a HoloCine export record")
    return record


def _tags(title: str, record: dict[str, Any]) -> dict[str, str]:
    return {"title": title, METADATA_TAG: json.dumps(record, ensure_ascii=False)}
