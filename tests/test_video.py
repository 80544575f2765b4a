"""MP4 write/read/concat round trips on small synthetic clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import engine.video as video
from engine.video import concat_mp4, frames_to_uint8, read_mp4, write_mp4


def _gradient_clip(num_frames: int, height: int = 64, width: int = 96, phase: int = 0) -> np.ndarray:
    """Smooth moving colour ramps: easy for H.264, different per `phase` and per frame."""
    t = np.arange(num_frames)[:, None, None]
    y = np.arange(height)[None, :, None]
    x = np.arange(width)[None, None, :]
    channels = np.broadcast_arrays(x * 2 + t * 3 + phase, y * 3 + t * 2, x + y + phase * 2)
    return (np.stack(channels, axis=-1) % 256).astype(np.uint8)


def test_frames_to_uint8_maps_range_and_layout() -> None:
    video_tensor = torch.tensor([-1.0, -0.5, 0.0, 1.0, 2.0]).view(1, 1, 5, 1, 1).repeat(1, 3, 1, 2, 4)
    frames = frames_to_uint8(video_tensor)
    assert frames.shape == (5, 2, 4, 3) and frames.dtype == np.uint8
    assert frames[:, 0, 0, 0].tolist() == [0, 64, 128, 255, 255]
    assert np.array_equal(frames_to_uint8(video_tensor[0]), frames)
    with pytest.raises(ValueError, match="batch of 2"):
        frames_to_uint8(video_tensor.repeat(2, 1, 1, 1, 1))


def test_round_trip_frames_fps_and_metadata(tmp_path: Path) -> None:
    frames = _gradient_clip(17)
    metadata = {"title": "Shot 1", "comment": "seed 0", "holocine_shot": "1"}
    path = tmp_path / "shot.mp4"
    write_mp4(path, frames, fps=15, metadata=metadata)
    decoded, fps, tags = read_mp4(path)
    assert decoded.shape == frames.shape
    assert fps == 15.0
    assert np.abs(decoded.astype(np.int16) - frames).mean() < 3
    assert tags.items() >= metadata.items()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.mp4"], "temporary file left behind"


def test_odd_frame_size_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="96x63"):
        write_mp4(tmp_path / "odd.mp4", _gradient_clip(3, height=63), fps=15)
    assert not list(tmp_path.iterdir())


def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "shot.mp4"
    write_mp4(path, _gradient_clip(5), fps=15)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(video.av.VideoFrame, "from_ndarray", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        write_mp4(path, _gradient_clip(9), fps=15)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.mp4"]


def test_concat_remuxes_clips_back_to_back(tmp_path: Path) -> None:
    lengths = [9, 12, 12]
    paths = []
    for index, length in enumerate(lengths):
        paths.append(tmp_path / f"shot_{index}.mp4")
        write_mp4(paths[-1], _gradient_clip(length, phase=70 * index), fps=15)
    scene_path = tmp_path / "scene.mp4"
    concat_mp4(paths, scene_path, metadata={"title": "scene"})

    scene, fps, tags = read_mp4(scene_path)
    assert scene.shape[0] == sum(lengths)
    assert fps == 15.0
    assert tags["title"] == "scene"
    starts = np.cumsum([0, *lengths[:-1]])
    for path, start, length in zip(paths, starts, lengths):
        clip, _, _ = read_mp4(path)
        assert np.array_equal(scene[start], clip[0])
        assert np.array_equal(scene[start : start + length], clip), "remux must not change pixels"


def test_concat_rejects_mismatched_clips(tmp_path: Path) -> None:
    small, large = tmp_path / "small.mp4", tmp_path / "large.mp4"
    write_mp4(small, _gradient_clip(3), fps=15)
    write_mp4(large, _gradient_clip(3, height=32), fps=15)
    with pytest.raises(ValueError, match="size of .*large.mp4"):
        concat_mp4([small, large], tmp_path / "scene.mp4")
    assert not (tmp_path / "scene.mp4").exists()


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no video file"):
        read_mp4(tmp_path / "missing.mp4")
