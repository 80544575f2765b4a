"""MP4 files for decoded clips: write, read back, and join shot clips into a scene.

Shots are written one by one as they decode (see engine.decode), so a scene file must be
assembled from per-shot clips later; `concat_mp4` does that by remuxing packets, which is
instant and adds no second generation of H.264 loss. Every writer goes through a
temporary file and an atomic rename (engine.files), so a crash never leaves a truncated file
under the name a UI or a resume step would trust.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from .files import atomic_path

_CODEC = "libx264"
_PIX_FMT = "yuv420p"
_ENCODER_OPTIONS = {"crf": "18", "preset": "medium"}
# Without this flag the mp4 muxer drops every tag that is not a standard iTunes key.
_CONTAINER_OPTIONS = {"movflags": "use_metadata_tags"}


def frames_to_uint8(video: torch.Tensor) -> np.ndarray:
    """Decoder output (3, T, H, W) or (1, 3, T, H, W) in [-1, 1] -> (T, H, W, 3) uint8."""
    if video.dim() == 5:
        if video.shape[0] != 1:
            raise ValueError(f"expected a single video, got a batch of {video.shape[0]}; pass video[i] instead")
        video = video[0]
    if video.dim() != 4 or video.shape[0] != 3:
        raise ValueError(f"expected (3, T, H, W) or (1, 3, T, H, W), got shape {tuple(video.shape)}")
    scaled = ((video.detach().float() + 1) / 2).clamp(0, 1) * 255
    return scaled.round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()


def write_mp4(path: str | Path, frames: np.ndarray, fps: float, metadata: dict[str, str] | None = None) -> None:
    """Encode (T, H, W, 3) uint8 frames as constant-fps H.264/yuv420p MP4 with tags."""
    path = Path(path)
    _check_frames(frames)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    num_frames, height, width, _ = frames.shape
    with _mp4_output(path) as container:
        container.metadata.update(metadata or {})
        # Denominator <= 1001 keeps 15, 16, 23.976, 29.97 and 30000/1001 exact on read-back.
        stream = container.add_stream(_CODEC, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, _PIX_FMT
        stream.options = dict(_ENCODER_OPTIONS)
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[index]), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def read_mp4(path: str | Path) -> tuple[np.ndarray, float, dict[str, str]]:
    """Decode an MP4's first video stream: (T, H, W, 3) uint8 frames, fps, container tags.

    The tags include what the muxer adds itself (major_brand, encoder, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video file at {path}")
    with av.open(str(path)) as container:
        stream = _video_stream(container, path)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        if not frames:
            raise ValueError(f"{path} has a video stream but no decodable frames")
        fps = float(stream.average_rate or stream.guessed_rate)
        return np.stack(frames), fps, dict(container.metadata)


def count_frames(path: str | Path) -> int:
    """How many frames an MP4's first video stream holds, read from its index (no decoding)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video file at {path}")
    with av.open(str(path)) as container:
        return _video_stream(container, path).frames


def read_metadata(path: str | Path) -> dict[str, str]:
    """An MP4's container tags (what `write_mp4` and `concat_mp4` were given), without decoding."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video file at {path}")
    with av.open(str(path)) as container:
        return dict(container.metadata)


def concat_mp4(paths: Sequence[str | Path], out_path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Join clips with identical codec parameters into one MP4 without re-encoding.

    Packets are copied and their timestamps shifted by the duration of the clips before
    them, so the result plays the clips back to back at their common frame rate.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("concat_mp4 needs at least one input clip")
    inputs = [av.open(str(p)) for p in paths]
    try:
        streams = [_video_stream(container, p) for container, p in zip(inputs, paths)]
        for p, stream in zip(paths[1:], streams[1:]):
            _check_same_codec(paths[0], streams[0], p, stream)
        with _mp4_output(Path(out_path)) as output:
            output.metadata.update(metadata or {})
            out_stream = output.add_stream_from_template(streams[0])
            offset = Fraction(0)  # seconds of video already written
            for container, stream in zip(inputs, streams):
                offset += _copy_packets(container, stream, output, out_stream, offset)
    finally:
        for container in inputs:
            container.close()


def _copy_packets(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    output: av.container.OutputContainer,
    out_stream: av.video.stream.VideoStream,
    offset: Fraction,
) -> Fraction:
    """Mux one clip's packets shifted by `offset` seconds; return the clip's duration."""
    time_base = stream.time_base
    shift = round(offset / time_base)
    end = 0
    for packet in container.demux(stream):
        if packet.dts is None:  # the demuxer's empty flush packet
            continue
        end = max(end, packet.pts + packet.duration)
        packet.pts += shift
        packet.dts += shift
        packet.stream = out_stream
        output.mux(packet)
    return end * time_base


def _check_same_codec(
    first_path: Path, first: av.video.stream.VideoStream, path: Path, stream: av.video.stream.VideoStream
) -> None:
    """Refuse clips a decoder could not play as one stream (different SPS/PPS or format)."""
    fields = {
        "codec": lambda s: s.codec_context.name,
        "size": lambda s: (s.codec_context.width, s.codec_context.height),
        "pix_fmt": lambda s: s.codec_context.pix_fmt,
        "frame rate": lambda s: s.average_rate,
        "codec extradata (SPS/PPS)": lambda s: s.codec_context.extradata,
    }
    for name, get in fields.items():
        if get(first) != get(stream):
            raise ValueError(
                f"cannot concatenate without re-encoding: {name} of {path} ({get(stream)!r:.80}) "
                f"differs from {first_path} ({get(first)!r:.80}); write all clips with write_mp4 "
                "at the same size and fps"
            )


def _check_frames(frames: np.ndarray) -> None:
    """Reject arrays libx264/yuv420p cannot encode, naming what is wrong."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"frames must be a (T, H, W, 3) uint8 array, got {frames.dtype} of shape {frames.shape}; "
            "convert decoder output with frames_to_uint8"
        )
    num_frames, height, width, _ = frames.shape
    if num_frames == 0:
        raise ValueError("frames is empty; an MP4 needs at least one frame")
    if height % 2 or width % 2:
        raise ValueError(
            f"frame size {width}x{height} (WxH) has an odd side; yuv420p H.264 needs even width "
            "and height, so crop or pad one pixel"
        )


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise ValueError(f"{path} has no video stream")
    return container.streams.video[0]


@contextmanager
def _mp4_output(path: Path) -> Iterator[av.container.OutputContainer]:
    """An MP4 output container on a temporary `.mp4` beside `path`, renamed to `path` only on success."""
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"output path {path} must end in .mp4")
    with (
        atomic_path(path, suffix=".mp4") as tmp,
        av.open(str(tmp), mode="w", format="mp4", options=dict(_CONTAINER_OPTIONS)) as container,
    ):
        yield container
