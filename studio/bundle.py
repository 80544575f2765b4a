"""Portable project bundles: one .zip with a project's rows and their media files, for another studio.

Layout. `bundle.json` holds {"format": "holocine-studio-bundle", "version": 1, "project":
<storage snapshot>, "files": [{"path", "size", "sha256"}]}; every file a row references (plus
a done render's manifest and a scene's assembled cut) follows under its data-directory path
(media/projects/<id>/renders/<id>/shots/shot_01.mp4); leftovers no row names stay behind.
Media are stored, not deflated: video, PNG and latents barely shrink, and a stored member's
declared size is its size on disk. Where the files land on import is storage's path rule
(`storage.portable`): new project, render and scene ids replace the old ones in the path.

Import treats the zip as hostile. It reads the zip's directory and refuses, before writing
anything: names that could land outside the data directory (`..`, absolute, drive letters,
backslashes), symlinks and other non-files, encrypted members, duplicate names (also ones that
differ only in case, which collide on macOS and Windows), sizes or a compression ratio beyond
`BundleLimits`; then bundle.json (format, version, every row and link of the snapshot), files
listed but absent or present but unlisted, sizes that disagree, rows naming files the bundle
lacks; then it reads every member once, counting bytes against the declared size and hashing
them; every picture (a keyframe, a reference image: `pictures/<sha256>.png`) must be named by
its own hash and pass the checks an upload passes (`engine.pictures.Picture`: an image, not
empty, within PIL's decompression-bomb limit, opaque). Only then are the files extracted (a second read, verified again: the zip may change
in between) to a staging folder inside the data directory, and the rows inserted in one
transaction that renames the staged files into the new project's folder before it commits.
Whatever fails, the staged and placed files are removed and no row is saved.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from engine.errors import SceneValidationError
from engine.files import atomic_path
from engine.pictures import Picture
from storage import (
    MediaPathError,
    MediaStore,
    ProjectRecord,
    ProjectSnapshot,
    Relocation,
    Storage,
    StorageError,
    StorageValidationError,
    project_media_dir,
    read_snapshot,
    relative_media_path,
    restore_project,
    snapshot_project,
)
from storage.media import PICTURES_DIR, check_picture_path, derived_media_paths, picture_path

FORMAT = "holocine-studio-bundle"
VERSION = 1
MANIFEST = "bundle.json"
MiB = 1 << 20
GiB = 1 << 30
CHUNK = MiB
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ENCRYPTED = 0x1  # general purpose flag bit 0 of a zip member


class BundleError(StorageError):
    """A bundle that cannot be exported or imported; `subject` names the member or field at fault."""

    def __init__(self, subject: str, problem: str) -> None:
        super().__init__(f"{subject}: {problem}")
        self.subject = subject
        self.problem = problem


@dataclass(frozen=True)
class BundleLimits:
    """Ceilings that keep a hostile bundle from filling the disk or the memory; tests pass small ones."""

    max_member_bytes: int = 2 * GiB
    max_total_bytes: int = 20 * GiB
    max_members: int = 10_000
    max_ratio: float = 200.0  # uncompressed / compressed size of one member: deflate bombs reach 1000
    max_manifest_bytes: int = 64 * MiB  # bundle.json is parsed in memory
    max_picture_bytes: int = 64 * MiB  # a picture is decoded in memory to be checked


DEFAULT_LIMITS = BundleLimits()


@dataclass(frozen=True)
class _Listed:
    """A file bundle.json promises: where it goes in the project, and what its bytes must be."""

    project_path: str
    size: int
    sha256: str


# --- export --------------------------------------------------------------------------------------


def export_bundle(storage: Storage, project_id: int, out_path: Path) -> Path:
    """Write the project, rows and media, as a bundle at `out_path`: complete, or not there at all.

    Refused (`StorageValidationError` or `BundleError`, naming the row field or file) while one
    of its renders is queued or running, when a row names a file that is missing, and when the
    project's media folder holds a symlink. Only the files rows reference travel, with the studio's
    own manifest.json of each done render and assembled cut of each scene (`derived_media_paths`):
    what a killed render left (temporary files, clips no take got) stays out of other studios.
    """
    snapshot = snapshot_project(storage, project_id)
    checked = read_snapshot(snapshot)
    prefix = f"{project_media_dir(project_id)}/"
    done = [row.ref for row in checked.tables["renders"] if row.values["status"] == "done"]
    derived = derived_media_paths(project_id, done, [row.ref for row in checked.tables["scenes"]])
    files = _project_files(storage.media, prefix, {prefix + path for path in checked.media_paths().values()} | derived)
    present = {checked.check_media_path(path.removeprefix(prefix), path) for path in files}
    for field, path in checked.media_paths().items():
        if path not in present:
            raise BundleError(field, f"names {prefix}{path}, which does not exist; restore the file, then export again")
    target = Path(out_path)
    # a new file that takes `target`'s place only once the zip is whole: nobody sees half a bundle
    with atomic_path(target) as temporary, zipfile.ZipFile(temporary, "w") as archive:
        listed = [_add_file(archive, storage.media.path(path), path) for path in files]
        manifest = {"format": FORMAT, "version": VERSION, "project": snapshot, "files": listed}
        text = json.dumps(manifest, indent=1, ensure_ascii=False, allow_nan=False)
        archive.writestr(_member_info(MANIFEST, zipfile.ZIP_DEFLATED), text)
    return target


def _project_files(media: MediaStore, prefix: str, carried: set[str]) -> list[str]:
    """The files of `carried` found under the project's media folder, relative to the data directory.

    Any symlink or special file in the folder is refused, carried or not: one could stand for a
    file a row names, and a bundle is made of plain files only.
    """
    root = media.path(prefix)
    found = []
    for folder, subfolders, names in os.walk(root):
        for name in [*subfolders, *names]:
            path = Path(folder, name)
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise BundleError(
                    path.relative_to(media.data_dir).as_posix(),
                    "is a symlink or special file; a bundle carries only plain files, replace it with the file itself",
                )
        found += [Path(folder, name).relative_to(media.data_dir).as_posix() for name in names]
    return sorted(path for path in found if path in carried)


def _member_info(name: str, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)  # fixed 1980 date: the same project gives the same bytes
    info.compress_type = compression
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


def _add_file(archive: zipfile.ZipFile, source: Path, name: str) -> dict[str, Any]:
    """Copy one file into the zip, hashing the bytes actually written, and describe it for bundle.json."""
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as file, archive.open(_member_info(name, zipfile.ZIP_STORED), "w", force_zip64=True) as out:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return {"path": name, "size": size, "sha256": digest.hexdigest()}


# --- import --------------------------------------------------------------------------------------


def import_bundle(storage: Storage, bundle_path: Path, limits: BundleLimits = DEFAULT_LIMITS) -> ProjectRecord:
    """The bundle as a new project of this studio, with new ids; the project keeps its name.

    Raises `BundleError` (naming the member or bundle.json field) for anything wrong with the
    bundle, and other `StorageError`s when this studio cannot take it (database failure, a
    leftover folder where the project's media would go); either way nothing is left behind.
    Importing the same bundle twice gives two independent projects.
    """
    with _open_bundle(Path(bundle_path)) as archive:
        # 1. Check everything, writing nothing: the zip's directory, bundle.json, the listing, every byte.
        members = _checked_members(archive, limits)
        manifest = _read_manifest(archive, members, limits)
        snapshot = _checked_snapshot(manifest["project"])
        listed = _checked_listing(manifest["files"], members, snapshot)
        for name, entry in listed.items():
            _copy_member(archive, members[name], entry, None)
        _check_pictures(archive, members, listed, snapshot, limits)
        # 2. Extract to temporary names, then 3. insert the rows and rename the files into place, in one go.
        storage.media.data_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".bundle-import-", dir=storage.media.data_dir))
        try:
            staged = {
                entry.project_path: _stage(archive, members[name], entry, staging) for name, entry in listed.items()
            }
            return restore_project(storage, manifest["project"], place_media=partial(_place, storage.media, staged))
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _open_bundle(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise BundleError(str(path), "is not a file; pick the bundle's .zip file")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise BundleError(
            path.name, f"is not a readable zip file ({error}); pick a bundle exported by the studio"
        ) from error


def _checked_members(archive: zipfile.ZipFile, limits: BundleLimits) -> dict[str, zipfile.ZipInfo]:
    """The zip's members by name, once their names, kinds and sizes are known to be safe to extract."""
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise BundleError("bundle", f"has {len(infos)} members, more than the limit of {limits.max_members}")
    for info in infos:
        _check_member(info, limits)
    for names, how in (
        (Counter(i.filename for i in infos), "twice"),
        (Counter(i.filename.casefold() for i in infos), "twice, in different letter case"),
    ):
        repeated = sorted(name for name, count in names.items() if count > 1)
        if repeated:
            raise BundleError(f"bundle member {repeated[0]!r}", f"appears {how}; one would overwrite the other")
    total = sum(info.file_size for info in infos)
    if total > limits.max_total_bytes:
        raise BundleError("bundle", f"unpacks to {total} bytes, more than the limit of {limits.max_total_bytes}")
    return {info.filename: info for info in infos}


def _check_member(info: zipfile.ZipInfo, limits: BundleLimits) -> None:
    subject = f"bundle member {info.filename!r}"
    if info.is_dir():
        raise BundleError(subject, "is a folder entry; a bundle lists its files only")
    try:
        plain = relative_media_path(info.filename, subject) == info.filename
    except MediaPathError as error:
        raise BundleError(subject, error.message) from error
    if not plain:
        raise BundleError(subject, "is not a plain relative path (empty or '.' parts)")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise BundleError(subject, "is a symbolic link; a bundle carries only plain files")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: made where no Unix mode is recorded
        raise BundleError(subject, f"is not a plain file (mode {mode:o})")
    if info.flag_bits & _ENCRYPTED:
        raise BundleError(subject, "is encrypted; the studio writes bundles without passwords")
    if info.file_size > limits.max_member_bytes:
        raise BundleError(
            subject, f"unpacks to {info.file_size} bytes, more than the limit of {limits.max_member_bytes}"
        )
    if info.file_size > limits.max_ratio * max(info.compress_size, 1):
        raise BundleError(
            subject,
            f"unpacks {info.compress_size} bytes to {info.file_size}, a ratio beyond the limit of {limits.max_ratio:g}",
        )


MAX_JSON_DEPTH = 64  # a studio bundle.json nests about 6 levels


def _too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> tuple[str | int, ...] | None:
    """The path to the first object or list nested deeper than `limit`, else None; walked without recursion.

    Python's parser takes about 1000 levels, but what runs after it (the snapshot checks, the
    database's JSON column) recurses too, and would fail with a RecursionError halfway through
    the import instead of refusing the bundle before anything is written.
    """
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else None
        if children is None:
            continue
        if len(path) >= limit:
            return path
        stack.extend((child, (*path, key)) for key, child in children)
    return None


def _read_manifest(
    archive: zipfile.ZipFile, members: Mapping[str, zipfile.ZipInfo], limits: BundleLimits
) -> dict[str, Any]:
    info = members.get(MANIFEST)
    if info is None:
        raise BundleError(MANIFEST, "is missing; this zip is not a bundle exported by the studio")
    if info.file_size > limits.max_manifest_bytes:
        raise BundleError(MANIFEST, f"is {info.file_size} bytes, more than the limit of {limits.max_manifest_bytes}")
    too_deep = f"nests JSON deeper than {MAX_JSON_DEPTH} levels; a studio bundle never does, export it again"
    try:
        manifest = json.loads(b"".join(_chunks(archive, info, info.file_size)).decode("utf-8"))
    except RecursionError as error:  # ~1000 levels: deeper than the parser itself can go
        raise BundleError(MANIFEST, too_deep) from error
    except ValueError as error:
        raise BundleError(MANIFEST, f"is not valid JSON ({type(error).__name__}: {error})") from error
    deep = _too_deep(manifest)
    if deep is not None:
        field = "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in deep[:4]).lstrip(".")
        raise BundleError(f"{MANIFEST} {field}", too_deep)
    if not isinstance(manifest, dict):
        raise BundleError(MANIFEST, f"must hold a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != FORMAT:
        raise BundleError(
            f"{MANIFEST} format", f"is {manifest.get('format')!r}, not {FORMAT!r}; this is not a studio bundle"
        )
    version = manifest.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version != VERSION:
        raise BundleError(
            f"{MANIFEST} version",
            f"is {version!r}, but this studio reads version {VERSION}; a newer studio made it, update",
        )
    keys = {"format", "version", "project", "files"}
    if set(manifest) != keys:
        raise BundleError(
            MANIFEST, f"must have exactly the keys {', '.join(sorted(keys))}, has {', '.join(sorted(manifest))}"
        )
    return manifest


def _checked_snapshot(project: Any) -> ProjectSnapshot:
    try:
        return read_snapshot(project)
    except StorageValidationError as error:
        raise BundleError(f"{MANIFEST} project.{error.field}", error.message) from error


def _checked_listing(
    files: Any, members: Mapping[str, zipfile.ZipInfo], snapshot: ProjectSnapshot
) -> dict[str, _Listed]:
    """bundle.json's file list against the zip and the rows: the member name -> what it must hold."""
    if not isinstance(files, list):
        raise BundleError(f"{MANIFEST} files", f"must be a list, got {type(files).__name__}")
    prefix = f"{project_media_dir(snapshot.project.ref)}/"
    listed: dict[str, _Listed] = {}
    for index, item in enumerate(files):
        label = f"{MANIFEST} files[{index}]"
        if not isinstance(item, dict) or set(item) != {"path", "size", "sha256"}:
            raise BundleError(label, "must be an object with exactly path, size and sha256")
        path, size, sha256 = item["path"], item["size"], item["sha256"]
        if not isinstance(path, str) or not path.startswith(prefix):
            raise BundleError(f"{label}.path", f"{path!r} is not inside the project's folder {prefix}")
        if path in listed:
            raise BundleError(f"{label}.path", f"{path!r} is listed twice")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BundleError(f"{label}.size", f"must be a whole number of bytes, got {size!r}")
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise BundleError(f"{label}.sha256", f"must be 64 lowercase hex digits, got {sha256!r}")
        try:
            listed[path] = _Listed(snapshot.check_media_path(path.removeprefix(prefix), f"{label}.path"), size, sha256)
        except StorageValidationError as error:
            raise BundleError(error.field, error.message) from error
    missing = sorted(set(listed) - set(members))
    if missing:
        raise BundleError(f"bundle member {missing[0]!r}", f"is listed in {MANIFEST} but not in the zip")
    extra = sorted(set(members) - set(listed) - {MANIFEST})
    if extra:
        raise BundleError(f"bundle member {extra[0]!r}", f"is in the zip but not listed in {MANIFEST}")
    for name, entry in listed.items():
        if members[name].file_size != entry.size:
            raise BundleError(
                f"bundle member {name!r}", f"unpacks to {members[name].file_size} bytes, {MANIFEST} lists {entry.size}"
            )
    carried = {entry.project_path for entry in listed.values()}
    for field, path in snapshot.media_paths().items():
        if path not in carried:
            raise BundleError(f"{MANIFEST} project.{field}", f"names {path!r}, which is not among the bundle's files")
    return listed


def _check_pictures(
    archive: zipfile.ZipFile,
    members: Mapping[str, zipfile.ZipInfo],
    listed: Mapping[str, _Listed],
    snapshot: ProjectSnapshot,
    limits: BundleLimits,
) -> None:
    """Every file under pictures/ is a picture named by its sha256 that an upload would have passed.

    Run after every member's bytes matched its sha256, so the name check is the listed hash's.
    A refusal names the row field that holds the picture when one does, else the member.
    """
    fields = {path: field for field, path in snapshot.media_paths().items()}
    for name, entry in listed.items():
        if not entry.project_path.startswith(f"{PICTURES_DIR}/"):
            continue
        subject = f"{MANIFEST} project.{fields[entry.project_path]}" if entry.project_path in fields else name
        try:
            check_picture_path(entry.project_path, subject)
        except StorageValidationError as error:
            raise BundleError(f"bundle member {name!r}", error.message) from error
        if entry.project_path != picture_path(entry.sha256):
            raise BundleError(
                f"bundle member {name!r}", f"is named for other bytes than it holds (sha256 {entry.sha256})"
            )
        if entry.size > limits.max_picture_bytes:
            raise BundleError(
                subject,
                f"{name} is {entry.size} bytes, more than the limit of {limits.max_picture_bytes} for a picture",
            )
        try:
            Picture.from_bytes(b"".join(_chunks(archive, members[name], entry.size)), subject, source=name)
        except SceneValidationError as error:
            raise BundleError(error.field, error.message) from error


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> Iterator[bytes]:
    """The member's bytes, refused as soon as they exceed `limit`, whatever the zip's headers claim."""
    subject = f"bundle member {info.filename!r}"
    count = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK):
                count += len(chunk)
                if count > limit:
                    raise BundleError(subject, f"holds more than the {limit} bytes it declares")
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
        raise BundleError(subject, f"cannot be read ({error}); the bundle is damaged, export it again") from error


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, entry: _Listed, out: IO[bytes] | None) -> None:
    """Read the member whole, checking its size and sha256 against bundle.json; write it to `out` if given."""
    digest, size = hashlib.sha256(), 0
    for chunk in _chunks(archive, info, entry.size):
        digest.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    subject = f"bundle member {info.filename!r}"
    if size != entry.size:
        raise BundleError(subject, f"holds {size} bytes, {MANIFEST} lists {entry.size}")
    if digest.hexdigest() != entry.sha256:
        raise BundleError(subject, f"does not match its sha256 in {MANIFEST}; the bundle is damaged or was altered")


def _stage(archive: zipfile.ZipFile, info: zipfile.ZipInfo, entry: _Listed, staging: Path) -> Path:
    """Extract one verified member to a numbered file in `staging`, on disk before the rows commit."""
    handle, path = tempfile.mkstemp(dir=staging, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        _copy_member(archive, info, entry, out)
        out.flush()
        os.fsync(out.fileno())
    return Path(path)


def _place(media: MediaStore, staged: Mapping[str, Path], relocation: Relocation) -> None:
    """Rename every staged file to where the new rows expect it (same disk: no copy, no half files)."""
    for project_path, source in staged.items():
        target = media.path(relocation.data_path(project_path))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
