"""Storage: the render state machine, start-up recovery, and takes with their selection."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from storage import (
    InvalidTransitionError,
    MediaPathError,
    RenderRecord,
    StorageValidationError,
    TakeRecord,
    build_storage,
)
from storage.models import Render
from storage.renders import INTERRUPTED_MESSAGE, _apply_transition

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
# The product's rules, written out here rather than read from the code under test.
ALLOWED = {
    ("queued", "running"),
    ("queued", "cancelled"),
    ("queued", "interrupted"),  # start-up recovery of a job that never started
    ("running", "done"),
    ("running", "failed"),
    ("running", "cancelled"),
    ("running", "interrupted"),
}
# How to bring a fresh (queued) render into each status through allowed moves.
PATH_TO = {
    "queued": (),
    "running": ("running",),
    "done": ("running", "done"),
    "failed": ("running", "failed"),
    "cancelled": ("cancelled",),
    "interrupted": ("running", "interrupted"),
}


def seconds(n: int) -> datetime:
    return T0 + timedelta(seconds=n)


@pytest.fixture
def store(tmp_path, db_url):
    ticks = itertools.count()
    built = build_storage(tmp_path, database_url=db_url, clock=lambda: seconds(next(ticks)))
    yield built
    built.close()


@pytest.fixture
def scene(store):
    """A scene with two shots; its id and the shots' ids."""
    project = store.projects.create("Harbour")  # tick 0
    scene_id = store.scenes.add(project.id).id  # tick 1
    shots = [store.shots.add(scene_id, action=a).id for a in "AB"]  # ticks 2, 3
    return {"id": scene_id, "shots": shots}


def render_in(store, scene_id: int, status: str) -> int:
    render_id = store.renders.create(scene_id, "render", {"steps": 4}, seed=1).id
    for step in PATH_TO[status]:
        store.renders.transition(render_id, step)
    assert store.renders.get(render_id).status == status
    return render_id


# --- renders ----------------------------------------------------------------------------


def test_create_queued_exact_record(store, scene):
    settings = {"steps": 50, "cfg": 5.0, "attention": "sparse", "shots": [0, 1]}
    render = store.renders.create(scene["id"], "vary", settings, seed=2**63 - 1)
    assert render == RenderRecord(
        id=1,
        scene_id=scene["id"],
        kind="vary",
        status="queued",
        settings=settings,
        seed=2**63 - 1,
        progress=0.0,
        created_at=seconds(4),
        started_at=None,
        finished_at=None,
        timings=None,
        error=None,
        engine=None,
        latents_path=None,
        scene_path=None,
        message=None,
        cancel_requested=False,
        dismissed=False,
    )
    assert store.renders.get(render.id) == render


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        (("sing", {}, 0), "kind"),
        (("render", {"when": datetime.now()}, 0), "settings"),
        (("render", {"cfg": float("nan")}, 0), "settings"),
        (("render", [1, 2], 0), "settings"),
        (("render", {}, -1), "seed"),
    ],
)
def test_create_refusals_name_the_field(store, scene, arguments, field):
    with pytest.raises(StorageValidationError) as caught:
        store.renders.create(scene["id"], *arguments)
    assert caught.value.field == field
    assert store.renders.list_for_scene(scene["id"]) == []


@pytest.mark.parametrize("start", STATUSES)
def test_every_transition(store, scene, start):
    for target in STATUSES:
        render_id = render_in(store, scene["id"], start)  # a fresh render for each attempt
        before = store.renders.get(render_id)
        if (start, target) in ALLOWED:
            assert store.renders.transition(render_id, target).status == target, (start, target)
        else:
            with pytest.raises(InvalidTransitionError, match=f"render {render_id} is"):
                store.renders.transition(render_id, target)
            assert store.renders.get(render_id) == before, (start, target)


def test_finished_renders_say_they_never_change(store, scene):
    render_id = render_in(store, scene["id"], "done")
    with pytest.raises(InvalidTransitionError, match="already done and can never change again"):
        store.renders.transition(render_id, "running")
    with pytest.raises(InvalidTransitionError, match="unknown status 'paused'"):
        store.renders.transition(render_in(store, scene["id"], "queued"), "paused")


