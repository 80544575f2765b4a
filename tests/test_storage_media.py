"""Storage: media paths are stored relative to the data directory and can never leave it."""

from __future__ import annotations

import os

import pytest

from storage import MediaPathError, MediaStore, project_media_dir, relative_media_path


@pytest.fixture
def media(tmp_path) -> MediaStore:
    return MediaStore(tmp_path / "data")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("media/projects/1/take.mp4", "media/projects/1/take.mp4"),
        ("media/./projects//1/take.mp4", "media/projects/1/take.mp4"),
        ("take.mp4", "take.mp4"),
    ],
)
def test_relative_paths_are_normalized(given, stored):
    assert relative_media_path(given) == stored


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("/etc/passwd", "absolute"),
        ("C:/Users/x.mp4", "absolute"),
        ("C:x.mp4", "absolute"),
        ("../outside.mp4", "inside the data directory"),
        ("media/../../outside.mp4", "inside the data directory"),
        ("media\\..\\x.mp4", "inside the data directory"),
        ("", "non-empty"),
        (".", "not the directory itself"),
        (None, "non-empty"),
    ],
)
def test_escaping_or_empty_paths_are_refused(media, given, complaint):
    with pytest.raises(MediaPathError, match=complaint) as caught:
        relative_media_path(given, "video_path")
    assert caught.value.field == "video_path"
    with pytest.raises(MediaPathError):
        media.path(given)
    with pytest.raises(MediaPathError):
        media.write_bytes(given, b"x")


def test_path_resolves_inside_the_data_dir(media, tmp_path):
    assert media.path("media/projects/1/take.mp4") == (tmp_path / "data/media/projects/1/take.mp4").resolve()
    assert media.relative(tmp_path / "data/media/projects/1/take.mp4") == "media/projects/1/take.mp4"
    with pytest.raises(MediaPathError, match="not inside the data directory"):
        media.relative(tmp_path / "elsewhere.mp4")


def test_a_symlink_out_of_the_data_dir_is_refused(media, tmp_path):
    (tmp_path / "secret").mkdir()
    (tmp_path / "data").mkdir()
    os.symlink(tmp_path / "secret", tmp_path / "data" / "link")
    with pytest.raises(MediaPathError, match="leads outside the data directory"):
        media.path("link/key.txt")
    with pytest.raises(MediaPathError):
        media.write_bytes("link/key.txt", b"stolen")
    assert list((tmp_path / "secret").iterdir()) == []


def test_write_bytes_is_atomic_and_returns_the_stored_path(media):
    stored = media.write_bytes("media/projects/1/./thumb.png", b"first")
    assert stored == "media/projects/1/thumb.png"
    assert media.path(stored).read_bytes() == b"first"
    media.write_bytes(stored, b"second")
    assert media.path(stored).read_bytes() == b"second"
    assert sorted(p.name for p in media.path("media/projects/1").iterdir()) == ["thumb.png"]  # no temp files


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(media, monkeypatch):
    stored = media.write_bytes("media/projects/1/thumb.png", b"old")

    def disk_full(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("storage.media.os.replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        media.write_bytes(stored, b"new")
    assert media.path(stored).read_bytes() == b"old"
    assert [p.name for p in media.path("media/projects/1").iterdir()] == ["thumb.png"]


def test_delete_project_media_removes_only_that_project(media):
    media.write_bytes(f"{project_media_dir(1)}/renders/1/scene.mp4", b"a")
    media.write_bytes(f"{project_media_dir(2)}/renders/2/scene.mp4", b"b")
    media.delete_project_media(1)
    assert not media.path(project_media_dir(1)).exists()
    assert media.path(f"{project_media_dir(2)}/renders/2/scene.mp4").read_bytes() == b"b"
    media.delete_project_media(1)  # already gone: nothing to do
    media.delete_project_media(3)  # never had media
