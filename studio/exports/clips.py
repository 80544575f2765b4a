"""Looking into a shot's take without loading it whole: its stream facts and a few frames.

Storyboards and contact sheets need a handful of stills per shot, and validation needs
frame counts; decoding every frame of every take into memory (as `engine.video.read_mp4`
does) would cost far more than either, so frames are streamed and only the wanted ones kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

from .errors import ExportError


@dataclass(frozen=True)
class ClipInfo:
    """The facts about a take's first video stream that exports depend on."""

    frame_count: int
    fps: float
    width: int
    height: int
    codec: str
    pix_fmt: str


def probe_clip(path: Path) -> ClipInfo:
    """Read a take's stream facts; the frame count comes from the MP4 index, or a packet count."""
    with _open_video(path) as container:
        stream = container.streams.video[0]
        frame_count = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        return ClipInfo(
            frame_count=frame_count,
            fps=float(stream.average_rate or stream.guessed_rate),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt,
        )


def sample_frames(path: Path, count: int) -> list[Image.Image]:
    """`count` frames taken at the centres of equal spans of the clip, in order.

    Centres rather than first/last frames, so one sample is the middle of the shot and
    none is a fade or cut edge. A clip shorter than `count` repeats frames.
    """
    if count < 1:
        raise ExportError(f"frames to sample must be at least 1, got {count}")
    total = probe_clip(path).frame_count
    wanted = [min(total - 1, int((i + 0.5) * total / count)) for i in range(count)]
    picked: dict[int, Image.Image] = {}
    with _open_video(path) as container:
        for index, frame in enumerate(container.decode(container.streams.video[0])):
            if index in wanted:
                picked[index] = frame.to_image()
            if index >= wanted[-1]:
                break
    missing = sorted(set(wanted) - picked.keys())
    if missing:
        raise ExportError(f"{path} decoded fewer frames than its index lists ({total}); re-render the take")
    return [picked[index] for index in wanted]


def _open_video(path: Path) -> av.container.InputContainer:
    """Open a take, turning a missing or unreadable file into an `ExportError`."""
    if not Path(path).is_file():
        raise ExportError(f"no video file at {path}; the take may have been deleted, select another take")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as error:
        raise ExportError(f"cannot read {path} as a video: {error}") from error
    if not container.streams.video:
        container.close()
        raise ExportError(f"{path} has no video stream")
    return container