def test_transitions_stamp_times_and_store_what_the_job_reports(store, scene):
    render_id = store.renders.create(scene["id"], "render", {}, seed=0).id  # tick 4
    running = store.renders.transition(render_id, "running")  # tick 5
    assert (running.started_at, running.finished_at, running.progress) == (seconds(5), None, 0.0)
    done = store.renders.transition(
        render_id,
        "done",
        timings={"denoise_s": 12.5},
        engine={"model": "tiny-holocine", "variant": "sparse"},
        latents_path="media/projects/1/renders/1/latents.safetensors",
        scene_path="media/projects/1/renders/1/./scene.mp4",
    )  # tick 6
    assert done == RenderRecord(
        **{
            **vars(running),
            "status": "done",
            "progress": 1.0,
            "finished_at": seconds(6),
            "timings": {"denoise_s": 12.5},
            "engine": {"model": "tiny-holocine", "variant": "sparse"},
            "latents_path": "media/projects/1/renders/1/latents.safetensors",
            "scene_path": "media/projects/1/renders/1/scene.mp4",
        }
    )
    failed = store.renders.transition(render_in(store, scene["id"], "running"), "failed", error="CUDA out of memory")
    assert failed.error == "CUDA out of memory" and failed.finished_at is not None and failed.progress == 0.0


def test_transition_refuses_paths_outside_the_data_dir(store, scene):
    render_id = render_in(store, scene["id"], "running")
    for bad in ("/tmp/scene.mp4", "../scene.mp4"):
        with pytest.raises(MediaPathError) as caught:
            store.renders.transition(render_id, "done", scene_path=bad)
        assert caught.value.field == "scene_path"
    assert store.renders.get(render_id).status == "running"


def test_progress_only_while_running(store, scene):
    render_id = render_in(store, scene["id"], "queued")
    with pytest.raises(InvalidTransitionError, match="only be reported while it is running"):
        store.renders.set_progress(render_id, 0.5)
    store.renders.transition(render_id, "running")
    assert store.renders.set_progress(render_id, 0.25).progress == 0.25
    for bad in (-0.1, 1.5, float("nan"), "half"):
        with pytest.raises(StorageValidationError) as caught:
            store.renders.set_progress(render_id, bad)
        assert caught.value.field == "progress"
    store.renders.transition(render_id, "cancelled")
    with pytest.raises(InvalidTransitionError):
        store.renders.set_progress(render_id, 0.5)
    assert store.renders.get(render_id).progress == 0.25


def test_list_for_scene_newest_first(store, scene):
    ids = [render_in(store, scene["id"], "queued") for _ in range(3)]
    assert [r.id for r in store.renders.list_for_scene(scene["id"])] == ids[::-1]


def test_status_guard_in_the_update_itself(store, scene):
    """A status changed by another writer between read and save makes the save fail, not win twice."""
    render_id = render_in(store, scene["id"], "running")
    with pytest.raises(InvalidTransitionError, match="changed status while this change was saved"):
        with store.database.transaction() as session:
            render = session.get(Render, render_id)
            session.execute(text("UPDATE renders SET status = 'cancelled' WHERE id = :id"), {"id": render_id})
            _apply_transition(session, render, "done", seconds(99), {})
    assert store.renders.get(render_id).status == "running"


# --- crash recovery ---------------------------------------------------------------------


def test_recovery_interrupts_running_jobs_only(store, scene):
    """A job a killed process was running is interrupted; a queued one never started and waits for the worker."""
    renders = {status: render_in(store, scene["id"], status) for status in STATUSES}
    before = {status: store.renders.get(render_id) for status, render_id in renders.items()}

    assert store.recover() == 1

    recovered = store.renders.get(renders["running"])
    assert (recovered.status, recovered.error) == ("interrupted", INTERRUPTED_MESSAGE)
    assert recovered.finished_at is not None and recovered.started_at == before["running"].started_at
    for status in ("queued", "done", "failed", "cancelled", "interrupted"):
        assert store.renders.get(renders[status]) == before[status]
    assert store.recover() == 0


