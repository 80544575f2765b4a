"""The studio as a client sees it: a launched app driven through its typed endpoints, checked in SQLite and on disk.

Every `StudioAPI` operation is a `gr.api` endpoint of its own name. `/render` and `/edit` only
queue jobs and return their ids; the studio's `RenderWorker` runs them, and `/follow` streams a
job's `{render_id, status, progress, message, error}` each time it changes until it ends. A
follower polls the row, so it may miss lines that change faster than it looks: tests assert what
is certain (the final state, the row, the takes and the files). Ids and versions a script needs
and no endpoint returns (a new row's version) are read from storage, as a second tab would read
them from its page.
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
from typing import Any

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from lora_files import diffusers_file, lora_weights
from PIL import Image

from engine import WeightsError
from engine.lora import DRAFT_GUIDANCE, DRAFT_STEPS, LoraSpec
from engine.video import read_mp4
from studio.renders import RenderRequest
from studio.services import StudioSettings, build_services
from studio.ui import build_app

# Each `StudioAPI` operation under its own name: the jobs are queued, followed, cancelled, retried, dismissed.
ENDPOINTS = (
    "create_project", "add_examples", "rename_project", "duplicate_project", "delete_project", "save_scene",
    "add_character", "save_character", "delete_character", "add_shot", "save_shot", "duplicate_shot",
    "delete_shot", "reorder_shots", "compiled", "board", "takes", "select_take", "scene_as_cut",
    "import_project", "export", "render", "edit", "job", "follow", "jobs", "cancel", "retry", "dismiss",
    "upload_keyframe", "clear_keyframe", "frame_as_keyframe", "upload_reference", "clear_reference",
)  # fmt: skip
ACTIONS = ["Boats rock on dark water.", "Ole ties a rope.", "Ole looks up at the sky."]
JOB_KEYS = {"render_id", "status", "progress", "message", "error"}
WAIT_S = 120.0  # the longest a test waits for a job on the toy model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    style = diffusers_file(tmp_path_factory.mktemp("loras") / "style.safetensors", lora_weights(5))
    services = build_services(
        StudioSettings(data_dir=tmp_path_factory.mktemp("studio-data"), device="cpu", loras=(LoraSpec("style", style),))
    )
    services.worker.start()  # runs the queued jobs, as app.py starts it
    demo = build_app(services)
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), quiet=True)
    client = Client(url, verbose=False, download_files=False)
    yield services, client
    demo.close()
    services.close()  # stops the worker


def call(client: Client, endpoint: str, *args: Any) -> Any:
    return client.predict(*args, api_name=f"/{endpoint}")


def follow(client: Client, render_id: int) -> list[dict[str, Any]]:
    """Every state `/follow` streams for the job, the last one its end.

    (Iterating a gradio_client job stops quietly on an error: only `result()` raises it.)
    """
    job = client.submit(render_id, api_name="/follow")
    updates = list(job)
    job.result()
    assert updates and {u["render_id"] for u in updates} == {render_id}
    assert all(set(u) == JOB_KEYS for u in updates)
    assert updates[-1]["status"] not in ("queued", "running")
    assert updates[-1] == call(client, "job", render_id)  # the end, as `/job` reads it
    return updates


def queued(client: Client, endpoint: str, **arguments: Any) -> int:
    """Queue one job through `/render` or `/edit`; its id. Raises the AppError a refused request ends with."""
    ids = client.predict(api_name=f"/{endpoint}", **arguments)
    assert isinstance(ids, list) and len(ids) == 1 and isinstance(ids[0], int)
    return ids[0]


def render(client: Client, scene_id: int, steps: int, **settings: Any) -> list[dict[str, Any]]:
    """Queue a render of the scene and follow it to its end."""
    return follow(client, queued(client, "render", scene_id=scene_id, steps=steps, **settings))


def edit(client: Client, scene_id: int, kind: str, **request: Any) -> list[dict[str, Any]]:
    """Queue a redo and follow it to its end."""
    return follow(client, queued(client, "edit", scene_id=scene_id, kind=kind, **request))


def _made_shots(services, render_id: int) -> list[int]:
    """The shot numbers (1-based, in the render's scene) the job filed a take for, in shot order."""
    shot_ids = services.storage.renders.get(render_id).settings["shot_ids"]
    return [
        number
        for number, shot_id in enumerate(shot_ids, start=1)
        if any(t.render_id == render_id for t in services.storage.takes.list_for_shot(shot_id))
    ]


def _scene_with_three_shots(services, client: Client, name: str) -> tuple[int, int, list[int]]:
    created = call(client, "create_project", name)
    project_id, scene_id = created["project_id"], created["scene_id"]
    version = services.storage.scenes.get(scene_id).scene.version
    scene = {
        "title": "Harbour",
        "description": "A grey harbour in a storm, cinematic",
        "fps": 8,
        "width": 160,
        "height": 96,
        "seed": 3,
        "negative_prompt": "",
    }
    assert call(client, "save_scene", scene_id, version, scene) == version + 1
    call(client, "add_character", project_id, "Ole", "an old fisherman, white beard, yellow raincoat", "")
    shot_ids = [call(client, "add_shot", scene_id, action, None) for action in ACTIONS]
    return project_id, scene_id, shot_ids


def test_every_operation_is_an_endpoint_of_its_own_name(studio):
    _, client = studio
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {f"/{name}" for name in ENDPOINTS}


def test_create_edit_render_and_find_takes(studio):
    services, client = studio
    project_id, scene_id, shot_ids = _scene_with_three_shots(services, client, "Harbour")
    board = call(client, "board", scene_id, None)
    assert [card["action"] for card in board["shots"]] == ACTIONS
    assert [card["id"] for card in board["shots"]] == shot_ids
    assert {card["status"] for card in board["shots"]} == {"not-rendered"}

    # edit shot 2: framing, and put the character in it
    (character,) = services.storage.characters.list_for_project(project_id)
    shot = services.storage.scenes.get(scene_id).shots[1]
    fields = {
        "action": "Ole ties a rope.",
        "shot_size": "close-up",
        "camera_angle": "low angle",
        "camera_movement": "static",
        "duration_s": 2.0,
        "dialogue": "",
        "notes": "",
        "character_ids": [character.id],
    }
    assert call(client, "save_shot", shot.id, shot.version, fields) == shot.version + 1
    saved = services.storage.scenes.get(scene_id).shots[1]
    assert (saved.shot_size, saved.camera_angle, saved.duration_s) == ("close-up", "low angle", 2.0)
    assert saved.character_ids == (character.id,)
    compiled = call(client, "compiled", scene_id)
    assert compiled["global_caption"] == (
        "A grey harbour in a storm, cinematic. [character1] is Ole: an old fisherman, white beard, yellow raincoat. "
        "This scene contains 3 shots."
    )
    assert compiled["shots"][1]["caption"] == "Close-up, low angle, static. [character1] ties a rope."
    assert [s["frames"] for s in compiled["shots"]] == [25, 16, 24]  # 3 s, 2 s, 3 s at 8 fps on the 4t+1 grid
    assert compiled["num_frames"] == 65 and compiled["tokens"] <= compiled["token_limit"] == 512
    card = call(client, "board", scene_id, shot.id)["shots"][1]
    assert (card["framing"], card["frames"], card["selected"]) == ("close-up / low angle / static", 16, True)
    assert card["characters"] == [{"tag": "[character1]", "name": "Ole"}]

    render_id = queued(client, "render", scene_id=scene_id, steps=4, guidance_scale=5.0)
    assert call(client, "job", render_id)["status"] in ("queued", "running", "done")
    updates = follow(client, render_id)
    final = updates[-1]
    assert (final["status"], final["progress"], final["error"]) == ("done", 1.0, None)
    assert final["message"].startswith("Done in ")
    for update in updates:  # every line a follower sees is one the job saved on its row
        assert update["message"] is None or re.fullmatch(
            r"Step \d/4 \(\w+ expert\), ETA \d+ s|Shot [123]/3 decoded|Done in .*", update["message"]
        )
    progress = [u["progress"] for u in updates]
    assert progress == sorted(progress)
    previews = services.storage.media.path(f"media/projects/{project_id}/renders/{render_id}/previews")
    assert sorted(p.name for p in previews.iterdir()) == ["shot_01.png", "shot_02.png", "shot_03.png"]
    for preview in previews.iterdir():  # one preview per shot, screen-sized
        with Image.open(preview) as image:
            assert (image.format, image.size) == ("PNG", (160, 96))

    record = services.storage.renders.get(render_id)
    assert (record.status, record.progress, record.seed, record.message) == ("done", 1.0, 3, final["message"])
    assert record.started_at is not None and record.finished_at >= record.started_at
    assert record.settings["steps"] == 4 and record.engine["random_weights"] is True
    job_scene = record.settings["scene"]  # what the job rendered: 3 shots, 65 frames
    assert (job_scene["num_frames"], job_scene["shot_cut_frames"], record.settings["shot_ids"]) == (
        65,
        [25, 41],
        shot_ids,
    )
    assert _made_shots(services, render_id) == [1, 2, 3]  # each shot's clip filed once
    scene = services.storage.scenes.get(scene_id)
    for shot, frames in zip(scene.shots, [25, 16, 24]):
        takes = services.storage.takes.list_for_shot(shot.id)
        assert len(takes) == 1 and takes[0].selected and takes[0].render_id == render_id
        assert not takes[0].video_path.startswith("/")  # stored relative to the data directory
        clip, fps, _ = read_mp4(services.storage.media.path(takes[0].video_path))
        assert clip.shape[0] == frames and fps == 8
        assert services.storage.media.path(takes[0].thumbnail_path).is_file()
    scene_frames, _, _ = read_mp4(services.storage.media.path(record.scene_path))
    assert scene_frames.shape == (65, 96, 160, 3)
    assert services.storage.media.path(record.latents_path).is_file()

    (take,) = services.storage.takes.list_for_shot(scene.shots[0].id)
    strip = call(client, "takes", scene_id, scene.shots[0].id)
    assert (strip["shot_id"], strip["shot_number"]) == (scene.shots[0].id, 1)
    (take_card,) = strip["takes"]
    assert (take_card["id"], take_card["seed"], take_card["selected"]) == (take.id, 3, True)
    assert take.video_path in take_card["video"] and take.thumbnail_path in take_card["picture"]
    cut, fps, _ = read_mp4(call(client, "scene_as_cut", scene_id))
    assert cut.shape == (65, 96, 160, 3) and fps == 8

    board = call(client, "board", scene_id, scene.shots[0].id)
    selected = services.storage.takes.selected_for_scene(scene_id)
    assert [card["status"] for card in board["shots"]] == ["rendered"] * 3
    for card, shot in zip(board["shots"], scene.shots):
        assert selected[shot.id].thumbnail_path in card["picture"]


def test_cancel_stops_the_render_and_records_it(studio):
    services, client = studio
    _, scene_id, _ = _scene_with_three_shots(services, client, "Cancelled")
    render_id = queued(client, "render", scene_id=scene_id, steps=100, guidance_scale=5.0)
    updates, cancelled_at = [], None
    job = client.submit(render_id, api_name="/follow")
    for update in job:
        updates.append(update)
        step = re.match(r"Step (\d+)/100 ", update["message"] or "")
        if cancelled_at is None and step and int(step[1]) >= 2:  # a follower may see step 3 first
            assert call(client, "cancel", render_id) is True
            cancelled_at = int(step[1])
    job.result()
    assert cancelled_at is not None, [u["message"] for u in updates]
    final = updates[-1]
    assert final == call(client, "job", render_id)
    assert final["status"] == "cancelled" and services.storage.renders.get(render_id).status == "cancelled"
    stopped = re.fullmatch(r"Cancelled after step (\d+); shots already decoded are kept", final["message"])
    assert stopped and cancelled_at <= int(stopped[1]) < 50, final["message"]  # after the current step
    assert final["progress"] < 0.5
    for shot in services.storage.scenes.get(scene_id).shots:
        assert services.storage.takes.list_for_shot(shot.id) == []
    assert call(client, "cancel", render_id) is False  # no longer running

    # Retry queues the same job again, same settings and seed; cancelled at once, it ends too.
    again = call(client, "retry", render_id)
    assert again != render_id
    old, new = services.storage.renders.get(render_id), services.storage.renders.get(again)
    assert (new.kind, new.seed, new.settings) == (old.kind, old.seed, old.settings)
    assert call(client, "cancel", again) is True
    assert follow(client, again)[-1]["status"] == "cancelled"

    # Dismiss takes finished jobs off the Jobs panel; their rows stay.
    on_panel = {card["id"] for card in call(client, "jobs")["jobs"]}
    assert {render_id, again} <= on_panel
    for stopped_id in (render_id, again):
        call(client, "dismiss", stopped_id)
    assert not {render_id, again} & {card["id"] for card in call(client, "jobs")["jobs"]}
    assert services.storage.renders.get(render_id).status == "cancelled"


def test_bad_input_names_the_field_and_keeps_saved_data(studio):
    services, client = studio
    _, scene_id, _ = _scene_with_three_shots(services, client, "Errors")
    shot = services.storage.scenes.get(scene_id).shots[0]
    with pytest.raises(AppError, match="duration_s"):
        call(client, "save_shot", shot.id, shot.version, {"action": "x", "duration_s": -1})
    assert services.storage.scenes.get(scene_id).shots[0] == shot

    # two tabs read the same version: the first save wins, the second is refused, nothing is lost
    first_tab = call(client, "save_shot", shot.id, shot.version, {"action": "First tab", "duration_s": 3})
    assert first_tab == shot.version + 1
    with pytest.raises(AppError, match="(?i)changed"):
        call(client, "save_shot", shot.id, shot.version, {"action": "Second tab", "duration_s": 3})
    assert services.storage.scenes.get(scene_id).shots[0].action == "First tab"

    with pytest.raises(AppError) as caught:
        render(client, scene_id, 4, guidance_scale=5.0, height=100)
    assert "height" in str(caught.value) and "multiple of 16" in str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert services.storage.renders.list_for_scene(scene_id) == []  # refused before any row


def test_a_render_switches_on_a_loaded_lora_and_records_the_draft_settings(studio):
    services, client = studio
    assert "**LoRAs:** style" in services.engine.markdown()
    _, scene_id, _ = _scene_with_three_shots(services, client, "Styled")
    rows = []
    for loras in ([], [["style", 0.8]]):
        final = render(client, scene_id, DRAFT_STEPS, guidance_scale=DRAFT_GUIDANCE, loras=loras)[-1]
        assert final["status"] == "done"
        rows.append(services.storage.renders.get(final["render_id"]))
    assert [(row.settings["steps"], row.settings["guidance_scale"]) for row in rows] == [(4, 1.0), (4, 1.0)]
    assert [row.settings["loras"] for row in rows] == [[], [["style", 0.8]]]
    plain, styled = (read_mp4(services.storage.media.path(row.scene_path))[0] for row in rows)
    assert np.abs(plain.astype(int) - styled.astype(int)).mean() > 1.0  # the LoRA really changed the experts

    shot = services.storage.scenes.get(scene_id).shots[1]
    redo = edit(client, scene_id, "regenerate", shot_id=shot.id, steps=2, guidance_scale=1.0, loras=[["style", 0.5]])
    row = services.storage.renders.get(redo[-1]["render_id"])
    assert (row.kind, row.status, row.settings["loras"]) == ("regenerate", "done", [["style", 0.5]])

    renders_before = len(services.storage.renders.list_for_scene(scene_id))
    with pytest.raises(WeightsError, match="loras: 'sepia' is not loaded; loaded: style"):
        services.renders.run(RenderRequest(scene_id, steps=2, loras=(("sepia", 1.0),)))
    with pytest.raises(AppError, match="loras: 'sepia' is not loaded; loaded: style"):
        render(client, scene_id, 2, loras=[["sepia", 1.0]])
    with pytest.raises(AppError, match="loras: 'sepia' is not loaded; loaded: style"):
        edit(client, scene_id, "regenerate", shot_id=shot.id, steps=2, loras=[["sepia", 1.0]])
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
    _, scene_id, _ = _scene_with_three_shots(services, client, "Takes")
    first = render(client, scene_id, 2, guidance_scale=5.0)[-1]["render_id"]
    second = render(client, scene_id, 2, seed=9, guidance_scale=5.0)[-1]["render_id"]
    shot = services.storage.scenes.get(scene_id).shots[0]
    takes = services.storage.takes.list_for_shot(shot.id)
    assert [(t.render_id, t.selected) for t in takes] == [(second, False), (first, True)]  # newest first
    strip = call(client, "takes", scene_id, shot.id)["takes"]
    assert [(c["id"], c["number"], c["seed"], c["selected"]) for c in strip] == [
        (takes[0].id, 2, 9, False),
        (takes[1].id, 1, 3, True),
    ]
    assert call(client, "select_take", takes[0].id) == takes[0].id
    strip = call(client, "takes", scene_id, shot.id)["takes"]
    assert [(c["seed"], c["selected"]) for c in strip] == [(9, True), (3, False)]
    assert services.storage.takes.list_for_shot(shot.id)[1].selected is False


def test_three_takes_queue_three_jobs_with_consecutive_seeds_run_one_at_a_time(studio):
    services, client = studio
    _, scene_id, shot_ids = _scene_with_three_shots(services, client, "Batch")
    for shot in services.storage.scenes.get(scene_id).shots:  # short shots: three renders decode quickly
        call(client, "save_shot", shot.id, shot.version, {"action": shot.action, "duration_s": 1.0})
    assert call(client, "compiled", scene_id)["num_frames"] < 40
    ids = client.predict(scene_id=scene_id, steps=2, seed=20, guidance_scale=5.0, takes=3, api_name="/render")
    assert len(ids) == 3 and ids == sorted(ids)
    rows = [services.storage.renders.get(i) for i in ids]
    assert [row.seed for row in rows] == [20, 21, 22] and [row.settings["seed"] for row in rows] == [20, 21, 22]
    assert {row.kind for row in rows} == {"render"}

    seen: list[dict[int, str]] = []  # the three jobs' statuses on the Jobs panel, each time it was read
    deadline = time.monotonic() + WAIT_S
    while True:
        cards = {card["id"]: card for card in call(client, "jobs")["jobs"] if card["id"] in ids}
        seen.append({i: card["status"] for i, card in cards.items()})
        assert sum(status == "running" for status in seen[-1].values()) <= 1, seen[-1]  # never two at once
        if set(cards) == set(ids) and all(card["status"] == "done" for card in cards.values()):
            break
        assert time.monotonic() < deadline, seen[-1]
        time.sleep(0.05)
    for snapshot in seen:  # queue order: a job runs only once the ones before it have ended
        statuses = [snapshot.get(i) for i in ids]
        for earlier, later in zip(statuses, statuses[1:]):
            assert later not in ("running", "done") or earlier == "done", snapshot

    rows = [services.storage.renders.get(i) for i in ids]
    assert [row.status for row in rows] == ["done"] * 3
    for before, after in zip(rows, rows[1:]):  # one after another, never overlapping
        assert before.finished_at <= after.started_at
    for shot_id in shot_ids:
        takes = services.storage.takes.list_for_shot(shot_id)  # newest first
        assert [t.render_id for t in takes] == ids[::-1]  # one take per job
        assert [t.selected for t in takes] == [False, False, True]  # the first take stays the selected one
    for shot_id in shot_ids:
        strip = call(client, "takes", scene_id, shot_id)["takes"]
        assert [(c["number"], c["seed"], c["selected"]) for c in strip] == [
            (3, 22, False),
            (2, 21, False),
            (1, 20, True),
        ]


def test_project_rename_duplicate_delete(studio):
    services, client = studio
    project_id, scene_id, _ = _scene_with_three_shots(services, client, "Draft")
    version = services.storage.projects.get(project_id).version
    assert call(client, "rename_project", project_id, "Final", version) == version + 1
    assert services.storage.projects.get(project_id).name == "Final"
    with pytest.raises(AppError, match="(?i)changed"):
        call(client, "rename_project", project_id, "Stale", version)  # the version read before the rename
    assert services.storage.projects.get(project_id).name == "Final"
    copy_id = call(client, "duplicate_project", project_id)
    copy_scene = services.storage.scenes.list_for_project(copy_id)[0]
    assert [s.action for s in services.storage.scenes.get(copy_scene.id).shots] == [
        s.action for s in services.storage.scenes.get(scene_id).shots
    ]
    call(client, "delete_project", project_id)
    assert project_id not in [p.id for p in services.storage.projects.list_all()]
    assert copy_id in [p.id for p in services.storage.projects.list_all()]


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_regenerate_a_shot_pick_it_and_extend_the_scene(studio):
    services, client = studio
    media = services.storage.media
    _, scene_id, _ = _scene_with_three_shots(services, client, "Redo")
    first = render(client, scene_id, 3, guidance_scale=5.0)[-1]["render_id"]
    shots = services.storage.scenes.get(scene_id).shots
    before = {s.id: _digest(media.path(services.storage.takes.list_for_shot(s.id)[0].video_path)) for s in shots}

    updates = edit(
        client, scene_id, "regenerate", shot_id=shots[1].id, caption="Ole drops the rope.", seed=11, steps=3,
        guidance_scale=5.0,
    )  # fmt: skip
    redo = services.storage.renders.get(updates[-1]["render_id"])
    assert (redo.kind, redo.status, redo.seed) == ("regenerate", "done", 11)
    assert (redo.settings["edit"]["shot"], redo.settings["edit"]["caption"]) == (1, "Ole drops the rope.")
    assert updates[-1]["message"].startswith("Done in ")
    assert _made_shots(services, redo.id) == [2]  # only the redone shot's clip is filed
    new_take, old_take = services.storage.takes.list_for_shot(shots[1].id)
    assert (new_take.render_id, new_take.selected, old_take.selected) == (redo.id, False, True)
    assert new_take.caption == "Ole drops the rope."
    for shot in (shots[0], shots[2]):  # untouched shots: one take each, files unchanged byte for byte
        takes = services.storage.takes.list_for_shot(shot.id)
        assert [t.render_id for t in takes] == [first]
        assert _digest(media.path(takes[0].video_path)) == before[shot.id]

    assert call(client, "select_take", new_take.id) == new_take.id
    strip = call(client, "takes", scene_id, shots[1].id)["takes"]
    assert [(c["id"], c["selected"], c["caption_differs"]) for c in strip] == [
        (new_take.id, True, True),  # rendered from the edited caption, not the shot's text
        (old_take.id, False, False),
    ]
    assert [c["status"] for c in call(client, "board", scene_id, shots[1].id)["shots"]] == [
        "rendered",
        "changed",
        "rendered",
    ]
    cut_frames, fps, _ = read_mp4(call(client, "scene_as_cut", scene_id))
    assert cut_frames.shape[0] == 73 and fps == 8  # 3 shots of 3 s at 8 fps on the 4t+1 grid
    middle, _, _ = read_mp4(media.path(new_take.video_path))
    assert abs(cut_frames[25:49].astype(int) - middle.astype(int)).mean() < 3  # the new take is in the cut

    # vary with strength 0 keeps the shot; then extend with a 2 s shot
    varied = edit(client, scene_id, "vary", shot_id=shots[2].id, caption="", strength=0.0, steps=3, guidance_scale=5.0)
    assert services.storage.renders.get(varied[-1]["render_id"]).settings["edit"]["strength"] == 0.0
    assert services.storage.takes.list_for_shot(shots[2].id)[0].render_id == varied[-1]["render_id"] != first
    updates = edit(
        client, scene_id, "extend", caption="Ole walks away down the pier.", duration_s=2.0, steps=3,
        guidance_scale=5.0,
    )  # fmt: skip
    extension = services.storage.renders.get(updates[-1]["render_id"])
    assert (extension.kind, extension.status) == ("extend", "done")
    assert _made_shots(services, extension.id) == [4]  # only the new shot's clip is filed
    scene = services.storage.scenes.get(scene_id)
    assert [s.action for s in scene.shots][-1] == "Ole walks away down the pier."
    (take,) = services.storage.takes.list_for_shot(scene.shots[-1].id)
    assert take.selected
    extended, _, _ = read_mp4(call(client, "scene_as_cut", scene_id))
    assert extended.shape[0] == 89  # 73 + 16 frames


def test_redo_without_a_render_is_refused(studio):
    services, client = studio
    _, scene_id, shot_ids = _scene_with_three_shots(services, client, "No render")
    with pytest.raises(AppError, match="no selected take yet"):
        edit(client, scene_id, "regenerate", shot_id=shot_ids[0], steps=3, guidance_scale=5.0)
    assert services.storage.renders.list_for_scene(scene_id) == []  # refused before any row


def test_add_examples_creates_projects_whose_compiled_prompts_are_the_toy_captions(studio):
    services, client = studio
    scene_ids = call(client, "add_examples")
    assert scene_ids and all(isinstance(i, int) for i in scene_ids)
    compiled = call(client, "compiled", scene_ids[0])
    assert "[character1] is Dot: a red circle." in compiled["global_caption"]
    assert "Close-up. [character1] is in the centre." in [s["caption"] for s in compiled["shots"]]
    board = call(client, "board", scene_ids[0], None)
    assert len(board["shots"]) == len(compiled["shots"]) and board["timeline"]["over"] is False
    titles = [p.name for p in services.storage.projects.list_all()]
    assert "Example: Red circle on grey" in titles
