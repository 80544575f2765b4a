"""Media files under the data directory, referred to by paths relative to it.

Rows store relative paths so a data directory can be moved or backed up as one folder and
still open. Every relative path is checked before use: one that is absolute or climbs out
with `..` (or through a symlink) is refused, so a crafted or corrupted row can never make the
studio read, overwrite or delete a file elsewhere on the disk.

Crash leftovers. A process killed mid-render leaves half-written temporary files and complete
files no row points at; `MediaStore.sweep_unreferenced` removes them at start-up, so they
neither fill the disk nor travel in the next bundle. Two files are the studio's own although
no row names them (`derived_media_paths`): a finished render's manifest.json (the engine's
record of the run) and a scene's assembled cut (remade on demand from the selected takes).

Pictures. A shot's keyframe and a character's reference image live in the project's
`pictures/` folder, named by the sha256 of their bytes (`pictures/<sha256>.png`) and never
rewritten: replacing a keyframe stores a new file, so a render job that names the old one
(its settings list it, `render_picture_paths`) renders with the same picture on a retry,
and the start-up sweep keeps every picture of a project.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath

from engine import files

from .errors import MediaPathError, StorageValidationError

PROJECTS_MEDIA_DIR = PurePosixPath("media/projects")
PICTURES_DIR = "pictures"  # a project's keyframes and reference images: pictures/<sha256>.png
_PICTURE_PATH = re.compile(rf"{PICTURES_DIR}/[0-9a-f]{{64}}\.png")
# The keys of a render's settings (`studio.jobs.JobSpec`) that name the pictures its job renders with.
KEYFRAMES_SETTING = "keyframes"  # one project-relative picture path (or null) per shot of the job's scene
REFERENCES_SETTING = "references"  # [{"image": project-relative picture path, "caption", "tag"}]
RENDER_MANIFEST = "manifest.json"  # renders/<id>/manifest.json, written when a render is done
SCENE_CUT = "scene.mp4"  # scenes/<id>/scene.mp4, the selected takes joined (studio.renders.assemble_scene)


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


def render_media_dir(project_id: int, render_id: int) -> str:
    """A render's folder (its shot clips, scene video, latents, manifest), relative to the data directory."""
    return f"{project_media_dir(project_id)}/renders/{render_id}"


def picture_media_path(project_id: int, sha256: str) -> str:
    """Where the picture whose bytes hash to `sha256` is kept, relative to the data directory."""
    return f"{project_media_dir(project_id)}/{picture_path(sha256)}"


def picture_path(sha256: str) -> str:
    """The project-relative name of a picture: `pictures/<sha256>.png`."""
    return check_picture_path(f"{PICTURES_DIR}/{sha256}.png", "sha256")


def check_picture_path(value: object, field: str) -> str:
    """A project-relative picture path (`pictures/<64 hex digits>.png`), or refused naming `field`.

    Stricter than any media path: a picture is content-addressed, so its name is its hash and
    nothing else, which also keeps a hand-made row or bundle from pointing anywhere but there.
    """
    if not isinstance(value, str) or not _PICTURE_PATH.fullmatch(value):
        raise StorageValidationError(
            field,
            f"must be a picture of the project, {PICTURES_DIR}/<sha256 in 64 lowercase hex>.png, got {value!r:.120}",
        )
    return value


def render_picture_paths(settings: Mapping[str, object]) -> dict[str, object]:
    """The pictures a render's job names, by where they sit in its settings ("keyframes[2]").

    Values are returned as stored (null entries left out), unchecked: the sweep keeps the
    strings among them, a snapshot refuses any that is not a picture path.
    """
    found: dict[str, object] = {}
    keyframes = settings.get(KEYFRAMES_SETTING)
    for i, value in enumerate(keyframes if isinstance(keyframes, list) else ()):
        if value is not None:
            found[f"{KEYFRAMES_SETTING}[{i}]"] = value
    references = settings.get(REFERENCES_SETTING)
    for i, value in enumerate(references if isinstance(references, list) else ()):
        found[f"{REFERENCES_SETTING}[{i}].image"] = value.get("image") if isinstance(value, Mapping) else value
    return found


