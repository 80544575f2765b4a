"""The studio as a client sees it: a launched app driven through gradio_client, checked in SQLite and on disk."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from lora_files import diffusers_file, lora_weights

from engine import WeightsError
from engine.lora import LoraSpec
from engine.video import read_mp4
from studio.renders import RenderRequest
from studio.services import StudioSettings, build_services
from studio.ui import build_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def value(output):
    """gradio_client returns component updates as dicts; the value is what the UI shows."""
    return output["value"] if isinstance(output, dict) and "__type__" in output else output


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    style = diffusers_file(tmp_path_factory.mktemp("loras") / "style.safetensors", lora_weights(5))
    services = build_services(
        StudioSettings(data_dir=tmp_path_factory.mktemp("studio-data"), device="cpu", loras=(LoraSpec("style", style),))
    )
    demo = build_app(services)
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), quiet=True)
    client = Client(url, verbose=False, download_files=False)
    yield services, client
    demo.close()
    services.close()


def _scene_with_three_shots(client: Client, name: str) -> tuple[int, int, list]:
    created = client.predict(name, api_name="/create_project")
    project_id, scene_id = value(created[0]), value(created[1])
    board = client.predict(scene_id, api_name="/storyboard")
    board = client.predict(
        scene_id, "Harbour", "A grey harbour in a storm, cinematic", 8, 160, 96, 3, "", board[7], api_name="/save_scene"
    )
    board = client.predict(
        scene_id, "Ole", "an old fisherman, white beard, yellow raincoat", "", api_name="/add_character"
    )
    for action in ("Boats rock on dark water.", "Ole ties a rope.", "Ole looks up at the sky."):
        board = client.predict(scene_id, action, api_name="/add_shot")
    return project_id, scene_id, board


def test_create_edit_render_and_find_takes(studio):
    services, client = studio
    project_id, scene_id, board = _scene_with_three_shots(client, "Harbour")
    assert [row[1] for row in board[10]["data"]] == [
        "Boats rock on dark water.",
        "Ole ties a rope.",
        "Ole looks up at the sky.",
    ]

    # edit shot 2: framing, and put the character in it
    scene = services.storage.scenes.get(scene_id)
    character = services.storage.characters.list_for_project(project_id)[0]
    shot = scene.shots[1]
    fields = client.predict(scene_id, shot.id, api_name="/load_shot")
    assert fields[0] == "Ole ties a rope."
    board = client.predict(
        scene_id, shot.id, "Ole ties a rope.", "close-up", "low angle", "static", 2.0, "", "", [character.id], fields[8],
        api_name="/save_shot",
    )  # fmt: skip
    compiled = board[12]
    assert compiled["global_caption"] == (
        "A grey harbour in a storm, cinematic. [character1] is Ole: an old fisherman, white beard, yellow raincoat. "
        "This scene contains 3 shots."
    )
    assert compiled["shots"][1]["caption"] == "Close-up, low angle, static. [character1] ties a rope."
    assert [s["frames"] for s in compiled["shots"]] == [25, 16, 24]  # 3 s, 2 s, 3 s at 8 fps on the 4t+1 grid
    assert compiled["num_frames"] == 65 and compiled["tokens"] <= compiled["token_limit"] == 512

    job = client.submit(scene_id, 4, -1, 5.0, 0, 0, "checkpoint default", api_name="/render")
    updates = list(job)
    render_id = updates[-1][0]
    statuses = [u[1] for u in updates]
    assert statuses[0].startswith(f"Render {render_id} started: 3 shots, 65 frames")
    assert statuses[-1].startswith("Done") and "[done, 100%]" in statuses[-1]
    assert any(s.startswith("Preview at step") for s in statuses)
    clip_counts = [len(u[3]) for u in updates]
    assert clip_counts == sorted(clip_counts) and clip_counts[-1] == 3  # clips only ever added, in order
    assert [c["caption"] for c in updates[-1][3]] == ["shot 1", "shot 2", "shot 3"]
    assert all(len(u[2]) == 3 for u in updates if u[2])  # one preview per shot
    assert updates[-1][4] is not None

    render = services.storage.renders.get(render_id)
    assert (render.status, render.progress, render.seed) == ("done", 1.0, 3)
    assert render.settings["steps"] == 4 and render.engine["random_weights"] is True
    scene = services.storage.scenes.get(scene_id)
    expected_frames = [25, 16, 24]
    for shot, frames in zip(scene.shots, expected_frames):
        takes = services.storage.takes.list_for_shot(shot.id)
        assert len(takes) == 1 and takes[0].selected and takes[0].render_id == render_id
        assert not takes[0].video_path.startswith("/")  # stored relative to the data directory
        clip, fps, _ = read_mp4(services.storage.media.path(takes[0].video_path))
        assert clip.shape[0] == frames and fps == 8
        assert services.storage.media.path(takes[0].thumbnail_path).is_file()
    scene_frames, _, _ = read_mp4(services.storage.media.path(render.scene_path))
    assert scene_frames.shape == (65, 96, 160, 3)
    assert services.storage.media.path(render.latents_path).is_file()

    rows, selected_video, cut_video = client.predict(scene.shots[0].id, api_name="/takes")
    assert [r[1] for r in rows["data"]] == [render_id]
    assert selected_video is not None and cut_video is not None


def test_cancel_stops_the_render_and_records_it(studio):
    services, client = studio
    _, scene_id, _ = _scene_with_three_shots(client, "Cancelled")
    job = client.submit(scene_id, 100, -1, 5.0, 0, 0, "checkpoint default", api_name="/render")
    cancelled = threading.Event()
    updates = []
    for update in job:
        updates.append(update)
        if not cancelled.is_set() and "Step 2/" in update[1]:
            assert "Cancelling" in client.predict(update[0], api_name="/cancel")
            cancelled.set()
    render = services.storage.renders.get(updates[-1][0])
    assert render.status == "cancelled"
    assert updates[-1][1].startswith("Cancelled after step")
    for shot in services.storage.scenes.get(scene_id).shots:
        assert services.storage.takes.list_for_shot(shot.id) == []


def test_bad_input_names_the_field_and_keeps_saved_data(studio):
    services, client = studio
    _, scene_id, _ = _scene_with_three_shots(client, "Errors")
    shot = services.storage.scenes.get(scene_id).shots[0]
    fields = client.predict(scene_id, shot.id, api_name="/load_shot")
    with pytest.raises(AppError, match="duration_s"):
        client.predict(scene_id, shot.id, "x", "", "", "", -1, "", "", [], fields[8], api_name="/save_shot")
    assert services.storage.scenes.get(scene_id).shots[0].action == "Boats rock on dark water."

    # two tabs read the same version: the first save wins, the second is refused, nothing is lost
    client.predict(scene_id, shot.id, "First tab", "", "", "", 3, "", "", [], fields[8], api_name="/save_shot")
    with pytest.raises(AppError, match="(?i)changed"):
        client.predict(scene_id, shot.id, "Second tab", "", "", "", 3, "", "", [], fields[8], api_name="/save_shot")
    assert services.storage.scenes.get(scene_id).shots[0].action == "First tab"

    with pytest.raises(AppError) as caught:
        client.predict(scene_id, 4, -1, 5.0, 100, 0, "checkpoint default", api_name="/render")
    assert "height" in str(caught.value) and "multiple of 16" in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_a_render_switches_on_a_loaded_lora_and_draft_settings_fill_the_sliders(studio):
    services, client = studio
    assert "**LoRAs:** style" in services.engine.markdown()
    assert client.predict(api_name="/draft_settings") == (4, 1.0)
    _, scene_id, _ = _scene_with_three_shots(client, "Styled")
    rows = []
    for loras, strength in (([], 1.0), (["style"], 0.8)):
        final = list(
            client.submit(scene_id, 2, -1, 1.0, 0, 0, "checkpoint default", loras, strength, api_name="/render")
        )
        rows.append(services.storage.renders.get(final[-1][0]))
    assert [row.settings["loras"] for row in rows] == [[], [["style", 0.8]]]
    plain, styled = (read_mp4(services.storage.media.path(row.scene_path))[0] for row in rows)
    assert np.abs(plain.astype(int) - styled.astype(int)).mean() > 1.0  # the LoRA really changed the experts

    shot = services.storage.scenes.get(scene_id).shots[1]
    redo = list(client.submit(scene_id, shot.id, "", -1, 2, 1.0, ["style"], 0.5, api_name="/regenerate"))
    assert services.storage.renders.get(redo[-1][0]).settings["loras"] == [["style", 0.5]]

    renders_before = len(services.storage.renders.list_for_scene(scene_id))
    with pytest.raises(WeightsError, match="loras: 'sepia' is not loaded; loaded: style"):
        services.renders.run(RenderRequest(scene_id, steps=2, loras=(("sepia", 1.0),)))
    assert len(services.storage.renders.list_for_scene(scene_id)) == renders_before  # refused before any row


def test_app_refuses_a_malformed_or_missing_lora_before_serving(tmp_path, capsys):
    import app

    for argument, message in (
        ("style", "should read NAME=HIGH"),
        (f"style={tmp_path}/gone.safetensors", "no LoRA file"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            app.main(["--data-dir", str(tmp_path), "--device", "cpu", "--lora", argument])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_cfg_slider_starts_at_the_model_cards_recommendation(tmp_path, tiny_weights_recommending_cfg):
    weights = tiny_weights_recommending_cfg(3.5)
    services = build_services(StudioSettings(data_dir=tmp_path / "data", weights=str(weights), device="cpu"))
    try:
        sliders = [b for b in build_app(services).blocks.values() if getattr(b, "label", None) == "CFG"]
        assert [slider.value for slider in sliders] == [3.5]
        assert "recommended CFG:** 3.5" in services.engine.markdown()
    finally:
        services.close()


def test_startup_marks_a_crashed_render_interrupted(tmp_path):
    services = build_services(StudioSettings(data_dir=tmp_path, device="cpu"))
    project = services.storage.projects.create("Crash")
    scene = services.storage.scenes.add(project.id, title="S")
    running = services.storage.renders.create(scene.id, "render", {}, 0)
    services.storage.renders.transition(running.id, "running")
    services.close()
    restarted = build_services(StudioSettings(data_dir=tmp_path, device="cpu"))
    assert restarted.recovered == 1
    assert restarted.storage.renders.get(running.id).status == "interrupted"
    assert restarted.storage.projects.get(project.id).name == "Crash"
    restarted.close()


def test_a_second_render_adds_takes_without_changing_the_selection(studio):
    services, client = studio
    _, scene_id, _ = _scene_with_three_shots(client, "Takes")
    first = list(client.submit(scene_id, 2, -1, 5.0, 0, 0, "checkpoint default", api_name="/render"))[-1][0]
    second = list(client.submit(scene_id, 2, 9, 5.0, 0, 0, "checkpoint default", api_name="/render"))[-1][0]
    shot = services.storage.scenes.get(scene_id).shots[0]
    takes = services.storage.takes.list_for_shot(shot.id)
    assert [(t.render_id, t.selected) for t in takes] == [(second, False), (first, True)]  # newest first
    rows, _, _ = client.predict(shot.id, takes[0].id, api_name="/select_take")
    assert [(r[1], r[3]) for r in rows["data"]] == [(second, True), (first, False)]
    assert services.storage.takes.list_for_shot(shot.id)[1].selected is False


def test_project_rename_duplicate_delete(studio):
    services, client = studio
    project_id, scene_id, _ = _scene_with_three_shots(client, "Draft")
    scenes, name, version = client.predict(project_id, api_name="/open_project")
    assert (value(scenes), name) == (scene_id, "Draft")
    renamed = client.predict(project_id, "Final", version, api_name="/rename_project")
    assert services.storage.projects.get(project_id).name == "Final"
    with pytest.raises(AppError, match="(?i)changed"):
        client.predict(project_id, "Stale", version, api_name="/rename_project")  # the version read before the rename
    copy_id = value(client.predict(project_id, api_name="/duplicate_project")[0])
    copy_scene = services.storage.scenes.list_for_project(copy_id)[0]
    assert [s.action for s in services.storage.scenes.get(copy_scene.id).shots] == [
        s.action for s in services.storage.scenes.get(scene_id).shots
    ]
    client.predict(project_id, api_name="/delete_project")
    assert project_id not in [p.id for p in services.storage.projects.list_all()]
    assert copy_id in [p.id for p in services.storage.projects.list_all()]
    assert value(renamed[1]) == version + 1


def _digest(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_regenerate_a_shot_pick_it_and_extend_the_scene(studio):
    services, client = studio
    media = services.storage.media
    _, scene_id, _ = _scene_with_three_shots(client, "Redo")
    first = list(client.submit(scene_id, 3, -1, 5.0, 0, 0, "checkpoint default", api_name="/render"))[-1][0]
    shots = services.storage.scenes.get(scene_id).shots
    before = {s.id: _digest(media.path(services.storage.takes.list_for_shot(s.id)[0].video_path)) for s in shots}

    updates = list(client.submit(scene_id, shots[1].id, "Ole drops the rope.", 11, 3, 5.0, api_name="/regenerate"))
    redo = services.storage.renders.get(updates[-1][0])
    assert (redo.kind, redo.status, redo.settings["shot"]) == ("regenerate", "done", 1)
    assert len(updates[-1][3]) == 1  # only the redone shot's clip is filed
    new_take, old_take = services.storage.takes.list_for_shot(shots[1].id)
    assert (new_take.render_id, new_take.selected, old_take.selected) == (redo.id, False, True)
    assert new_take.caption == "Ole drops the rope."
    for shot in (shots[0], shots[2]):  # untouched shots: one take each, files unchanged byte for byte
        takes = services.storage.takes.list_for_shot(shot.id)
        assert [t.render_id for t in takes] == [first]
        assert _digest(media.path(takes[0].video_path)) == before[shot.id]

    rows, selected_clip, cut = client.predict(shots[1].id, new_take.id, api_name="/select_take")
    assert [r[3] for r in rows["data"]] == [True, False]
    cut_frames, fps, _ = read_mp4(services.renders.assemble_scene(scene_id))
    assert cut_frames.shape[0] == 73 and fps == 8  # 3 shots of 3 s at 8 fps on the 4t+1 grid
    middle, _, _ = read_mp4(media.path(new_take.video_path))
    assert abs(cut_frames[25:49].astype(int) - middle.astype(int)).mean() < 3  # the new take is in the cut

    # vary with strength 0 keeps the shot; then extend with a 2 s shot
    list(client.submit(scene_id, shots[2].id, "", 0.0, -1, 3, 5.0, api_name="/vary"))
    varied = services.storage.takes.list_for_shot(shots[2].id)[0]
    assert varied.render_id != first
    updates = list(client.submit(scene_id, "Ole walks away down the pier.", 2.0, -1, 3, 5.0, api_name="/extend"))
    assert services.storage.renders.get(updates[-1][0]).status == "done"
    scene = services.storage.scenes.get(scene_id)
    assert [s.action for s in scene.shots][-1] == "Ole walks away down the pier."
    (take,) = services.storage.takes.list_for_shot(scene.shots[-1].id)
    assert take.selected
    extended, _, _ = read_mp4(services.renders.assemble_scene(scene_id))
    assert extended.shape[0] == 89  # 73 + 16 frames


def test_redo_without_a_render_is_refused(studio):
    services, client = studio
    _, scene_id, _ = _scene_with_three_shots(client, "No render")
    shot = services.storage.scenes.get(scene_id).shots[0]
    with pytest.raises(AppError, match="no selected take yet"):
        client.predict(scene_id, shot.id, "", -1, 3, 5.0, api_name="/regenerate")


def test_add_examples_creates_projects_whose_compiled_prompts_are_the_toy_captions(studio):
    services, client = studio
    project, scene, status = client.predict(api_name="/add_examples")
    assert "example projects" in status
    board = client.predict(value(scene), api_name="/storyboard")
    shown = "\n".join(str(part) for part in board)
    assert "[character1] is Dot: a red circle." in shown and "Close-up. [character1] is in the centre." in shown
    titles = [p.name for p in services.storage.projects.list_all()]
    assert "Example: Red circle on grey" in titles
