"""A printable storyboard of a rendered scene: what was asked for next to what came out.

Page one introduces the scene (title, description, characters, the generation record);
then each shot gets stills from its selected take, its camera notes, its place in the scene
video as timecode, its action and dialogue, and the exact caption it was rendered from, so
a reader can judge every shot against its prompt without opening the studio.

Pictures the director brought are printed where they were asked for: a shot's keyframe as
the first picture of its row, before the take's stills (every exported shot has a take, so
the keyframe is printed beside what came out, to be compared with it), and a character's
reference image beside the character on page one.
"""

from __future__ import annotations

import json
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from PIL import Image

from engine.files import atomic_write_bytes

from .clips import sample_frames
from .errors import ExportError
from .model import ExportScene, ExportShot, validate_scene
from .pdf_fonts import PdfFont, storyboard_font
from .timecode import frames_to_timecode

_MARGIN_MM = 15
_GAP_MM = 3
_LINE_MM = 5
_PT_MM = 25.4 / 72  # one typographic point in mm
_STILL_MAX_PX = 480  # stills are downscaled and stored as JPEG so a long scene stays a small file
_MAX_STILL_H_MM = 70  # so portrait stills or a single thumbnail leave room for the notes
_MIN_TEXT_MM = 35  # room a shot needs below its stills before it is worth starting on this page
_REFERENCE_W_MM = 35  # a character's reference image on page one


def write_storyboard_pdf(scene: ExportScene, path: Path, frames_per_shot: int = 3) -> Path:
    """Write the storyboard PDF to `path`.

    Each shot shows its `thumbnail_path` image when it has one (the director's chosen
    still), otherwise `frames_per_shot` frames sampled evenly from its take.
    """
    validate_scene(scene)
    document = _Storyboard(storyboard_font())
    document.title_page(scene)
    document.add_page()
    for shot in scene.shots:
        keyframe = (
            None if shot.keyframe_path is None else _picture(shot.keyframe_path, f"shot {shot.number}'s keyframe")
        )
        stills = [keyframe, *_stills(shot, frames_per_shot)] if keyframe else _stills(shot, frames_per_shot)
        document.shot(
            scene, shot, stills, columns=frames_per_shot + (keyframe is not None), keyframe=keyframe is not None
        )
    atomic_write_bytes(path, bytes(document.output()))
    return Path(path)


def _stills(shot: ExportShot, frames_per_shot: int) -> list[Image.Image]:
    if shot.thumbnail_path is None:
        stills = sample_frames(shot.video_path, frames_per_shot)
    else:
        stills = [_picture(shot.thumbnail_path, f"shot {shot.number}'s thumbnail")]
    for still in stills:
        still.thumbnail((_STILL_MAX_PX, _STILL_MAX_PX))
    return stills


def _picture(path: Path, what: str) -> Image.Image:
    """An image file as RGB, downscaled for print; a missing or unreadable one is refused naming `what`."""
    try:
        with Image.open(path) as image:
            picture = image.convert("RGB")
    except OSError as error:
        raise ExportError(f"cannot read {what} {path}: {error}") from error
    picture.thumbnail((_STILL_MAX_PX, _STILL_MAX_PX))
    return picture


class _Storyboard(FPDF):
    """An A4 portrait FPDF that writes every string through the font's `printable`."""

    def __init__(self, font: PdfFont) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.font_choice = font
        font.register(self)  # with its fallbacks for other scripts, and text shaping
        self.set_margins(_MARGIN_MM, _MARGIN_MM)
        self.set_auto_page_break(True, margin=_MARGIN_MM)
        self.set_image_filter("DCTDecode")
        self.set_creator("HoloCine Studio")

    def title_page(self, scene: ExportScene) -> None:
        self.set_title(self.font_choice.printable(f"{scene.project_name} - {scene.title}"))
        self.add_page()
        self.paragraph(scene.project_name, size=18, bold=True)
        self.paragraph(scene.title, size=14, bold=True)
        total = scene.shots[-1].frame_range[1]
        self.paragraph(
            f"{len(scene.shots)} shots, {total} frames ({frames_to_timecode(total, scene.fps)}) "
            f"at {scene.fps:g} fps, {scene.width}x{scene.height}",
            size=9,
        )
        self.heading("Description")
        self.paragraph(scene.description)
        self.heading("Characters")
        for character in scene.characters:
            if character.reference_path is not None:
                self.reference(_picture(character.reference_path, f"{character.tag}'s reference image"))
            self.paragraph(f"{character.tag}  {character.name}", bold=True)
            self.paragraph(character.description)
        if not scene.characters:
            self.paragraph("(none)")
        self.heading("Generation")
        self.paragraph(f"Global caption: {scene.global_caption}")
        self.paragraph(f"Seed: {scene.seed}")
        self.paragraph(f"Settings: {json.dumps(scene.settings, ensure_ascii=False, sort_keys=True)}", size=8)

    def reference(self, image: Image.Image) -> None:
        """A character's reference image, small, before their name."""
        height = _REFERENCE_W_MM * image.height / image.width
        if self.get_y() + height > self.page_break_trigger:
            self.add_page()
        top = self.get_y()
        self.image(image, x=self.l_margin, y=top, w=_REFERENCE_W_MM)
        self.set_y(top + height + 1)

    def shot(
        self, scene: ExportScene, shot: ExportShot, stills: list[Image.Image], columns: int, keyframe: bool = False
    ) -> None:
        """One shot's block: heading, a row of stills in `columns` equal cells, then its notes.

        With `keyframe`, the first picture is the shot's keyframe, and a line under the row says so.
        """
        still_w = (self.epw - _GAP_MM * (columns - 1)) / columns
        tallest = max(image.height / image.width for image in stills)
        still_w = min(still_w, _MAX_STILL_H_MM / tallest)
        still_h = still_w * tallest
        if self.get_y() + _LINE_MM * 2 + still_h + _MIN_TEXT_MM > self.page_break_trigger:
            self.add_page()
        start, end = shot.frame_range
        self.heading(f"Shot {shot.number}")
        top = self.get_y()
        for index, image in enumerate(stills):
            self.image(image, x=self.l_margin + index * (still_w + _GAP_MM), y=top, w=still_w)
        self.set_y(top + still_h + _GAP_MM)
        if keyframe:
            self.paragraph("First picture: the keyframe the shot opens on; then its take.", size=8)
        self.paragraph(f"{shot.shot_size} / {shot.camera_angle} / {shot.camera_movement}", bold=True)
        self.paragraph(
            f"Duration {shot.duration_s:.2f} s ({shot.frame_count} frames)   "
            f"TC {frames_to_timecode(start, scene.fps)} - {frames_to_timecode(end, scene.fps)}"
        )
        self.paragraph(f"Action: {shot.action}")
        if shot.dialogue:
            self.paragraph(f"Dialogue: {shot.dialogue}")
        self.paragraph(f"Caption: {shot.caption}", size=9)
        self.ln(_GAP_MM * 2)

    def heading(self, text: str) -> None:
        self.ln(_GAP_MM)
        self.paragraph(text, size=12, bold=True)

    def paragraph(self, text: str, size: float = 10, bold: bool = False) -> None:
        """Wrapped text across the page width, leaving the cursor on the next line."""
        self.set_font(self.font_choice.family, "B" if bold else "", size)
        line_mm = max(_LINE_MM, size * _PT_MM * 1.25)  # a heading's lines are as tall as its letters need
        self.multi_cell(0, line_mm, self.font_choice.printable(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
