"""Editorial timelines (OTIO, CMX 3600 EDL, Final Cut Pro 7 XML) that conform to the shot files.

One video track holds one clip per shot. Each clip points at the shot's file as written by
`export_shot_videos` and uses all of it (source range [0, frame count)), so the clips sit
back to back exactly on the scene's frame ranges; a marker on each clip carries the caption
the shot was rendered from.

Media URLs are relative to the timeline file (`shots/shot_01.mp4`), like the media paths in
OTIO's own .otiod/.otioz bundles: an export folder can be moved or zipped and still conform.
NLEs that insist on absolute paths relink by file name; `shot_media_urls` without
`relative_to` gives absolute file:// URLs for callers that need them.

EDL and FCP 7 XML carry SMPTE timecode, which OTIO (like the formats' readers) only defines
for 23.976, 24, 25, 29.97, 30, 48, 50, 59.94 and 60 fps. A scene at another rate is written
at the smallest of those that is a whole multiple of it (8 -> 24, 15 -> 30, 16 -> 48), so
every cut still falls on a whole frame; `interchange_rate` tells which, and a reader must be
given that rate for an EDL, which does not store one. EDL text is folded to ASCII (the
adapter also upper-cases marker names there); OTIO and FCP 7 XML keep captions exactly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Literal
from urllib.parse import quote

import opentimelineio as otio

from engine.files import atomic_write_bytes

from .errors import ExportError
from .model import ExportScene, ExportShot, scene_record, shot_record, validate_scene
from .text_fold import ASCII, fold_text
from .videos import shot_file_name

TimelineFormat = Literal["otio", "edl", "fcp7xml"]
TIMELINE_SUFFIXES: dict[str, str] = {"otio": ".otio", "edl": ".edl", "fcp7xml": ".xml"}
# format -> (OTIO adapter name, the PyPI package that provides it)
_ADAPTERS = {
    "otio": ("otio_json", "opentimelineio"),
    "edl": ("cmx_3600", "otio-cmx3600-adapter"),
    "fcp7xml": ("fcp_xml", "otio-fcp-adapter"),
}
SMPTE_RATES = (24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 48000 / 1001, 48.0, 50.0, 60000 / 1001, 60.0)
METADATA_KEY = "holocine"
_RATE_TOLERANCE = 1e-3


def shot_media_urls(scene: ExportScene, media_dir: Path, relative_to: Path | None = None) -> list[str]:
    """URLs of the shot files `export_shot_videos(scene, media_dir)` writes, one per shot.

    Relative to the folder `relative_to` when given (percent-encoded POSIX paths),
    otherwise absolute file:// URLs.
    """
    files = [Path(media_dir).resolve() / shot_file_name(shot.number) for shot in scene.shots]
    if relative_to is None:
        return [file.as_uri() for file in files]
    base = Path(relative_to).resolve()
    return [quote(PurePath(os.path.relpath(file, base)).as_posix()) for file in files]


def build_timeline(scene: ExportScene, media_urls: Sequence[str]) -> otio.schema.Timeline:
    """The scene as an OTIO timeline at its own fps, clips pointing at `media_urls` (one per shot)."""
    validate_scene(scene)
    return _timeline(scene, media_urls, scene.fps)


def interchange_rate(fps: float) -> float:
    """The SMPTE rate EDL and FCP 7 XML exports of an `fps` scene are written at.

    `fps` itself when it is a SMPTE rate, else the smallest SMPTE rate that is a whole
    multiple of it.
    """
    for rate in SMPTE_RATES:
        multiple = round(rate / fps) if fps > 0 else 0
        if multiple >= 1 and abs(rate - multiple * fps) < _RATE_TOLERANCE:
            return rate
    raise ExportError(
        f"a {fps:g} fps scene cannot be written as EDL or FCP 7 XML: their timecode exists only at "
        "23.976, 24, 25, 29.97, 30, 48, 50, 59.94 and 60 fps, and none is a whole multiple of "
        f"{fps:g}; export an OTIO timeline instead, or render at a rate such as 8, 12, 15, 16, 24 or 25 fps"
    )


def write_timeline(scene: ExportScene, path: Path, format: TimelineFormat, media_dir: Path) -> Path:
    """Write the scene's timeline to `path` in `format`, pointing at the shot files in `media_dir`.

    `media_dir` is the folder given to `export_shot_videos`; URLs are relative to `path`'s folder.
    """
    if format not in _ADAPTERS:
        raise ExportError(f"timeline format {format!r} is not one of {sorted(_ADAPTERS)}")
    adapter, package = _ADAPTERS[format]
    if adapter not in otio.adapters.available_adapter_names():
        raise ExportError(f"OpenTimelineIO has no '{adapter}' adapter for {format} export; pip install {package}")
    validate_scene(scene)
    path = Path(path)
    urls = shot_media_urls(scene, media_dir, relative_to=path.parent)
    if format == "otio":
        text = otio.adapters.write_to_string(_timeline(scene, urls, scene.fps), adapter_name=adapter)
    else:
        rate = interchange_rate(scene.fps)
        timeline = _timeline(scene, urls, rate)
        if format == "edl":
            _make_edl_safe(timeline)
            text = otio.adapters.write_to_string(timeline, adapter_name=adapter, rate=rate)
        else:
            text = otio.adapters.write_to_string(timeline, adapter_name=adapter)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def _timeline(scene: ExportScene, media_urls: Sequence[str], rate: float) -> otio.schema.Timeline:
    """Build the timeline with every frame count scaled from the scene's fps to `rate`."""
    if len(media_urls) != len(scene.shots):
        raise ExportError(f"need one media URL per shot: got {len(media_urls)} for {len(scene.shots)} shots")
    scale = round(rate / scene.fps) if abs(rate - scene.fps) > _RATE_TOLERANCE else 1
    timeline = otio.schema.Timeline(
        name=f"{scene.project_name} - {scene.title}",
        global_start_time=otio.opentime.RationalTime(0, rate),
        metadata={METADATA_KEY: scene_record(scene)},
    )
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for shot, url in zip(scene.shots, media_urls):
        track.append(_clip(shot, url, rate, scale))
    return timeline


