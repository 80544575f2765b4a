"""Pictures in, the studio's path: keyframes and reference images through `StudioAPI` (what every
`gr.api` endpoint and the page call), into storage, renders, bundles, the PDF and the sweep.

Bad uploads are refused naming the field and change nothing; good ones are stored as RGB PNGs
named by their sha256, shown on the board, named by the render jobs that use them (a retry
renders with the same file after the director replaced it), carried byte for byte by bundles
(a hostile bundle's picture is checked like an upload), printed in the storyboard PDF and kept
by the start-up sweep. "Use this frame" stores exactly the frame the take's MP4 decodes to.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from engine.errors import SceneValidationError
from engine.video import read_mp4
from storage import StaleEditError
from studio.bundle import BundleError, export_bundle, import_bundle
from studio.jobs import JobSpec
from studio.renders import RenderRequest
from studio.scene_export import export_scene
from studio.services import StudioSettings, build_services
from studio.ui.api import StudioAPI


def png(array: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format=fmt) if mode else Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def noise(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def bomb_png() -> bytes:
    """A valid 1x1 PNG whose header claims 100000x100000 pixels (PIL refuses before decoding)."""
    data = bytearray(png(noise(1, 1)))
    ihdr = struct.pack(">II", 100_000, 100_000) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def transparent_png() -> bytes:
    rgba = np.dstack([noise(), np.full((48, 64), 100, dtype=np.uint8)])
    return png(rgba, "RGBA")


def cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(noise()).convert("CMYK").save(buffer, format="JPEG")
    return buffer.getvalue()


def grey16_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    services = build_services(StudioSettings(data_dir=tmp_path_factory.mktemp("pictures-data"), device="cpu"))
    yield services, StudioAPI(services)
    services.close()


def storyboard(services, api: StudioAPI, name: str = "Harbour") -> tuple[int, int, list[int], int]:
    """A project with one scene of two short shots, Ole in the first; (project, scene, shots, Ole)."""
    made = api.create_project(name)
    project_id, scene_id = made["project_id"], made["scene_id"]
    version = services.storage.scenes.get(scene_id).scene.version
    api.save_scene(scene_id, version, {"description": "A grey harbour", "fps": 8, "width": 64, "height": 48})
    ole = api.add_character(project_id, "Ole", "an old fisherman")
    shots = [api.add_shot(scene_id, action) for action in ("Ole ties a rope.", "Boats rock on the water.")]
    for shot_id in shots:
        api.save_shot(shot_id, services.storage.shots.get(shot_id).version, {"duration_s": 1.0})
    api.save_shot(shots[0], services.storage.shots.get(shots[0]).version, {"character_ids": [ole]})
    return project_id, scene_id, shots, ole


def version_of(services, shot_id: int) -> int:
    return services.storage.shots.get(shot_id).version


def render(services, scene_id: int) -> int:
    updates = list(services.renders.run(RenderRequest(scene_id, steps=2)))
    assert updates[-1].render.status == "done", updates[-1].message
    return updates[-1].render.id


@pytest.mark.parametrize(
    "data, expected",
    [
        pytest.param(b"this is not an image", r"is not an image \(PNG, JPEG", id="not-an-image"),
        pytest.param(b"", "is an empty file", id="zero-size"),
        pytest.param(bomb_png(), "over the pixel limit|over the .*-pixel limit", id="bomb"),
        pytest.param(transparent_png(), "transparent pixels", id="alpha"),
    ],
)
def test_a_bad_keyframe_is_refused_naming_the_field_and_the_shot_stays(studio, data, expected):
    services, api = studio
    _, scene_id, shots, _ = storyboard(services, api)
    good = api.upload_keyframe(shots[0], version_of(services, shots[0]), b64(png(noise())), "good.png")
    before = services.storage.shots.get(shots[0])
    with pytest.raises(SceneValidationError, match=expected) as refused:
        api.upload_keyframe(shots[0], good, b64(data), "bad.png")
    assert refused.value.field == "keyframe" and str(refused.value).startswith("keyframe: ")
    assert services.storage.shots.get(shots[0]) == before  # same keyframe, same version


def test_text_that_is_not_base64_and_a_bad_reference_name_their_fields(studio):
    services, api = studio
    _, _, shots, ole = storyboard(services, api)
    with pytest.raises(SceneValidationError, match="^keyframe: is not base64"):
        api.upload_keyframe(shots[0], version_of(services, shots[0]), "@@not base64@@")
    with pytest.raises(SceneValidationError, match="^reference: .*not an image"):
        api.upload_reference(ole, services.storage.characters.get(ole).version, b64(b"GIF? no"), "ole.txt")
    assert services.storage.characters.get(ole).reference_path is None


@pytest.mark.parametrize("data", [cmyk_jpeg(), grey16_png()], ids=["cmyk", "16-bit"])
def test_cmyk_and_16_bit_pictures_are_converted_to_8_bit_rgb_pngs(studio, data):
    services, api = studio
    _, _, shots, _ = storyboard(services, api)
    api.upload_keyframe(shots[1], version_of(services, shots[1]), b64(data), "scan")
    stored = services.storage.media.path(services.storage.shots.get(shots[1]).keyframe_path)
    with Image.open(stored) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (64, 48))


def test_a_keyframe_is_stored_by_its_hash_shown_on_the_board_and_guarded_by_the_version(studio):
    services, api = studio
    project_id, scene_id, shots, _ = storyboard(services, api)
    pixels = noise(seed=4)
    version = api.upload_keyframe(shots[1], version_of(services, shots[1]), "data:image/png;base64," + b64(png(pixels)))
    path = services.storage.shots.get(shots[1]).keyframe_path
    stored = services.storage.media.path(path).read_bytes()
    assert path == f"media/projects/{project_id}/pictures/{hashlib.sha256(stored).hexdigest()}.png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored))), pixels)
    cards = api.board(scene_id)["shots"]
    assert cards[1]["shows_keyframe"] and cards[1]["picture"] == cards[1]["keyframe"]
    assert str(services.storage.media.path(path)) in cards[1]["picture"] and cards[1]["version"] == version
    assert cards[0]["keyframe"] is None and cards[0]["picture"] is None
    with pytest.raises(StaleEditError):  # a second tab that never saw this keyframe
        api.upload_keyframe(shots[1], version - 1, b64(png(noise(seed=5))))
    assert services.storage.shots.get(shots[1]).keyframe_path == path
    assert api.clear_keyframe(shots[1], version) == version + 1
    assert services.storage.shots.get(shots[1]).keyframe_path is None
    assert services.storage.media.path(path).is_file()  # a job may still name it


def test_references_of_characters_in_the_scene_count_against_the_tokens(studio):
    services, api = studio
    project_id, scene_id, _, ole = storyboard(services, api)
    absent = api.add_character(project_id, "Mara", "a pilot, not in this scene")
    before = api.compiled(scene_id)
    for character in (ole, absent):
        api.upload_reference(character, services.storage.characters.get(character).version, b64(png(noise())))
    after = api.compiled(scene_id)
    assert after["reference_captions"] == ["[character1] is Ole: an old fisherman."]  # Mara is in no shot
    assert after["tokens"] > before["tokens"]
    assert api.board(scene_id)["timeline"]["tokens"].startswith(f"{after['tokens']} /")
    compiled = services.renders.compile(services.storage.scenes.get(scene_id), pictures=True)
    assert compiled.model_prompt == compiled.scene.model_prompt
    assert [(r.tag, r.caption) for r in compiled.scene.references] == [("[character1]", after["reference_captions"][0])]


def test_a_render_names_its_pictures_and_a_retry_uses_them_after_the_keyframe_is_replaced(studio):
    services, api = studio
    project_id, scene_id, shots, ole = storyboard(services, api)
    api.upload_keyframe(shots[1], version_of(services, shots[1]), b64(png(noise(seed=1))))
    api.upload_reference(ole, services.storage.characters.get(ole).version, b64(png(noise(seed=2))))
    first = services.storage.shots.get(shots[1]).keyframe_path
    job = services.renders.enqueue(RenderRequest(scene_id, steps=2))[0]
    spec = JobSpec.of(job)
    prefix = f"media/projects/{project_id}/"
    reference = services.storage.characters.get(ole).reference_path
    assert spec.pictures.keyframes == (None, first.removeprefix(prefix))
    assert [(r.image, r.tag) for r in spec.pictures.references] == [(reference.removeprefix(prefix), "[character1]")]
    assert spec.scene.shots[1].keyframe is None and not spec.scene.references  # the stored scene names, never holds
    services.renders.cancel(job.id)  # cancelled before it started
    api.upload_keyframe(shots[1], version_of(services, shots[1]), b64(png(noise(seed=3))))  # replaced
    assert services.storage.shots.get(shots[1]).keyframe_path != first
    services.storage.sweep_media()  # a restart in between: the old picture stays
    retry = services.renders.retry(job.id)
    assert JobSpec.of(retry).pictures == spec.pictures
    read = services.renders.picture_reader(project_id)
    scene = JobSpec.of(retry).pictures.attach(JobSpec.of(retry).scene, read)
    assert scene.shots[1].keyframe.sha256 == Path(first).stem  # the very file the job was made with
    updates = list(services.renders.execute(services.storage.renders.claim(retry.id)))
    assert updates[-1].render.status == "done"


def test_a_missing_picture_file_is_named_and_the_board_still_opens(studio):
    services, api = studio
    _, scene_id, shots, _ = storyboard(services, api)
    api.upload_keyframe(shots[0], version_of(services, shots[0]), b64(png(noise(seed=9))))
    services.storage.media.path(services.storage.shots.get(shots[0]).keyframe_path).unlink()
    assert api.board(scene_id)["shots"][0]["keyframe"] is None
    with pytest.raises(SceneValidationError, match=r"^shots\[0\]\.keyframe: .* does not exist"):
        api.render(scene_id, steps=2)
    assert services.storage.renders.list_for_scene(scene_id) == []  # refused before any row


def test_use_this_frame_stores_exactly_the_decoded_frame(studio):
    services, api = studio
    _, scene_id, shots, _ = storyboard(services, api)
    render(services, scene_id)
    take = services.storage.takes.list_for_shot(shots[0])[0]
    frames = read_mp4(services.storage.media.path(take.video_path))[0]
    api.frame_as_keyframe(take.id, 3, shots[1], version_of(services, shots[1]))  # shot 2 opens on shot 1's frame 3
    stored = services.storage.media.path(services.storage.shots.get(shots[1]).keyframe_path)
    assert np.array_equal(np.asarray(Image.open(stored)), frames[3])
    with pytest.raises(SceneValidationError, match=r"^frame: must be a frame of take"):
        api.frame_as_keyframe(take.id, len(frames), shots[1], version_of(services, shots[1]))
    board = api.board(scene_id)["shots"]
    assert board[1]["keyframe"] and not board[1]["shows_keyframe"]  # a take's still is the picture now
    assert all("take_id" in m for m in api_cut_markers(services, scene_id))


def api_cut_markers(services, scene_id: int) -> list[dict]:
    from studio.ui import views

    return views.cut_view(services.storage, scene_id, services.renders.assemble_scene(scene_id), None).as_value()[
        "markers"
    ]


def test_bundles_carry_pictures_byte_for_byte_and_the_pdf_prints_them(studio, tmp_path):
    services, api = studio
    project_id, scene_id, shots, ole = storyboard(services, api)
    api.upload_keyframe(shots[0], version_of(services, shots[0]), b64(png(noise(seed=6))))
    api.upload_reference(ole, services.storage.characters.get(ole).version, b64(png(noise(seed=7))))
    render(services, scene_id)
    api.upload_keyframe(shots[0], version_of(services, shots[0]), b64(png(noise(seed=8))))  # the render's is older
    pdf = export_scene(services.storage, scene_id, "pdf", tmp_path / "storyboard.pdf")[0]
    images = [len(page.images) for page in PdfReader(pdf).pages]
    assert images[0] == 1 and sum(images[1:]) == 3  # Ole's reference; shot 1: keyframe + still; shot 2: still
    bundle = export_bundle(services.storage, project_id, tmp_path / "project.zip")
    other = build_services(StudioSettings(data_dir=tmp_path / "other", device="cpu"))
    try:
        imported = import_bundle(other.storage, bundle)
        source = {
            Path(p).name: services.storage.media.path(p).read_bytes()
            for p in (
                services.storage.shots.get(shots[0]).keyframe_path,
                services.storage.characters.get(ole).reference_path,
            )
        }
        scene = other.storage.scenes.get(other.storage.scenes.list_for_project(imported.id)[0].id)
        cast = other.storage.characters.list_for_project(imported.id)
        for path in (scene.shots[0].keyframe_path, cast[0].reference_path):
            assert path.startswith(f"media/projects/{imported.id}/pictures/")
            assert other.storage.media.path(path).read_bytes() == source[Path(path).name]
        old_render = other.storage.renders.list_for_scene(scene.scene.id)[0]
        for name in JobSpec.of(old_render).pictures.names:  # the render's own pictures travelled too
            data = (other.storage.media.data_dir / f"media/projects/{imported.id}" / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == Path(name).stem
    finally:
        other.close()


def _hostile(bundle: Path, out: Path, name: str, data: bytes | None, rename_to: str | None = None) -> Path:
    """The bundle with one picture member's bytes (and listing) replaced, or a row's path renamed."""
    with zipfile.ZipFile(bundle) as source:
        manifest = json.loads(source.read("bundle.json"))
        members = {info.filename: source.read(info) for info in source.infolist() if info.filename != "bundle.json"}
    if data is not None:
        members[name] = data
        for entry in manifest["files"]:
            if entry["path"] == name:
                entry["size"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    if rename_to is not None:
        manifest["project"]["shots"][0]["keyframe_path"] = rename_to
    with zipfile.ZipFile(out, "w") as target:
        target.writestr("bundle.json", json.dumps(manifest))
        for member, content in members.items():
            target.writestr(member, content)
    return out


@pytest.mark.parametrize(
    "case, expected",
    [
        ("not-an-image", r"bundle member .*pictures/.*is named for other bytes"),
        ("bomb-named-by-its-hash", r"project\.shots\[0\]\.keyframe_path: .*pixel limit"),
        ("escaping-path", r"project\.shots\[0\]\.keyframe_path: must be a picture of the project"),
    ],
)
def test_a_hostile_bundles_picture_is_refused_naming_it_and_nothing_is_written(studio, tmp_path, case, expected):
    services, api = studio
    project_id, _, shots, _ = storyboard(services, api)
    api.upload_keyframe(shots[0], version_of(services, shots[0]), b64(png(noise(seed=10))))
    bundle = export_bundle(services.storage, project_id, tmp_path / "good.zip")
    keyframe = services.storage.shots.get(shots[0]).keyframe_path
    if case == "not-an-image":
        hostile = _hostile(bundle, tmp_path / "bad.zip", keyframe, b"#!/bin/sh\necho hi\n")
    elif case == "bomb-named-by-its-hash":  # named by its own hash, so only the picture check stops it
        data = bomb_png()
        renamed = f"pictures/{hashlib.sha256(data).hexdigest()}.png"
        hostile = _hostile(bundle, tmp_path / "bad.zip", keyframe, data, rename_to=renamed)
        with zipfile.ZipFile(hostile) as z:
            manifest = json.loads(z.read("bundle.json"))
            members = {i.filename: z.read(i) for i in z.infolist() if i.filename != "bundle.json"}
        new_name = f"media/projects/{project_id}/{renamed}"
        members[new_name] = members.pop(keyframe)
        for entry in manifest["files"]:
            if entry["path"] == keyframe:
                entry["path"] = new_name
        with zipfile.ZipFile(hostile, "w") as z:
            z.writestr("bundle.json", json.dumps(manifest))
            for member, content in members.items():
                z.writestr(member, content)
    else:
        hostile = _hostile(bundle, tmp_path / "bad.zip", keyframe, None, rename_to="../../../etc/passwd")
    other_dir = tmp_path / "other"
    other = build_services(StudioSettings(data_dir=other_dir, device="cpu"))
    try:
        with pytest.raises(BundleError, match=expected):
            import_bundle(other.storage, hostile)
        assert other.storage.projects.list_all() == []
        assert not (other_dir / "media" / "projects").exists() or not any((other_dir / "media/projects").iterdir())
    finally:
        other.close()


def test_the_sweep_keeps_pictures_and_duplicate_and_delete_handle_them(studio):
    services, api = studio
    project_id, _, shots, ole = storyboard(services, api)
    api.upload_keyframe(shots[0], version_of(services, shots[0]), b64(png(noise(seed=11))))
    api.upload_reference(ole, services.storage.characters.get(ole).version, b64(png(noise(seed=12))))
    keyframe = services.storage.shots.get(shots[0]).keyframe_path
    leftover = services.storage.media.path(f"media/projects/{project_id}/pictures/.half.png.tmp")
    leftover.write_bytes(b"half")
    removed = services.storage.sweep_media()
    assert leftover.relative_to(services.storage.media.data_dir).as_posix() in removed
    assert services.storage.media.path(keyframe).is_file()
    copy_id = api.duplicate_project(project_id)
    copy_scene = services.storage.scenes.list_for_project(copy_id)[0]
    copied = services.storage.scenes.get(copy_scene.id).shots[0].keyframe_path
    assert copied == keyframe.replace(f"projects/{project_id}/", f"projects/{copy_id}/")
    api.delete_project(project_id)
    assert not services.storage.media.path(keyframe).exists()
    assert services.storage.media.path(copied).is_file()  # the copy keeps its own
    assert services.storage.characters.list_for_project(copy_id)[0].reference_path.startswith(
        f"media/projects/{copy_id}/"
    )
