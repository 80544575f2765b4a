"""Everything a scene can leave the studio as: videos, editorial timelines, a storyboard PDF
and a contact sheet.

Each exporter takes an `ExportScene` (plain values the studio builds from its database) and
an output path, and writes through a temporary file and a rename, so a failed export never
leaves a half-written file under a name someone would trust.
"""

from .contact_sheet import SheetLayout, contact_sheet_layout, write_contact_sheet
from .errors import ExportError
from .model import ExportCharacter, ExportScene, ExportShot, validate_scene
from .storyboard import write_storyboard_pdf
from .timecode import frames_to_timecode
from .timeline import (
    TIMELINE_SUFFIXES,
    TimelineFormat,
    build_timeline,
    interchange_rate,
    shot_media_urls,
    write_timeline,
)
from .videos import export_scene_video, export_shot_videos, read_video_metadata, shot_file_name

__all__ = [
    "TIMELINE_SUFFIXES",
    "ExportCharacter",
    "ExportError",
    "ExportScene",
    "ExportShot",
    "SheetLayout",
    "TimelineFormat",
    "build_timeline",
    "contact_sheet_layout",
    "export_scene_video",
    "export_shot_videos",
    "frames_to_timecode",
    "interchange_rate",
    "read_video_metadata",
    "shot_file_name",
    "shot_media_urls",
    "validate_scene",
    "write_contact_sheet",
    "write_storyboard_pdf",
    "write_timeline",
]
