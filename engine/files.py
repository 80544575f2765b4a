"""Atomic file writes: the one "write to a temporary file, fsync, rename into place" of the project.

A reader (the UI, an NLE watching a folder, the bundle zipper, a resume step) only ever sees a
target's previous complete content or its new complete content, never half a file, and a crash
mid-write leaves the target as it was. Every writer goes through `atomic_path`: media files
(storage.media), exports and bundles (studio), MP4 clips (engine.video), training checkpoints.

The temporary file is a sibling of the target (same folder, so the same file system, so the rename
is atomic), named `.<target name>.<random>.tmp<suffix>`: hidden, marked as temporary, and unique,
so two writers of the same target never share one. A crash leaves it behind; under media/projects
the start-up sweep (`storage.media.MediaStore.sweep_unreferenced`) removes it, as it removes every
file no row names.

Torch-free and numpy-free: storage imports it (`engine/__init__.py` loads submodules lazily).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a new, empty temporary file beside `target` to write; it replaces `target` on success.

    Write the temporary path in the block (open it, or hand it to a library) and close what you
    opened there. If the block exits without error, the file is flushed to disk, renamed over
    `target` in one step and the folder's entry is flushed too (where the platform allows);
    otherwise the temporary file is removed and `target` keeps its old content, or stays absent.

    `suffix` ends the temporary name, for writers that pick a format from the extension
    (".mp4" for PyAV, ".png" for PIL). Missing parent folders of `target` are created. The new
    file gets the permissions of any newly created file (0o666 less the umask).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_sibling(target, suffix)
    try:
        yield temporary
        _fsync_file(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `target` through `atomic_path`: the old content or all of `data`, never part."""
    with atomic_path(target) as temporary, temporary.open("wb") as file:
        file.write(data)


def _create_sibling(target: Path, suffix: str) -> Path:
    """Create (exclusively) and return an empty `.<name>.<random>.tmp<suffix>` beside `target`."""
    while True:
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{suffix}")
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
        except FileExistsError:  # 32 random bits taken already: draw again
            continue
        return temporary


def _fsync_file(path: Path) -> None:
    """Flush `path`'s content to the disk, so the rename never publishes a file still only in cache."""
    handle = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _fsync_folder(folder: Path) -> None:
    """Flush the folder's entries (the rename itself) where folders can be opened (POSIX, not Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:  # some file systems refuse fsync on a folder; the file itself is on disk already
        pass
    finally:
        os.close(handle)
