"""engine.files: a target appears whole or not at all, through a temporary sibling, never half-read."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from engine.files import atomic_path, atomic_write_bytes


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_the_block_writes_a_temporary_sibling_that_replaces_the_target(tmp_path):
    target = tmp_path / "take.mp4"
    target.write_bytes(b"old")
    with atomic_path(target, suffix=".mp4") as temporary:
        assert temporary.parent == target.parent and temporary.is_file() and temporary.read_bytes() == b""
        assert temporary.name.startswith(".take.mp4.") and temporary.name.endswith(".tmp.mp4")
        temporary.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # nothing is published before the block ends
    assert target.read_bytes() == b"new" and names(tmp_path) == ["take.mp4"]


def test_without_a_suffix_the_temporary_name_ends_in_tmp(tmp_path):
    with atomic_path(tmp_path / "manifest.json") as temporary:
        assert temporary.name.startswith(".manifest.json.") and temporary.name.endswith(".tmp")
        temporary.write_bytes(b"{}")
    assert names(tmp_path) == ["manifest.json"]


@pytest.mark.parametrize("existed", [True, False])
def test_an_error_in_the_block_keeps_the_old_content_and_no_temporary_file(tmp_path, existed):
    target = tmp_path / "scene.pdf"
    if existed:
        target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="encoder died"), atomic_path(target, suffix=".pdf") as temporary:
        temporary.write_bytes(b"half a fi")
        raise RuntimeError("encoder died")
    assert names(tmp_path) == (["scene.pdf"] if existed else [])
    if existed:
        assert target.read_bytes() == b"old"


def test_a_failed_rename_keeps_the_old_content_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "thumb.png"
    atomic_write_bytes(target, b"old")

    def disk_full(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("engine.files.os.replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and names(tmp_path) == ["thumb.png"]


def test_missing_folders_are_made_and_the_file_gets_ordinary_permissions(tmp_path):
    target = tmp_path / "exports" / "2026" / "timeline.otio"
    atomic_write_bytes(target, b"{}")
    assert target.read_bytes() == b"{}"
    if os.name == "posix":  # not mkstemp's 0o600: an NLE or another user may read an export
        umask = os.umask(0)
        os.umask(umask)
        assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_concurrent_reader_sees_the_old_content_or_the_new_never_part(tmp_path):
    target = tmp_path / "latents.safetensors"
    size = 4 << 20
    versions = [bytes([value]) * size for value in range(8)]
    atomic_write_bytes(target, versions[0])
    done, seen, bad, reads = threading.Event(), set(), [], [0]

    def read_repeatedly() -> None:  # reads while the writer writes, fsyncs and renames
        while not done.is_set():
            data = target.read_bytes()
            if data in versions:
                seen.add(data[0])
            else:
                bad.append((len(data), data[:1], data[-1:]))
            reads[0] += 1

    def await_reads(count: int) -> None:
        start = reads[0]
        while reads[0] < start + count and reader.is_alive():
            done.wait(0.001)

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        for version in versions[1:]:
            await_reads(2)  # the second read began after the last write: every version gets seen
            atomic_write_bytes(target, version)
        await_reads(2)
    finally:
        done.set()
        reader.join()
    assert not bad, f"a reader saw a partial file: (size, first byte, last byte) {bad[:3]}"
    assert seen == set(range(len(versions)))
    assert target.read_bytes() == versions[-1] and names(tmp_path) == ["latents.safetensors"]


def test_two_writers_of_one_target_never_share_a_temporary_file(tmp_path):
    target = tmp_path / "scene.mp4"
    payloads = [bytes([value]) * (1 << 20) for value in (1, 2)]
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        first.write_bytes(payloads[0])
        second.write_bytes(payloads[1])
    assert target.read_bytes() == payloads[0] and names(tmp_path) == ["scene.mp4"]  # the outer block ends last


def test_importing_it_loads_neither_torch_nor_numpy():
    code = "import sys, engine.files; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
