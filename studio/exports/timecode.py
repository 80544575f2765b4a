"""Frame numbers as HH:MM:SS:FF, the way a storyboard reader finds a shot in the scene video."""

from __future__ import annotations

from .errors import ExportError


def frames_to_timecode(frame: int, fps: float) -> str:
    """Non-drop-frame timecode of `frame` (0 = 00:00:00:00) at a timebase of round(fps).

    Counting on the rounded timebase is how NDF timecode labels 23.976 and 29.97 video, and
    it is exact for every whole rate, including rates SMPTE has no timecode for (8, 15, 16).
    """
    timebase = round(fps)
    if frame < 0 or timebase < 1:
        raise ExportError(f"timecode needs a frame >= 0 and fps >= 0.5, got frame {frame} at {fps} fps")
    seconds, frames = divmod(frame, timebase)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}:{frames:02d}"
