"""Crash leftovers: what a killed render leaves is swept at start-up and never travels in a bundle.

The first test kills a real studio process with SIGKILL in the middle of a render (the tiny
model, on the CPU); the others build rows and files through the repositories and the
MediaStore, the way the render job does, so they need no model.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from killed_studio import kill_at_first_line
from sqlalchemy import text

from engine.video import read_mp4
from storage import build_storage
from studio.bundle import export_bundle, import_bundle
from studio.services import StudioSettings, build_services

# A studio that starts a render and stops (still inside it) once the first shot's take is filed.
CHILD = """
import sys, time
from pathlib import Path
from studio.renders import RenderRequest
from studio.services import StudioSettings, build_services

services = build_services(StudioSettings(data_dir=Path(sys.argv[1]), device="cpu"))
project = services.storage.projects.create("Crash")
scene = services.storage.scenes.add(
    project.id, title="Pier", description="A harbour at night", fps=8, width=160, height=96
)
for action in ("Boats rock.", "A rope is tied.", "The sky darkens."):
    services.storage.shots.add(scene.id, action=action, duration_s=1.0)
for update in services.renders.run(RenderRequest(scene_id=scene.id, steps=2)):
    if update.clip is not None:
        print("CLIP", update.render.id, update.clip, flush=True)
        time.sleep(600)  # mid-render: shots 2 and 3, the scene video and the latents never come
"""


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def referenced_paths(store) -> set[str]:
    """Every media path any row stores, read straight from the tables."""
    with store.database.transaction() as session:
        rows = session.execute(
            text("SELECT video_path, thumbnail_path FROM takes UNION ALL SELECT latents_path, scene_path FROM renders")
        ).all()
    return {path for row in rows for path in row if path is not None}


def test_start_up_after_a_kill_mid_render_removes_leftovers_and_keeps_every_take(tmp_path):
    data = tmp_path / "data"
    line = kill_at_first_line(CHILD, str(data))
    assert line.startswith("CLIP"), line
    _, render_id, clip = line.split()
    shots_folder = Path(clip).parent
    render_folder = shots_folder.parent
    assert shots_folder.name == "shots" and render_folder.name == render_id
    assert render_folder.is_relative_to(data / "media" / "projects")

    # What else a crash leaves: a half-written temporary file and a complete file no take got.
    (shots_folder / ".shot_02.mp4.abc123.tmp").write_bytes(b"\x00\x00\x00\x18ftypisom half")
    (shots_folder / "orphan.mp4").write_bytes(Path(clip).read_bytes())
    # Files that are no leftovers of the studio's: around the media tree, and behind a symlink.
    outside = {
        "notes.txt": b"mine",
        "media/readme.txt": b"not a project",
        "exports/20260101/project.zip": b"PK",
        "leftover.tmp": b"not in media/projects",
        "elsewhere/take.mp4": b"linked",
    }
    for name, content in outside.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(content)
    (render_folder / "linked.mp4").symlink_to(data / "elsewhere" / "take.mp4")

    restarted = build_services(StudioSettings(data_dir=data, device="cpu"))
    try:
        store = restarted.storage
        assert restarted.recovered == 1
        assert store.renders.get(int(render_id)).status == "interrupted"
        referenced = referenced_paths(store)
        assert referenced and all(store.media.path(path).is_file() for path in referenced)
        assert sorted(p.name for p in render_folder.iterdir()) == ["linked.mp4", "shots"]  # previews swept too
        assert sorted(p.name for p in shots_folder.iterdir()) == ["shot_01.mp4", "shot_01.png"]
        scene = store.scenes.list_for_project(store.projects.list_all()[0].id)[0]
        first_shot = store.scenes.get(scene.id).shots[0]
        (take,) = store.takes.list_for_shot(first_shot.id)
        assert take.selected and take.render_id == int(render_id)
        frames, fps, _ = read_mp4(store.media.path(take.video_path))
        assert frames.shape[0] > 0 and fps == 8
        assert store.media.path(take.thumbnail_path).is_file()
        assert {name: (data / name).read_bytes() for name in outside} == outside
        assert (data / "studio.db").is_file()
    finally:
        restarted.close()


def add_done_render(store, project_id: int, scene_id: int, shot_id: int) -> tuple[int, str]:
    """A finished render as the render job leaves it: a take's clip and thumbnail, scene, latents, manifest."""
    render = store.renders.create(scene_id, "render", {"steps": 2, "shot_ids": [shot_id]}, seed=1)
    store.renders.transition(render.id, "running")
    folder = f"media/projects/{project_id}/renders/{render.id}"
    video = store.media.write_bytes(f"{folder}/shot_01.mp4", b"clip" * 100)
    thumbnail = store.media.write_bytes(f"{folder}/shot_01.png", b"png" * 100)
    take = store.takes.add(shot_id, render.id, video_path=video, thumbnail_path=thumbnail, caption="shot 1")
    store.takes.select(take.id)
    store.media.write_bytes(f"{folder}/manifest.json", b"{}")
    latents = store.media.write_bytes(f"{folder}/latents.safetensors", bytes(64))
    scene_video = store.media.write_bytes(f"{folder}/scene.mp4", b"scene" * 100)
    store.renders.transition(render.id, "done", latents_path=latents, scene_path=scene_video)
    return render.id, folder