def _clip(shot: ExportShot, url: str, rate: float, scale: int) -> otio.schema.Clip:
    """A clip using the whole shot file, with its caption as a marker on its first frame."""
    start = otio.opentime.RationalTime(0, rate)
    whole_file = otio.opentime.TimeRange(start, otio.opentime.RationalTime(shot.frame_count * scale, rate))
    clip = otio.schema.Clip(
        name=f"Shot {shot.number}",
        media_reference=otio.schema.ExternalReference(target_url=url, available_range=whole_file),
        source_range=whole_file,
        metadata={
            METADATA_KEY: shot_record(shot),
            # Reel names are at most 8 characters in CMX 3600; one per shot file keeps them unique.
            "cmx_3600": {"reel": f"SHOT{shot.number:03d}"},
        },
    )
    clip.markers.append(
        otio.schema.Marker(
            name=shot.caption,
            marked_range=otio.opentime.TimeRange(start, otio.opentime.RationalTime(0, rate)),
            color=otio.schema.MarkerColor.BLUE,
            comment=shot.caption,
            metadata={METADATA_KEY: {"shot": shot.number, "caption": shot.caption}},
        )
    )
    return clip


def _make_edl_safe(timeline: otio.schema.Timeline) -> None:
    """CMX 3600 is single-line ASCII: fold the title and captions (clip names and URLs already are)."""
    timeline.name = _edl_text(timeline.name)
    for clip in timeline.find_clips():
        for marker in clip.markers:
            marker.name = _edl_text(marker.name)


def _edl_text(text: str) -> str:
    return fold_text(" ".join(text.split()), ASCII)