def derived_media_paths(project_id: int, done_render_ids: Iterable[int], scene_ids: Iterable[int]) -> set[str]:
    """The files of a project that are the studio's own though no row names them.

    A done render's manifest.json and a scene's assembled cut: kept by the start-up sweep and
    carried by bundles, like the files rows reference. Relative to the data directory.
    """
    project = project_media_dir(project_id)
    return {f"{render_media_dir(project_id, r)}/{RENDER_MANIFEST}" for r in done_render_ids} | {
        f"{project}/scenes/{s}/{SCENE_CUT}" for s in scene_ids
    }


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
        over the target in one step (`engine.files.atomic_write_bytes`). Returns the normalized
        relative path to store.
        """
        stored = relative_media_path(relative)
        files.atomic_write_bytes(self.path(stored), data)
        return stored

    def copy_pictures(self, source_project_id: int, target_project_id: int, paths: Iterable[str]) -> dict[str, str]:
        """Copy pictures (data-relative paths of the source project) into the target project's folder.

        For a duplicated project: its rows must point at its own files, or deleting the original
        would take the copy's keyframes with it. Returns old path -> new path.
        """
        prefix = f"{project_media_dir(source_project_id)}/"
        copied = {}
        for path in sorted(set(paths)):
            name = check_picture_path(path.removeprefix(prefix), "path")
            target = f"{project_media_dir(target_project_id)}/{name}"
            copied[path] = self.write_bytes(target, self.path(path).read_bytes())
        return copied

    def delete_project_media(self, project_id: int) -> None:
        """Remove `media/projects/<project_id>/` and everything in it; nothing to do if it never existed."""
        folder = self.path(project_media_dir(project_id))
        if folder.exists():
            shutil.rmtree(folder)

    def sweep_unreferenced(self, keep: Iterable[str], *, protected: Iterable[str] = ()) -> list[str]:
        """Delete every file under media/projects/ that `keep` does not name; return what went, sorted.

        For start-up, once no render of this data directory can be writing (a crash left its
        temporary and unreferenced files behind): `keep` is every path a row references plus
        `derived_media_paths`, `protected` the folders of renders still queued or running, left
        whole. Folders emptied by the sweep go too (the projects folder itself stays). Only
        numbered project folders are entered, symlinks are neither followed nor removed, and
        nothing outside media/projects/ is touched. Paths are relative to the data directory.

        A project's pictures (`pictures/<sha256>.png`) always stay, named by a row or not: one is
        written whole under its final name (a crash leaves only a `.tmp` file, which goes), and
        one a director replaced may still be named by a render job's settings, which a retry
        renders with again. They go with their project.
        """
        root = self.data_dir / PROJECTS_MEDIA_DIR
        if any((self.data_dir / part).is_symlink() for part in ("media", PROJECTS_MEDIA_DIR)) or not root.is_dir():
            return []  # a linked media tree belongs to someone else; no tree, nothing to sweep
        kept, guarded = set(keep), {f"{folder}/" for folder in protected}
        removed: list[str] = []
        for project in sorted(root.iterdir()):
            if project.name.isdecimal() and not project.is_symlink() and project.is_dir():
                removed += self._sweep_folder(project, kept, guarded)
        return sorted(removed)

    def _sweep_folder(self, top: Path, kept: set[str], guarded: set[str]) -> list[str]:
        removed = []
        project = f"{top.relative_to(self.data_dir).as_posix()}/"
        for folder, _, names in os.walk(top, topdown=False):  # children first, so emptied folders go too
            relative = Path(folder).relative_to(self.data_dir).as_posix()
            if any(f"{relative}/".startswith(g) for g in guarded):
                continue
            for name in names:
                path = Path(folder, name)
                stored = f"{relative}/{name}"
                if _PICTURE_PATH.fullmatch(stored.removeprefix(project)):
                    continue  # a project's pictures stay (see above)
                if stored not in kept and not path.is_symlink() and _removed(path.unlink):
                    removed.append(stored)
            _removed(Path(folder).rmdir)  # refused unless the folder is empty now
        return removed


def _removed(remove: Callable[[], None]) -> bool:
    """Run `remove`; a file the sweep cannot delete (permissions, gone already) is left, not a failed start."""
    try:
        remove()
    except OSError:
        return False
    return True