def test_a_bundle_carries_no_stray_or_temporary_file_and_imports(tmp_path):
    store = build_storage(tmp_path / "source")
    project = store.projects.create("Harbour")
    scene = store.scenes.add(project.id, title="Pier")
    shot = store.shots.add(scene.id, action="Boats rock.")
    _, folder = add_done_render(store, project.id, scene.id, shot.id)
    cut = store.media.write_bytes(f"media/projects/{project.id}/scenes/{scene.id}/scene.mp4", b"cut" * 100)
    carried = {*referenced_paths(store), f"{folder}/manifest.json", cut}
    strays = [
        f"{folder}/.shot_02.mp4.abc123.tmp",
        f"{folder}/orphan.mp4",
        f"{folder}/.shot_02.mp4.abc123.tmp.mp4",
        f"media/projects/{project.id}/stray.mp4",
    ]
    for stray in strays:
        store.media.path(stray).write_bytes(b"left by a crash")

    bundle = export_bundle(store, project.id, tmp_path / "harbour.zip")

    with zipfile.ZipFile(bundle) as archive:
        assert set(archive.namelist()) == {"bundle.json", *carried}
    assert all(store.media.path(stray).is_file() for stray in strays)  # export leaves the folder as it was
    target = build_storage(tmp_path / "target")
    imported = import_bundle(target, bundle)
    files = files_under(target.media.path(f"media/projects/{imported.id}"))
    assert len(files) == len(carried) and b"left by a crash" not in files.values()
    (imported_scene,) = target.scenes.list_for_project(imported.id)
    (take,) = target.takes.list_for_shot(target.scenes.get(imported_scene.id).shots[0].id)
    assert target.media.path(take.video_path).read_bytes() == b"clip" * 100
    store.close()
    target.close()


def test_the_sweep_keeps_what_rows_name_and_the_studios_own_files_only(tmp_path):
    store = build_storage(tmp_path)
    media = store.media
    project = store.projects.create("Harbour")
    scene = store.scenes.add(project.id, title="Pier")
    shot = store.shots.add(scene.id, action="Boats rock.")
    done_id, done_folder = add_done_render(store, project.id, scene.id, shot.id)
    cut = media.write_bytes(f"media/projects/{project.id}/scenes/{scene.id}/scene.mp4", b"cut")
    # Killed after writing its scene files but before it was marked done: only the take's clip is named.
    killed = store.renders.create(scene.id, "render", {}, seed=2)
    store.renders.transition(killed.id, "running")
    killed_folder = f"media/projects/{project.id}/renders/{killed.id}"
    clip = media.write_bytes(f"{killed_folder}/shot_01.mp4", b"clip")
    store.takes.add(shot.id, killed.id, video_path=clip, caption="shot 1")
    for name in ("scene.mp4", "latents.safetensors", "manifest.json", "shot_02.tmp.png"):
        media.write_bytes(f"{killed_folder}/{name}", b"unnamed")
    store.renders.transition(killed.id, "interrupted", error="killed")
    # Still running (another start-up's render): its folder is left whole.
    running = store.renders.create(scene.id, "render", {}, seed=3)
    store.renders.transition(running.id, "running")
    running_file = media.write_bytes(f"media/projects/{project.id}/renders/{running.id}/.shot_01.mp4.x.tmp", b"")
    # A cut of a scene that is gone, a deleted project's folder, and things that are not the studio's.
    gone = scene.id + 100
    media.write_bytes(f"media/projects/{project.id}/scenes/{gone}/scene.mp4", b"old cut")
    media.write_bytes("media/projects/99/renders/3/shot_01.mp4", b"deleted project")
    foreign = ["media/projects/notes.txt", "media/projects/drafts/a.mp4", "studio.db"]
    for name in foreign[:2]:
        media.write_bytes(name, b"mine")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep.mp4").write_bytes(b"outside")
    media.path(f"media/projects/{project.id}").joinpath("linked").symlink_to(tmp_path / "outside")

    removed = store.sweep_media()

    assert removed == sorted(
        [
            f"media/projects/{project.id}/scenes/{gone}/scene.mp4",
            *(f"{killed_folder}/{name}" for name in ("latents.safetensors", "manifest.json", "scene.mp4")),
            f"{killed_folder}/shot_02.tmp.png",
            "media/projects/99/renders/3/shot_01.mp4",
        ]
    )
    kept = [*referenced_paths(store), f"{done_folder}/manifest.json", cut, running_file, *foreign]
    assert all(media.path(path).is_file() for path in kept)
    assert not media.path(f"media/projects/{project.id}/scenes/{gone}").exists()
    assert not media.path("media/projects/99").exists()
    assert (tmp_path / "outside" / "keep.mp4").read_bytes() == b"outside"
    assert media.path(f"media/projects/{project.id}").joinpath("linked").is_symlink()
    assert store.renders.get(done_id).status == "done" and store.sweep_media() == []
    store.close()


@pytest.mark.parametrize("linked", ["media", "media/projects"])
def test_a_linked_media_tree_is_not_swept(tmp_path, linked):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "projects" / "1").mkdir(parents=True)
    (elsewhere / "projects" / "1" / "orphan.mp4").write_bytes(b"not ours to delete")
    data = tmp_path / "data"
    (data / linked).parent.mkdir(parents=True, exist_ok=True)
    (data / linked).symlink_to(elsewhere if linked == "media" else elsewhere / "projects")
    store = build_storage(data)
    assert store.sweep_media() == []
    assert (elsewhere / "projects" / "1" / "orphan.mp4").is_file()
    store.close()
