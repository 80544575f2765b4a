"""Storage: the render state machine, start-up recovery, and takes with their selection."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from storage import (
    InvalidTransitionError,
    MediaPathError,
    RenderRecord,
    StorageValidationError,
    TakeRecord,
    WorkerRecord,
    build_storage,
)
from storage.models import Render
from storage.renders import INTERRUPTED_MESSAGE, _apply_transition
from storage.workers import HEARTBEAT_TIMEOUT_S

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


# --- workers and claims -----------------------------------------------------------------


def register(store, host: str = "gpu-1", pid: int = 42):
    return store.workers.register(host=host, pid=pid, device="cuda:0", model="HoloCine", memory="high")


def test_claim_next_takes_the_oldest_and_records_the_worker(store, scene):
    worker = register(store)
    first, second = (render_in(store, scene["id"], "queued") for _ in range(2))
    claimed = store.renders.claim_next(worker.id)
    assert (claimed.id, claimed.status, claimed.worker_id) == (first, "running", worker.id)
    assert store.renders.claim_next().id == second and store.renders.get(second).worker_id is None
    assert store.renders.claim_next(worker.id) is None


def test_racing_workers_claim_every_job_exactly_once(store, scene):
    """Four threads on their own connections drain twenty jobs: no job claimed twice, none left."""
    workers = [register(store, pid=pid) for pid in range(4)]
    jobs = {render_in(store, scene["id"], "queued") for _ in range(20)}
    claims: dict[str, list[int]] = {w.id: [] for w in workers}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(workers))

    def drain(worker_id: str) -> None:
        try:
            barrier.wait()
            while (record := store.renders.claim_next(worker_id)) is not None:
                claims[worker_id].append(record.id)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=drain, args=(w.id,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    claimed = [render_id for ids in claims.values() for render_id in ids]
    assert sorted(claimed) == sorted(jobs)  # each exactly once
    for worker_id, ids in claims.items():
        assert all(store.renders.get(i).worker_id == worker_id for i in ids)


def test_ending_a_dead_worker_ends_its_row_and_interrupts_only_its_running_jobs(store, scene):
    dead, alive = register(store, pid=1), register(store, pid=2)
    mine = render_in(store, scene["id"], "queued")
    store.renders.claim_next(dead.id)
    theirs = render_in(store, scene["id"], "queued")
    store.renders.claim_next(alive.id)
    finished = render_in(store, scene["id"], "queued")
    store.renders.claim_next(dead.id)
    store.renders.transition(finished, "done")
    before = {i: store.renders.get(i) for i in (theirs, finished)}

    assert store.renders.end_dead_worker(dead.id, "process gone", "worker gpu-1 died") == [mine]
    interrupted = store.renders.get(mine)
    assert (interrupted.status, interrupted.error, interrupted.worker_id) == ("interrupted", "worker gpu-1 died", dead.id)
    ended = store.workers.get(dead.id)
    assert ended.ended_at is not None and ended.end_reason == "process gone"  # in the same transaction
    assert store.workers.get(alive.id).ended_at is None
    assert {i: store.renders.get(i) for i in (theirs, finished)} == before
    assert store.renders.end_dead_worker(dead.id, "heartbeat lost", "again") == []
    assert store.workers.get(dead.id).end_reason == "process gone"  # ends once
    with pytest.raises(InvalidTransitionError):  # the dead worker's late report is refused: it no longer runs it
        store.renders.set_progress(mine, 0.5)


def test_workers_beat_end_once_and_fall_silent(tmp_path, db_url):
    now = [T0]
    store = build_storage(tmp_path, database_url=db_url, clock=lambda: now[0])
    try:
        worker = register(store)
        assert worker == WorkerRecord(worker.id, "gpu-1", 42, "cuda:0", "HoloCine", "high", T0, T0, None, None)
        assert worker.label == "gpu-1 (pid 42) · cuda:0"
        quiet = register(store, host="gpu-2")
        now[0] = T0 + timedelta(seconds=HEARTBEAT_TIMEOUT_S - 1)
        assert store.workers.heartbeat(worker.id).heartbeat_at == now[0]
        now[0] = T0 + timedelta(seconds=HEARTBEAT_TIMEOUT_S + 1)
        assert [w.id for w in store.workers.live()] == [worker.id]
        assert [w.id for w in store.workers.silent()] == [quiet.id]
        ended = store.workers.end(quiet.id, "heartbeat lost")
        assert (ended.ended_at, ended.end_reason) == (now[0], "heartbeat lost")
        assert store.workers.end(quiet.id, "stopped").end_reason == "heartbeat lost"  # ends once
        assert store.workers.heartbeat(quiet.id).heartbeat_at == T0  # an ended worker stays ended
        assert store.workers.silent() == []
    finally:
        store.close()


def test_recovery_spares_a_live_workers_job_and_interrupts_a_silent_ones(tmp_path, db_url):
    now = [T0]
    store = build_storage(tmp_path, database_url=db_url, clock=lambda: now[0])
    try:
        scene_id = store.scenes.add(store.projects.create("Harbour").id).id
        live, silent = register(store, pid=1), register(store, pid=2)
        jobs = [store.renders.create(scene_id, "render", {}, seed=0).id for _ in range(3)]
        store.renders.claim_next(live.id)
        store.renders.claim_next(silent.id)
        store.renders.claim_next()  # a script's own claim: no worker beats for it
        now[0] = T0 + timedelta(seconds=HEARTBEAT_TIMEOUT_S + 1)
        store.workers.heartbeat(live.id)
        assert store.recover() == 2
        assert [store.renders.get(i).status for i in jobs] == ["running", "interrupted", "interrupted"]
    finally:
        store.close()
