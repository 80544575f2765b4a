"""Bundles: a project's rows and media through one .zip into another studio, and hostile zips refused.

No model is needed: rows and fake media files are made through the repositories and the
MediaStore, the way the render job makes them. Equality is checked on a canonical form of
each side (ids replaced by positions, id-bearing paths by those keys), read back through the
public repositories, not through the snapshot code under test.
"""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
import json
import re
import shutil
import stat
import struct
import zipfile
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage import (
    SNAPSHOT_VERSION,
    DatabaseError,
    StorageError,
    StorageValidationError,
    build_storage,
    restore_project,
    snapshot_project,
)
from storage.models import Base
from studio.bundle import BundleError, BundleLimits, export_bundle, import_bundle

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def ticking_clock(start: datetime):
    """Each call 1.000001 s after the previous: every timestamp distinct, microseconds included."""
    ticks = itertools.count()
    return lambda: start + timedelta(seconds=1.000001) * next(ticks)


def add_render(store, project_id: int, scene, shots, *, kind="render", seed=7, deleted_shot=None, pick=True):
    """A finished render as the studio's render job leaves it: files on disk, a take per shot, rows done."""
    shot_ids = [shot.id for shot in shots] + ([deleted_shot] if deleted_shot else [])
    render = store.renders.create(scene.id, kind, {"steps": 4, "cfg": 5.0, "shot_ids": shot_ids}, seed=seed)
    store.renders.transition(render.id, "running", engine={"model": "tiny", "versions": {"torch": "2"}})
    store.renders.set_progress(render.id, 0.5)
    folder = f"media/projects/{project_id}/renders/{render.id}"
    for index, shot in enumerate(shots, start=1):
        video = store.media.write_bytes(f"{folder}/shot_{index:02d}.mp4", f"video {render.id}/{index}".encode() * 50)
        thumbnail = store.media.write_bytes(f"{folder}/shot_{index:02d}.png", bytes(range(256)) * index)
        take = store.takes.add(shot.id, render.id, video_path=video, thumbnail_path=thumbnail, caption=f"take {index}")
        if pick:
            store.takes.select(take.id)
    store.media.write_bytes(f"{folder}/manifest.json", b'{"format": "holocine-render"}')
    latents = store.media.write_bytes(f"{folder}/latents.safetensors", bytes(4096))
    scene_video = store.media.write_bytes(f"{folder}/scene.mp4", b"scene" * 300)
    return store.renders.transition(
        render.id, "done", timings={"total_s": 12.5}, latents_path=latents, scene_path=scene_video
    )


def populate(store, name: str) -> int:
    """A project with every kind of row and status a real one has, plus its media files."""
    project = store.projects.create(name)
    mara = store.characters.add(project.id, "Mara", description="a pilot", notes="left-handed")
    ivo = store.characters.add(project.id, "Ivo")
    store.characters.add(project.id, "Nobody")
    hangar = store.scenes.add(
        project.id, title="Hangar", description="Dawn.", fps=24.0, width=640, height=368, negative_prompt="blur",
        seed=2**62 + 1,
    )  # fmt: skip
    runway = store.scenes.add(project.id, title="Runway")
    store.scenes.update(runway.id, version=runway.version, description="Noon.")
    doomed = store.shots.add(hangar.id, action="To be cut.")
    shots = [store.shots.add(hangar.id, action=f"Shot {i}", duration_s=1.5 + i, dialogue="Hi") for i in range(3)]
    shots[0] = store.shots.set_characters(shots[0].id, [mara.id], version=shots[0].version)
    shots[1] = store.shots.update(shots[1].id, version=shots[1].version, character_ids=[mara.id, ivo.id], notes="n")
    store.shots.delete(doomed.id)
    runway_shot = store.shots.add(runway.id, action="Take-off.")
    add_render(store, project.id, hangar, shots, deleted_shot=doomed.id)
    add_render(store, project.id, hangar, shots, kind="vary", seed=8, pick=False)
    failed = store.renders.create(hangar.id, "regenerate", {"shot": 1}, seed=9)
    store.renders.transition(failed.id, "running")
    store.renders.transition(failed.id, "failed", error="RuntimeError: out of memory")
    cancelled = store.renders.create(runway.id, "render", {}, seed=10)
    store.renders.transition(cancelled.id, "cancelled")
    interrupted = store.renders.create(runway.id, "extend", {"shot_ids": [runway_shot.id]}, seed=11)
    store.renders.transition(interrupted.id, "interrupted", error="the studio stopped")
    store.media.write_bytes(f"media/projects/{project.id}/scenes/{hangar.id}/scene.mp4", b"assembled" * 100)
    store.projects.rename(project.id, name, version=1)  # version 2
    return project.id


