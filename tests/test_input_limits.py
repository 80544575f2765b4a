"""Numbers and text a director can set are bounded where they enter, and every view survives a row that is not.

Each door is tried: storage (what the UI handlers and the API call), the launched app through
gradio_client, the engine's CLI, and a bundle. A refusal names the field and changes nothing;
a request refused before it starts leaves no render row.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from sqlalchemy import text

from engine import HoloCineError, limits
from engine.weights import REPO_ROOT
from storage import StorageError, StorageValidationError
from studio.bundle import export_bundle, import_bundle
from studio.renders import EditRequest, RenderRequest
from studio.services import StudioSettings, build_services
from studio.ui import StudioUI, build_app


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    built = build_services(StudioSettings(data_dir=tmp_path_factory.mktemp("limits-data"), device="cpu"))
    yield built
    built.close()


@pytest.fixture
def scene(services):
    storage = services.storage
    project = storage.projects.create("Limits")
    scene = storage.scenes.add(project.id, description="A harbour at dusk", fps=8, width=160, height=96)
    for action in ("Boats rock on the water.", "A gull lands on a post."):
        storage.shots.add(scene.id, action=action, duration_s=1.0)
    return storage.scenes.get(scene.id)


def _rows(services, scene_id: int) -> tuple:
    """Everything a refused edit must leave as it was: the scene, its shots, its renders."""
    storage = services.storage
    return storage.scenes.get(scene_id), storage.renders.list_for_scene(scene_id)


@pytest.mark.parametrize(
    ("field", "bad"),
    [("duration_s", 1e308), ("duration_s", 1e7), ("duration_s", float("inf")), ("duration_s", 0.0)],
)
def test_an_absurd_shot_duration_is_refused_naming_the_field(services, scene, field, bad):
    before = _rows(services, scene.scene.id)
    shot = scene.shots[0]
    with pytest.raises(StorageValidationError) as caught:
        services.storage.shots.update(shot.id, version=shot.version, **{field: bad})
    assert caught.value.field == field and "60 s" in str(caught.value)
    assert _rows(services, scene.scene.id) == before


@pytest.mark.parametrize(("field", "bad"), [("fps", 1e9), ("width", 1_600_000), ("height", 8), ("seed", -5)])
def test_absurd_scene_numbers_are_refused_naming_the_field(services, scene, field, bad):
    before = _rows(services, scene.scene.id)
    with pytest.raises(StorageValidationError) as caught:
        services.storage.scenes.update(scene.scene.id, version=scene.scene.version, **{field: bad})
    assert caught.value.field == field
    assert _rows(services, scene.scene.id) == before


def test_a_scene_longer_than_the_model_renders_is_refused_on_the_shot_that_makes_it(services, scene):
    # 2 shots at 8 fps: 59 s + 1 s = 60 s = 481 frames fits exactly; one second more cannot render.
    shot, other = scene.shots
    services.storage.shots.update(shot.id, version=shot.version, duration_s=59.0)
    before = _rows(services, scene.scene.id)
    with pytest.raises(HoloCineError) as caught:
        services.storage.shots.update(other.id, version=other.version, duration_s=1.5)
    assert caught.value.field == "shots[1].duration_s" and f"at most {limits.MAX_SCENE_FRAMES} frames" in str(
        caught.value
    )
    assert _rows(services, scene.scene.id) == before


def test_render_settings_out_of_range_leave_no_render_row(services, scene):
    renders = services.renders
    for request, field in (
        (RenderRequest(scene.scene.id, steps=10**6), "steps"),
        (RenderRequest(scene.scene.id, guidance_scale=1e9), "guidance_scale"),
        (RenderRequest(scene.scene.id, seed=2**64), "seed"),
        (RenderRequest(scene.scene.id, width=1_600_000), "width"),
    ):
        with pytest.raises(HoloCineError) as caught:
            renders.run(request)
        assert caught.value.field == field
    strength = EditRequest(scene.scene.id, "vary", shot_id=scene.shots[0].id, strength=3.0)
    with pytest.raises(HoloCineError, match="strength"):
        services.renders.edit(strength)
    assert services.storage.renders.list_for_scene(scene.scene.id) == []


def test_oversized_text_is_refused_where_it_is_typed(services, scene):
    storage = services.storage
    shot = scene.shots[0]
    before = _rows(services, scene.scene.id)
    with pytest.raises(StorageValidationError, match="action: is 1,000,000 characters long"):
        storage.shots.update(shot.id, version=shot.version, action="x" * 1_000_000)
    with pytest.raises(StorageValidationError, match="name: is 20,000 characters long"):
        storage.projects.create("n" * 20_000)
    # Under the character cap but over umT5's 512 tokens: it can never render, so it is never stored.
    wordy = " ".join(["lighthouse"] * 700)
    with pytest.raises(HoloCineError) as caught:
        storage.shots.update(shot.id, version=shot.version, action=wordy)
    assert caught.value.field == "shots[0].action" and "reads at most 512" in str(caught.value)
    cast = storage.characters.list_for_project(scene.scene.project_id)
    with pytest.raises(HoloCineError, match="description"):
        storage.characters.add(scene.scene.project_id, "Mara", description=wordy)
    assert storage.characters.list_for_project(scene.scene.project_id) == cast
    assert _rows(services, scene.scene.id) == before


def test_a_scene_holds_at_most_the_shots_the_model_renders(services, scene):
    storage = services.storage
    for _ in range(limits.MAX_SHOTS - len(scene.shots)):
        storage.shots.add(scene.scene.id, action="", duration_s=0.5)
    with pytest.raises(StorageValidationError, match=f"at most {limits.MAX_SHOTS} shots"):
        storage.shots.add(scene.scene.id, action="one too many")
    last = storage.scenes.get(scene.scene.id).shots[-1]
    with pytest.raises(StorageValidationError, match=f"at most {limits.MAX_SHOTS} shots"):
        storage.shots.duplicate(last.id)
    assert len(storage.scenes.get(scene.scene.id).shots) == limits.MAX_SHOTS


def test_a_regenerate_with_a_caption_too_long_leaves_no_render_row(services, scene):
    for _ in services.renders.run(RenderRequest(scene.scene.id, steps=1)):
        pass
    renders = services.storage.renders.list_for_scene(scene.scene.id)
    request = EditRequest(
        scene.scene.id, "regenerate", shot_id=scene.shots[1].id, caption=" ".join(["gull"] * 700), steps=1
    )
    with pytest.raises(HoloCineError, match="512"):
        services.renders.edit(request)
    assert services.storage.renders.list_for_scene(scene.scene.id) == renders


def test_every_view_survives_rows_written_out_of_range_behind_the_studio(services, scene):
    with services.storage.database.engine.begin() as connection:
        connection.execute(text("UPDATE shots SET duration_s = 1e308 WHERE id = :id"), {"id": scene.shots[0].id})
        connection.execute(text("UPDATE scenes SET fps = 1e9, width = 1600000 WHERE id = :id"), {"id": scene.scene.id})
    ui = StudioUI(services)
    ui.build()
    opened = ui.open_scene(scene.scene.id)  # raised OverflowError on every load before
    board, compiled = opened[ui.p.board], opened[ui.p.compiled]
    assert [card["id"] for card in board["shots"]] == [shot.id for shot in scene.shots]
    assert board["timeline"]["over"] and board["timeline"]["total"].startswith("cannot render: fps")
    assert list(compiled) == ["not renderable yet"] and "fps" in compiled["not renderable yet"]
    assert opened[ui.p.shot_editor]["fields"][4]["value"] == 1e308  # the editor shows it, to be fixed
    with pytest.raises(HoloCineError, match="fps"):
        services.renders.run(RenderRequest(scene.scene.id, steps=1))
    # The director repairs the rows from the same view.
    stored = services.storage.scenes.get(scene.scene.id)
    services.storage.scenes.update(scene.scene.id, version=stored.scene.version, fps=8.0, width=160)
    shot = stored.shots[0]
    services.storage.shots.update(shot.id, version=shot.version, duration_s=1.0)
    repaired = ui.open_scene(scene.scene.id)
    assert "not renderable yet" not in repaired[ui.p.compiled] and not repaired[ui.p.board]["timeline"]["over"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_api_refuses_absurd_numbers_naming_the_field(services, scene):
    demo = build_app(services)
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), quiet=True)
    try:
        client = Client(url, verbose=False, download_files=False)
        before = _rows(services, scene.scene.id)
        s = scene.scene
        fields = {"title": s.title, "description": s.description, "fps": 8, "width": 160, "height": 96, "seed": 0}
        with pytest.raises(AppError, match="fps: must be a number from 1 to 60"):
            client.predict(s.id, s.version, {**fields, "fps": 1e9}, api_name="/save_scene")
        with pytest.raises(AppError, match="width: must be a whole number from 16 to 1920"):
            client.predict(s.id, s.version, {**fields, "width": 1_600_000}, api_name="/save_scene")
        with pytest.raises(AppError, match="duration_s: must be a number above 0 to 60 s"):
            client.predict(scene.shots[0].id, scene.shots[0].version, {"duration_s": 1e7}, api_name="/save_shot")
        with pytest.raises(AppError, match="steps"):
            client.predict(scene_id=s.id, steps=10**6, api_name="/render")  # predict raises a job's error
        assert _rows(services, scene.scene.id) == before  # nothing saved, no render row
    finally:
        demo.close()


def test_the_engine_cli_refuses_absurd_numbers_with_one_line(tmp_path):
    for key, bad in (("width", 1_600_000), ("fps", 1e9), ("num_frames", 10**7)):
        scene = {"global_caption": "A harbour.", "shots": [{"caption": "Boats."}], key: bad}
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps(scene))
        out = tmp_path / f"out-{key}"
        result = subprocess.run(
            [sys.executable, "-m", "engine", "render", str(path), "--out", str(out), "--device", "cpu"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and key in lines[0] and "Traceback" not in result.stderr
        assert not out.exists()


def test_a_bundle_with_an_absurd_number_is_refused_and_writes_nothing(services, scene, tmp_path):
    bundle = export_bundle(services.storage, scene.scene.project_id, tmp_path / "good.zip")
    with zipfile.ZipFile(bundle) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members["bundle.json"])
    manifest["project"]["shots"][0]["duration_s"] = 1e308
    members["bundle.json"] = json.dumps(manifest).encode()
    hostile = tmp_path / "hostile.zip"
    with zipfile.ZipFile(hostile, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    projects = services.storage.projects.list_all()
    with pytest.raises(StorageError, match="duration_s: must be a number above 0 to 60 s"):
        import_bundle(services.storage, hostile)
    assert services.storage.projects.list_all() == projects
    assert not list(Path(services.settings.data_dir).glob(".bundle-import-*"))
