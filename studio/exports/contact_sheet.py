"""One PNG that shows a whole scene at a glance: a row of evenly sampled frames per shot.

Handy for reviews in chat or a tracker, where a PDF or video is one click too many.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from engine.files import atomic_path

from .clips import sample_frames
from .errors import ExportError
from .model import ExportScene, validate_scene

_MAX_CELL_WIDTH = 256
_LABEL_WIDTH = 80
_PAD = 6
_BACKGROUND = (24, 24, 24)
_LABEL_COLOUR = (235, 235, 235)


@dataclass(frozen=True)
class SheetLayout:
    """Where everything goes on a contact sheet; the writer and its readers share it."""

    rows: int
    columns: int
    cell_width: int
    cell_height: int

    @property
    def size(self) -> tuple[int, int]:
        width = _LABEL_WIDTH + self.columns * (self.cell_width + _PAD) + _PAD
        return width, self.rows * (self.cell_height + _PAD) + _PAD

    def cell_box(self, row: int, column: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of one frame, both indices 0-based."""
        left = _LABEL_WIDTH + _PAD + column * (self.cell_width + _PAD)
        top = _PAD + row * (self.cell_height + _PAD)
        return left, top, left + self.cell_width, top + self.cell_height


def contact_sheet_layout(scene: ExportScene, frames_per_shot: int) -> SheetLayout:
    """Frames are shown at most 256 px wide, keeping the scene's aspect ratio."""
    if frames_per_shot < 1:
        raise ExportError(f"frames_per_shot must be at least 1, got {frames_per_shot}")
    cell_width = min(scene.width, _MAX_CELL_WIDTH)
    cell_height = max(1, round(cell_width * scene.height / scene.width))
    return SheetLayout(len(scene.shots), frames_per_shot, cell_width, cell_height)


def write_contact_sheet(scene: ExportScene, path: Path, frames_per_shot: int = 4) -> Path:
    """Write the contact sheet PNG to `path`: one labelled row per shot."""
    validate_scene(scene)
    layout = contact_sheet_layout(scene, frames_per_shot)
    sheet = Image.new("RGB", layout.size, _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=16)
    for row, shot in enumerate(scene.shots):
        for column, frame in enumerate(sample_frames(shot.video_path, frames_per_shot)):
            left, top, right, bottom = layout.cell_box(row, column)
            sheet.paste(frame.resize((right - left, bottom - top), Image.Resampling.BILINEAR), (left, top))
        top = layout.cell_box(row, 0)[1]
        draw.text(
            (_PAD, top + layout.cell_height / 2), f"Shot {shot.number}", fill=_LABEL_COLOUR, font=font, anchor="lm"
        )
    with atomic_path(path, suffix=".png") as tmp:
        sheet.save(tmp, format="PNG")
    return Path(path)
