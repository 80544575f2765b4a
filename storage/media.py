"""Media files under the data directory, referred to by paths relative to it.

Rows store relative paths so a data directory can be moved or backed up as one folder and
still open. Every relative path is checked before use: one that is absolute or climbs out
with `..` (or through a symlink) is refused, so a crafted or corrupted row can never make the
studio read, overwrite or delete a file elsewhere on the disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import MediaPathError

PROJECTS_MEDIA_DIR = PurePosixPath("media/projects")


def relative_media_path(value: str, field: str = "path") -> str:
    """`value` normalized to the form rows store ("media/projects/3/take.mp4"), or refused."""
    if not isinstance(value, str) or not value.strip():
        raise MediaPathError(field, f"must be a non-empty path relative to the data directory, got {value!r}")
    path = PurePosixPath(value)
    if path.is_absolute() or PureWindowsPath(value).drive or PureWindowsPath(value).is_absolute():
        raise MediaPathError(field, f"must be relative to the data directory, got the absolute path {value!r}")
    if ".." in path.parts or "\\" in value:
        raise MediaPathError(field, f"must stay inside the data directory (no '..' or '\\'), got {value!r}")
    if path == PurePosixPath("."):
        raise MediaPathError(field, "must name a file or folder inside the data directory, not the directory itself")
    return path.as_posix()


def project_media_dir(project_id: int) -> str:
    """Where a project's renders and thumbnails go, relative to the data directory."""
    return (PROJECTS_MEDIA_DIR / str(project_id)).as_posix()


class MediaStore:
    """Resolves, writes and deletes media files inside one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()

    def path(self, relative: str, field: str = "path") -> Path:
        """The absolute path of a stored relative path, refused if it resolves outside the data directory."""
        resolved = (self.data_dir / relative_media_path(relative, field)).resolve()
        if not resolved.is_relative_to(self.data_dir):
            raise MediaPathError(field, f"{relative!r} leads outside the data directory {self.data_dir} (symlink?)")
        return resolved

    def relative(self, path: Path, field: str = "path") -> str:
        """The path to store for a file the engine wrote somewhere under the data directory."""
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.data_dir):
            raise MediaPathError(field, f"{path} is not inside the data directory {self.data_dir}; write media there")
        return relative_media_path(resolved.relative_to(self.data_dir).as_posix(), field)

    def write_bytes(self, relative: str, data: bytes) -> str:
        """Write a file so that readers see the old content or the new, never half of it.

        The bytes go to a temporary file in the same folder, reach the disk, and are renamed
        over the target in one step. Returns the normalized relative path to store.
        """
        stored = relative_media_path(relative)
        target = self.path(stored)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return stored

    def delete_project_media(self, project_id: int) -> None:
        """Remove `media/projects/<project_id>/` and everything in it; nothing to do if it never existed."""
        folder = self.path(project_media_dir(project_id))
        if folder.exists():
            shutil.rmtree(folder)