# --- canonical form: each side's rows and files with ids replaced by what they mean -------------


def canonical(store, project_id: int) -> tuple[dict, dict[str, bytes]]:
    """(rows, files) of the project, ids replaced by positions and ranks, so two databases compare."""
    characters = store.characters.list_for_project(project_id)
    tag = {c.id: c.tag for c in characters}
    scenes = [store.scenes.get(s.id) for s in store.scenes.list_for_project(project_id)]
    scene_key = {s.scene.id: s.scene.position for s in scenes}
    shot_key = {shot.id: (s.scene.position, shot.position) for s in scenes for shot in s.shots}
    renders = sorted((r for s in scenes for r in store.renders.list_for_scene(s.scene.id)), key=lambda r: r.created_at)
    render_key = {r.id: rank for rank, r in enumerate(renders)}
    prefix = f"media/projects/{project_id}/"

    def path(value: str | None) -> str | None:
        if value is None:
            return None
        assert value.startswith(prefix), value
        found = re.fullmatch(r"(renders|scenes)/(\d+)/(.*)", value.removeprefix(prefix))
        if found is None:
            return value.removeprefix(prefix)
        keys = render_key if found[1] == "renders" else scene_key
        return f"{found[1]}/<{keys[int(found[2])]}>/{found[3]}"

    def without(record, *names) -> dict:
        return {k: v for k, v in asdict(record).items() if k not in names}

    rows = {
        "project": without(store.projects.get(project_id), "id"),
        "characters": [without(c, "id", "project_id") for c in characters],
        "scenes": [without(s.scene, "id", "project_id") for s in scenes],
        "shots": [
            {**without(shot, "id", "scene_id", "character_ids"), "characters": [tag[c] for c in shot.character_ids]}
            for s in scenes
            for shot in s.shots
        ],
        "renders": [
            {
                **without(r, "id", "scene_id", "latents_path", "scene_path", "settings"),
                "scene": scene_key[r.scene_id],
                "settings": {
                    **r.settings,
                    **(
                        {"shot_ids": [shot_key.get(i) for i in r.settings["shot_ids"]]}
                        if "shot_ids" in r.settings
                        else {}
                    ),
                },
                "latents_path": path(r.latents_path),
                "scene_path": path(r.scene_path),
            }
            for r in renders
        ],
        "takes": [
            {
                **without(t, "id", "shot_id", "render_id", "video_path", "thumbnail_path"),
                "shot": shot_key[t.shot_id],
                "render": render_key[t.render_id],
                "video_path": path(t.video_path),
                "thumbnail_path": path(t.thumbnail_path),
            }
            for s in scenes
            for shot in s.shots
            for t in sorted(store.takes.list_for_shot(shot.id), key=lambda t: t.created_at)
        ],
    }
    folder = store.media.path(prefix)
    files = {
        path(p.relative_to(store.media.data_dir).as_posix()): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    return rows, files


# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
def source(tmp_path):
    store = build_storage(tmp_path / "source", clock=ticking_clock(T0))
    populate(store, "Warm-up")  # so the exported project's ids are not 1, 2, 3
    yield store
    store.close()


@pytest.fixture(scope="module")
def target_template(tmp_path_factory) -> Path:
    """Another studio's data directory, with projects, rows and media of its own; built once, copied per test."""
    folder = tmp_path_factory.mktemp("target") / "data"
    store = build_storage(folder, clock=ticking_clock(T0 + timedelta(days=30)))
    populate(store, "Theirs")
    populate(store, "Theirs too")
    store.close()  # the last connection checkpoints the WAL: the folder is now a complete copy
    return folder


@pytest.fixture
def target(target_template, tmp_path):
    store = build_storage(shutil.copytree(target_template, tmp_path / "target"))
    yield store
    store.close()


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("good")
    store = build_storage(folder / "data", clock=ticking_clock(T0))
    populate(store, "Warm-up")
    bundle = export_bundle(store, populate(store, "Harbour"), folder / "harbour.zip")
    store.close()
    return bundle


def state(store) -> tuple[dict[str, int], dict[str, int | None]]:
    """Row count of every table, and every path under the data directory (files with their size)."""
    with store.database.transaction() as session:
        counts = {t.name: session.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}
    root = store.media.data_dir
    paths = {
        p.relative_to(root).as_posix(): p.stat().st_size if p.is_file() else None
        for p in root.rglob("*")
        if not p.name.startswith("studio.db")
    }
    return counts, paths


def read_members(bundle: Path) -> tuple[dict[str, bytes], dict]:
    """The good bundle's media members by name, and its bundle.json, to build variants from."""
    with zipfile.ZipFile(bundle) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return members, json.loads(members.pop("bundle.json"))


def write_zip(path: Path, entries) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return path


def listing(name: str, data: bytes) -> dict:
    return {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# --- round trip -----------------------------------------------------------------------------------


def test_export_then_import_gives_equal_rows_and_bytes(source, target, tmp_path):
    project_id = populate(source, "Harbour")
    bundle = export_bundle(source, project_id, tmp_path / "out" / "harbour.zip")
    assert [p.name for p in bundle.parent.iterdir()] == ["harbour.zip"]  # no temporary file left beside it
    members, manifest = read_members(bundle)
    assert (manifest["format"], manifest["version"]) == ("holocine-studio-bundle", 1)
    assert [f["path"] for f in manifest["files"]] == sorted(members)
    assert all(name.startswith(f"media/projects/{project_id}/") for name in members)

    imported = import_bundle(target, bundle)

    expected_rows, expected_files = canonical(source, project_id)
    rows, files = canonical(target, imported.id)
    assert rows == expected_rows
    assert files == expected_files
    assert imported.id != project_id and imported.updated_at == source.projects.get(project_id).updated_at
    assert {r["status"] for r in rows["renders"]} == {"done", "failed", "cancelled", "interrupted"}
    assert rows["renders"][0]["settings"]["shot_ids"][-1] is None  # the shot deleted before the render was exported
    assert len(files) == 2 * 9 + 1  # two renders of 3 shots (mp4, png) + 3 files each, and the assembled scene
    assert not [p for p in target.media.data_dir.iterdir() if p.name.startswith(".bundle-import-")]


def test_the_snapshot_is_plain_json_and_restores_equal_rows(source, target):
    project_id = populate(source, "Harbour")
    snapshot = json.loads(json.dumps(snapshot_project(source, project_id), allow_nan=False))
    created = source.projects.get(project_id).created_at
    assert snapshot["snapshot_version"] == SNAPSHOT_VERSION == 2
    assert snapshot["project"]["created_at"] == created.isoformat()

    restored = restore_project(target, snapshot)

    assert canonical(target, restored.id)[0] == canonical(source, project_id)[0]


def test_importing_twice_gives_two_independent_projects(source, target, tmp_path):
    project_id = populate(source, "Harbour")
    bundle = export_bundle(source, project_id, tmp_path / "harbour.zip")
    first = import_bundle(target, bundle)
    second = import_bundle(target, bundle)
    assert first.id != second.id

    target.projects.delete(first.id)

    assert canonical(target, second.id) == canonical(source, project_id)


def test_export_refuses_a_render_in_progress_and_leaves_no_file(source, tmp_path):
    project_id = populate(source, "Harbour")
    scene = source.scenes.list_for_project(project_id)[0]
    running = source.renders.create(scene.id, "render", {}, seed=1)
    source.renders.transition(running.id, "running")

    with pytest.raises(StorageValidationError, match=r"renders\[5\]\.status: must be a finished status") as caught:
        export_bundle(source, project_id, tmp_path / "harbour.zip")
    assert "wait for it to end or cancel it" in str(caught.value)
    assert list(tmp_path.glob("*.zip*")) == [] and list(tmp_path.glob(".harbour*")) == []


def test_export_refuses_a_row_whose_file_is_missing(source, tmp_path):
    project_id = populate(source, "Harbour")
    scene = source.scenes.get(source.scenes.list_for_project(project_id)[0].id)
    source.media.path(source.takes.list_for_shot(scene.shots[0].id)[0].video_path).unlink()

    with pytest.raises(BundleError, match=r"takes\[\d+\]\.video_path: names media/projects/\d+/renders/\d+/shot_01"):
        export_bundle(source, project_id, tmp_path / "harbour.zip")
    assert list(tmp_path.iterdir()) == [tmp_path / "source"]


# --- hostile bundles ------------------------------------------------------------------------------


def media_name(manifest: dict, index: int = 0) -> str:
    return manifest["files"][index]["path"]


def project_folder(manifest: dict) -> str:
    return f"media/projects/{manifest['project']['project']['ref']}"


def plus(members, manifest, *extra):
    return [*members.items(), *extra, ("bundle.json", json.dumps(manifest))]


def changed(edit):
    """A case whose bundle.json is the good one after `edit(manifest)`."""

    def build(members, manifest):
        edit(manifest)
        return plus(members, manifest)

    return build


def listed_extra(name: str, data: bytes, compression=zipfile.ZIP_STORED):
    """A case with one more member, listed in bundle.json with its true size and hash."""

    def build(members, manifest):
        manifest["files"].append(listing(name.format(folder=project_folder(manifest)), data))
        info = zipfile.ZipInfo(name.format(folder=project_folder(manifest)))
        info.compress_type = compression
        return plus(members, manifest, (info, data))

    return build


def with_member(info_or_name, data=b"x"):
    return lambda members, manifest: plus(members, manifest, (info_or_name, data))


def mode_member(name: str, mode: int, data: bytes = b"/etc/passwd"):
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return with_member(info, data)


def without_member(pick):
    """A case where the member `pick(manifest)` names is left out of the zip (still listed)."""

    def build(members, manifest):
        name = pick(manifest)
        return plus({k: v for k, v in members.items() if k != name}, manifest)

    return build


def unlisted_take_file(members, manifest):
    """The file of a take's video, gone from the zip and from the list: the row points at nothing."""
    name = f"{project_folder(manifest)}/{manifest['project']['takes'][0]['video_path']}"
    manifest["files"] = [f for f in manifest["files"] if f["path"] != name]
    return plus({k: v for k, v in members.items() if k != name}, manifest)


def tampered(members, manifest):
    """A take's video altered inside the zip after it was written: its CRC no longer matches."""
    original = members[f"{project_folder(manifest)}/{manifest['project']['takes'][0]['video_path']}"]
    return write_zip_bytes(plus(members, manifest)).replace(original, bytes(b ^ 0xFF for b in original), 1)


def duplicated(members, manifest):
    name = media_name(manifest)
    return plus(members, manifest, (name, members[name]))


def case_twin(members, manifest):
    name = media_name(manifest)
    return plus(members, manifest, (name.upper(), members[name]))


def set_key(*path_and_value):
    *path, value = path_and_value

    def edit(manifest):
        node = manifest
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return changed(edit)


def central_flag(members, manifest):
    """The good zip with its first member marked encrypted in the central directory."""
    data = bytearray(write_zip_bytes(plus(members, manifest)))
    at = data.index(b"PK\x01\x02")
    data[at + 8 : at + 10] = struct.pack("<H", struct.unpack("<H", data[at + 8 : at + 10])[0] | 1)
    return bytes(data)


def write_zip_bytes(entries) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


HOSTILE = [
    pytest.param(
        lambda m, j: b"PK\x03\x04 this is not really a zip",
        None,
        r"harbour\.zip: is not a readable zip",
        id="not-a-zip",
    ),
    pytest.param(lambda m, j: list(m.items()), None, r"^bundle\.json: is missing", id="no-bundle-json"),
    pytest.param(
        lambda m, j: [*m.items(), ("bundle.json", b"{oops")], None, r"^bundle\.json: is not valid JSON", id="bad-json"
    ),
    pytest.param(
        lambda m, j: [*m.items(), ("bundle.json", b"[1, 2]")],
        None,
        r"must hold a JSON object, got list",
        id="json-list",
    ),
    pytest.param(set_key("format", "zip-of-cats"), None, r"^bundle\.json format: is 'zip-of-cats'", id="format"),
    pytest.param(
        set_key("version", 2), None, r"^bundle\.json version: is 2, but this studio reads version 1", id="version"
    ),
    pytest.param(
        changed(lambda j: j.pop("files")), None, r"must have exactly the keys files, format", id="no-files-key"
    ),
    pytest.param(
        set_key("project", "snapshot_version", 9), None, r"project\.snapshot_version: is 9", id="snapshot-version"
    ),
    pytest.param(
        changed(lambda j: j["project"]["renders"][0].update(status="running")),
        None,
        r"^bundle\.json project\.renders\[0\]\.status: must be a finished status",
        id="render-running",
    ),
    pytest.param(
        set_key("project", "project", "created_at", "2026-03-01T12:00:00"),
        None,
        r"project\.project\.created_at: must be an ISO 8601 time with its UTC offset",
        id="naive-time",
    ),
    pytest.param(
        changed(lambda j: j["project"]["takes"][0].update(shot=999)),
        None,
        r"project\.takes\[0\]\.shot: names shots ref 999",
        id="unknown-ref",
    ),
    pytest.param(
        changed(lambda j: j["project"]["takes"][0].update(video_path="../../../etc/passwd")),
        None,
        r"project\.takes\[0\]\.video_path: must stay inside",
        id="row-path-escapes",
    ),
    pytest.param(with_member("../evil.txt"), None, r"^bundle member '\.\./evil\.txt': must stay inside", id="dotdot"),
    pytest.param(
        with_member("media/projects/1/../../../evil.txt"),
        None,
        r"'media/projects/1/\.\./\.\./\.\./evil\.txt': must stay",
        id="deep-dotdot",
    ),
    pytest.param(with_member("/tmp/evil.txt"), None, r"'/tmp/evil\.txt': must be relative .* absolute", id="absolute"),
    pytest.param(with_member("C:/evil.txt"), None, r"'C:/evil\.txt': must be relative .* absolute", id="drive"),
    pytest.param(with_member("C:evil.txt"), None, r"'C:evil\.txt': must be relative .* absolute", id="drive-relative"),
    pytest.param(with_member("media\\evil.txt"), None, r"'media\\\\evil\.txt': must stay inside", id="backslash"),
    pytest.param(
        with_member("media/./evil.txt"), None, r"'media/\./evil\.txt': is not a plain relative path", id="dot-part"
    ),
    pytest.param(with_member("media/folder/", b""), None, r"'media/folder/': is a folder entry", id="folder-entry"),
    pytest.param(mode_member("media/link", 0o120777), None, r"'media/link': is a symbolic link", id="symlink"),
    pytest.param(
        mode_member("media/dev", stat.S_IFCHR | 0o644), None, r"'media/dev': is not a plain file", id="device"
    ),
    pytest.param(central_flag, None, r"is encrypted", id="encrypted"),
    pytest.param(duplicated, None, r"appears twice; one would overwrite the other", id="duplicate"),
    pytest.param(case_twin, None, r"appears twice, in different letter case", id="case-duplicate"),
    pytest.param(
        lambda m, j: plus(m, j),
        BundleLimits(max_members=3),
        r"^bundle: has \d+ members, more than the limit of 3",
        id="members",
    ),
    pytest.param(
        lambda m, j: plus(m, j),
        BundleLimits(max_member_bytes=1000),
        r"unpacks to \d+ bytes, more than the limit of 1000",
        id="member-size",
    ),
    pytest.param(
        lambda m, j: plus(m, j),
        BundleLimits(max_total_bytes=5000),
        r"^bundle: unpacks to \d+ bytes, more than the limit of 5000",
        id="total-size",
    ),
    pytest.param(
        lambda m, j: plus(m, j),
        BundleLimits(max_manifest_bytes=100),
        r"^bundle\.json: is \d+ bytes, more than the limit of 100",
        id="manifest-size",
    ),
    pytest.param(
        listed_extra("{folder}/zeros.bin", bytes(1_000_000), zipfile.ZIP_DEFLATED),
        None,
        r"/zeros\.bin': unpacks \d+ bytes to 1000000, a ratio beyond the limit of 200",
        id="ratio",
    ),
    pytest.param(
        without_member(media_name), None, r"is listed in bundle\.json but not in the zip", id="listed-missing"
    ),
    pytest.param(
        with_member("media/projects/2/extra.txt"),
        None,
        r"'media/projects/2/extra\.txt': is in the zip but not listed",
        id="unlisted",
    ),
    pytest.param(
        changed(lambda j: j["files"][0].update(size=j["files"][0]["size"] + 1)),
        None,
        r"unpacks to (\d+) bytes, bundle\.json lists \d+",
        id="size-mismatch",
    ),
    pytest.param(
        changed(lambda j: j["files"][0].update(sha256="0" * 64)),
        None,
        r"does not match its sha256 in bundle\.json",
        id="sha256",
    ),
    pytest.param(tampered, None, r"cannot be read \(Bad CRC-32", id="tampered-bytes"),
    pytest.param(
        changed(lambda j: j["files"].append(dict(j["files"][0]))),
        None,
        r"files\[\d+\]\.path: '.*' is listed twice",
        id="listed-twice",
    ),
    pytest.param(
        changed(lambda j: j["files"][0].update(path="media/projects/999/x.mp4")),
        None,
        r"files\[0\]\.path: 'media/projects/999/x\.mp4' is not inside the project's folder",
        id="listed-elsewhere",
    ),
    pytest.param(
        listed_extra("{folder}/renders/999/x.bin", b"x"),
        None,
        r"files\[\d+\]\.path: 'renders/999/x\.bin' is under renders/ but not in the folder of one of this project's",
        id="unknown-render-folder",
    ),
    pytest.param(
        unlisted_take_file,
        None,
        r"project\.takes\[0\]\.video_path: names '.*', which is not among",
        id="row-file-missing",
    ),
]


@pytest.mark.parametrize(("build", "limits", "message"), HOSTILE)
def test_a_hostile_bundle_is_refused_and_nothing_is_written(good_bundle, target, tmp_path, build, limits, message):
    members, manifest = read_members(good_bundle)
    built = build(members, copy.deepcopy(manifest))
    bundle = tmp_path / "harbour.zip"
    if isinstance(built, bytes):
        bundle.write_bytes(built)
    else:
        with pytest.warns(UserWarning, match="Duplicate name") if "twice;" in message else nullcontext():
            write_zip(bundle, built)
    before = state(target)

    with pytest.raises(BundleError, match=message):
        import_bundle(target, bundle, limits or BundleLimits())

    assert state(target) == before


def test_a_missing_bundle_file_is_refused(target, tmp_path):
    before = state(target)
    with pytest.raises(BundleError, match=r"nowhere\.zip: is not a file"):
        import_bundle(target, tmp_path / "nowhere.zip")
    assert state(target) == before


def test_bytes_beyond_the_declared_size_are_refused_while_reading(good_bundle, target, monkeypatch):
    """zipfile itself stops at the declared size; the count is the studio's own guard, tested with a lying reader."""
    real_open = zipfile.ZipFile.open

    def open_longer(self, name, mode="r", *args, **kwargs):
        member = real_open(self, name, mode, *args, **kwargs)
        return member if getattr(name, "filename", name) == "bundle.json" else io.BytesIO(member.read() + b"more")

    monkeypatch.setattr(zipfile.ZipFile, "open", open_longer)
    before = state(target)
    with pytest.raises(BundleError, match=r"holds more than the \d+ bytes it declares"):
        import_bundle(target, good_bundle)
    assert state(target) == before


def test_a_failed_commit_removes_the_placed_files(good_bundle, target, monkeypatch):
    real_transaction = target.database.transaction
    placed: list[Path] = []

    @contextmanager
    def failing_commit():
        with real_transaction() as session:
            yield session
            placed.extend(p for p in target.media.data_dir.rglob("*.mp4"))
            raise DatabaseError("the database could not complete the change (disk full); nothing was saved")

    before = state(target)
    monkeypatch.setattr(target.database, "transaction", failing_commit)
    with pytest.raises(DatabaseError, match="disk full"):
        import_bundle(target, good_bundle)
    monkeypatch.undo()

    assert len(placed) > len([p for p in before[1] if p.endswith(".mp4")])  # the files were in place at commit
    assert state(target) == before


def test_a_leftover_folder_where_the_new_project_goes_is_refused(good_bundle, target):
    next_id = max(p.id for p in target.projects.list_all()) + 1
    leftover = target.media.write_bytes(f"media/projects/{next_id}/old.mp4", b"someone's")
    before = state(target)

    with pytest.raises(StorageError, match=rf"media/projects/{next_id} already exists .* move that folder out"):
        import_bundle(target, good_bundle)

    assert state(target) == before and target.media.path(leftover).read_bytes() == b"someone's"