def test_recovery_after_the_process_died(tmp_path, db_url):
    crashed = build_storage(tmp_path, database_url=db_url)
    scene_id = crashed.scenes.add(crashed.projects.create("Harbour").id).id
    running = crashed.renders.create(scene_id, "render", {}, seed=0).id
    crashed.renders.transition(running, "running")
    crashed.renders.set_progress(running, 0.4)
    done = crashed.renders.create(scene_id, "render", {}, seed=0).id
    crashed.renders.transition(done, "running")
    crashed.renders.transition(done, "done")
    crashed.database.dispose()  # the process is gone; only the file remains

    restarted = build_storage(tmp_path, database_url=db_url)
    assert restarted.recover() == 1
    assert restarted.renders.get(running).status == "interrupted"
    assert restarted.renders.get(running).progress == 0.4
    assert restarted.renders.get(done).status == "done"


# --- takes ------------------------------------------------------------------------------


def test_add_and_list_takes_newest_first(store, scene):
    render_id = render_in(store, scene["id"], "running")  # ticks 4, 5
    shot = scene["shots"][0]
    first = store.takes.add(
        shot, render_id, video_path="media/projects/1/r/shot_01.mp4", caption="Wide shot.", thumbnail_path="t/1.png"
    )  # tick 6
    assert first == TakeRecord(
        1, shot, render_id, "media/projects/1/r/shot_01.mp4", "t/1.png", "Wide shot.", False, seconds(6)
    )
    second = store.takes.add(shot, render_id, video_path="media/projects/1/r2/shot_01.mp4", caption="Wide shot.")
    assert second.thumbnail_path is None
    assert store.takes.list_for_shot(shot) == [second, first]
    assert store.takes.list_for_shot(scene["shots"][1]) == []


def test_take_refusals(store, scene):
    render_id = render_in(store, scene["id"], "running")
    other_scene = store.scenes.add(store.scenes.get(scene["id"]).scene.project_id).id
    foreign_shot = store.shots.add(other_scene).id
    with pytest.raises(StorageValidationError, match="is in scene") as caught:
        store.takes.add(foreign_shot, render_id, video_path="a.mp4", caption="")
    assert caught.value.field == "shot_id"
    with pytest.raises(MediaPathError) as caught:
        store.takes.add(scene["shots"][0], render_id, video_path="/abs/a.mp4", caption="")
    assert caught.value.field == "video_path"
    with pytest.raises(MediaPathError) as caught:
        store.takes.add(scene["shots"][0], render_id, video_path="a.mp4", caption="", thumbnail_path="../t.png")
    assert caught.value.field == "thumbnail_path"
    with pytest.raises(StorageValidationError) as caught:
        store.takes.add(scene["shots"][0], 404, video_path="a.mp4", caption="")
    assert caught.value.field == "render_id"


def test_one_selected_take_per_shot(store, scene):
    shot_a, shot_b = scene["shots"]
    first_render = render_in(store, scene["id"], "done")
    second_render = render_in(store, scene["id"], "running")
    a1, b1 = (store.takes.add(s, first_render, video_path=f"{s}-1.mp4", caption="c") for s in (shot_a, shot_b))
    a2 = store.takes.add(shot_a, second_render, video_path="a-2.mp4", caption="c")
    assert store.takes.selected_for_scene(scene["id"]) == {shot_a: None, shot_b: None}

    store.takes.select(a1.id)
    store.takes.select(b1.id)
    assert store.takes.select(a2.id).selected
    assert [(t.id, t.selected) for t in store.takes.list_for_shot(shot_a)] == [(a2.id, True), (a1.id, False)]
    selected = store.takes.selected_for_scene(scene["id"])
    assert list(selected) == [shot_a, shot_b]
    assert (selected[shot_a].id, selected[shot_b].id) == (a2.id, b1.id)

    store.takes.select(a1.id)
    store.takes.select(a1.id)  # selecting the selected take again changes nothing
    assert [(t.id, t.selected) for t in store.takes.list_for_shot(shot_a)] == [(a2.id, False), (a1.id, True)]
    assert store.takes.selected_for_scene(scene["id"])[shot_b].id == b1.id


def test_deleting_a_shot_deletes_its_takes(store, scene):
    render_id = render_in(store, scene["id"], "running")
    store.takes.add(scene["shots"][0], render_id, video_path="a.mp4", caption="c")
    kept = store.takes.add(scene["shots"][1], render_id, video_path="b.mp4", caption="c")
    store.shots.delete(scene["shots"][0])
    assert store.takes.selected_for_scene(scene["id"]) == {scene["shots"][1]: None}
    assert store.takes.list_for_shot(scene["shots"][1]) == [kept]
