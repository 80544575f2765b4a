"""Pictures a director brings into a project: a shot's keyframe, a character's reference image.

Every picture enters through `engine.pictures.Picture` (the CLI's checks, word for word: not
an image, empty, over PIL's decompression-bomb limit, transparent; CMYK, greyscale, palette
and 16-bit ones are converted), is re-encoded as an 8-bit RGB PNG, and is stored under the
project's folder by the sha256 of those PNG bytes (`storage.media.picture_media_path`). Stored
pictures are never rewritten, so a render job names the exact file it used and a retry or a
redo renders with it even after the director replaced the keyframe. The row is changed only
after the file is whole; a refused upload or a stale version leaves the row as it was.

"Use this frame as the keyframe" takes a frame of any take (by index, as decoded from its MP4)
for a shot the caller names: usually the take's own shot (the director liked that frame), or
the next one (the shot opens where the last one ended).
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import numpy as np

from engine.errors import SceneValidationError
from engine.pictures import Picture, png_bytes
from engine.video import read_mp4
from storage import CharacterRecord, ShotRecord, Storage
from storage.media import picture_media_path, project_media_dir


def decode_upload(value: str, field: str) -> bytes:
    """The bytes of a base64 upload (a bare string or a `data:image/...;base64,` URL), or refused naming `field`."""
    if not isinstance(value, str):
        raise SceneValidationError(field, f"must be the file's bytes as base64 text, got {type(value).__name__}")
    text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SceneValidationError(field, "is not base64 text; send the file's bytes base64-encoded") from None


def load_picture(storage: Storage, project_id: int, path: str, field: str) -> Picture:
    """A stored picture (data-relative path), checked again as it is read; `field` names it if it fails.

    Its `source` is the project-relative name (`pictures/<sha256>.png`), which is what a job's
    settings and the engine's manifest record, the same in any studio the project moves to.
    """
    try:
        data = storage.media.path(path, field).read_bytes()
    except FileNotFoundError:
        raise SceneValidationError(field, f"{path} does not exist; upload the picture again") from None
    except OSError as error:
        raise SceneValidationError(field, f"{path} cannot be read: {error.strerror or error}") from None
    return Picture.from_bytes(data, field, source=path.removeprefix(f"{project_media_dir(project_id)}/"))


class PictureService:
    """Stores pictures and sets them on shots and characters, through storage's versioned edits."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def store(self, project_id: int, picture: Picture) -> str:
        """Write `picture` as an RGB PNG named by its sha256 (once: the same picture is the same file)."""
        data = png_bytes(np.asarray(picture.image, dtype=np.uint8))
        path = picture_media_path(project_id, hashlib.sha256(data).hexdigest())
        if not self.storage.media.path(path).is_file():
            self.storage.media.write_bytes(path, data)
        return path

    def set_keyframe(self, shot_id: int, version: int, data: bytes, name: str = "upload") -> ShotRecord:
        """Check an uploaded file and make it the shot's keyframe; refused uploads change nothing."""
        picture = Picture.from_bytes(data, "keyframe", source=name)
        return self._keyframe(shot_id, version, picture)

    def keyframe_from_take(self, take_id: int, frame: int, shot_id: int, version: int) -> ShotRecord:
        """Frame `frame` (0 = first) of a take, exactly as its MP4 decodes, as shot `shot_id`'s keyframe."""
        take = self.storage.takes.get(take_id)
        project_id = self._project_of_shot(shot_id)
        if self._project_of_shot(take.shot_id) != project_id:
            raise SceneValidationError(
                "take_id", f"take {take_id} is of another project; pick one of this project's takes"
            )
        try:
            frames = read_mp4(self.storage.media.path(take.video_path))[0]
        except (FileNotFoundError, ValueError) as error:
            raise SceneValidationError("take_id", f"take {take_id}'s clip cannot be read: {error}") from None
        if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < len(frames):
            raise SceneValidationError(
                "frame", f"must be a frame of take {take_id}, 0 to {len(frames) - 1}, got {frame!r}"
            )
        picture = Picture.from_array(np.ascontiguousarray(frames[frame]), f"take {take_id}, frame {frame}")
        return self._keyframe(shot_id, version, picture)

    def clear_keyframe(self, shot_id: int, version: int) -> ShotRecord:
        """The shot without a keyframe (its file stays: a render job may name it)."""
        return self.storage.shots.set_keyframe(shot_id, None, version=version)

    def set_reference(self, character_id: int, version: int, data: bytes, name: str = "upload") -> CharacterRecord:
        """Check an uploaded file and make it the character's reference image."""
        picture = Picture.from_bytes(data, "reference", source=name)
        path = self.store(self.storage.characters.get(character_id).project_id, picture)
        return self.storage.characters.set_reference(character_id, path, version=version)

    def clear_reference(self, character_id: int, version: int) -> CharacterRecord:
        return self.storage.characters.set_reference(character_id, None, version=version)

    def _keyframe(self, shot_id: int, version: int, picture: Picture) -> ShotRecord:
        path = self.store(self._project_of_shot(shot_id), picture)
        return self.storage.shots.set_keyframe(shot_id, path, version=version)

    def _project_of_shot(self, shot_id: int) -> int:
        return self.storage.scenes.get(self.storage.shots.get(shot_id).scene_id).scene.project_id
