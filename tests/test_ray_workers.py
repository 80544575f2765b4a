"""Render workers as Ray actors: a real local Ray cluster, two actors on the tiny checkpoint.

One cluster (`ray.init(num_cpus=2)`) and one pool of two CPU actors (one torch thread each)
serve the whole module: starting them costs seconds, so the tests share them and order
matters only in that the last one (served through the app) stops the pool.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import ray
from browser import launched
from gradio_client import Client
from queue_helpers import make_scene, wait_until

from storage.workers import HEARTBEAT_TIMEOUT_S
from studio.renders import RenderRequest
from studio.services import StudioSettings, build_services
from studio.ui import views

SHOTS = ("Boats rock.", "A rope is tied.")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def services(cluster, tmp_path_factory):
    settings = StudioSettings(
        data_dir=tmp_path_factory.mktemp("ray-data"), device="cpu", workers="ray", ray_workers=2, worker_threads=1
    )
    built = build_services(settings)
    built.start_workers()
    built.worker.wait_until_serving(timeout_s=180)
    yield built
    built.close()






def assert_done_once_with_intact_takes(services, render_id: int) -> None:
    """Done, with exactly one take per shot (a job run twice would file two), every file on disk."""
    storage = services.storage
    render = storage.renders.get(render_id)
    assert render.status == "done", (render.status, render.error)
    takes = [t for s in storage.scenes.get(render.scene_id).shots for t in storage.takes.list_for_shot(s.id)]
    mine = [t for t in takes if t.render_id == render_id]
    assert len(mine) == len(SHOTS) and len({t.shot_id for t in mine}) == len(SHOTS)
    for take in mine:
        assert storage.media.path(take.video_path).stat().st_size > 0
        assert storage.media.path(take.thumbnail_path).is_file()
    assert storage.media.path(render.latents_path).is_file() and storage.media.path(render.scene_path).is_file()


def test_each_actor_registers_its_device_model_and_memory_preset(services):
    workers = services.storage.workers.live()
    assert len(workers) == 2 and {w.pid for w in workers} == {i.pid for i in services.worker.identities.values()}
    assert os.getpid() not in {w.pid for w in workers}  # the actors are processes of their own
    info = services.engine.info
    assert {(w.device, w.model, w.memory) for w in workers} == {("cpu", info.model_name, info.memory.mode)}
    panel = views.workers_markdown(services.storage)
    assert panel.startswith("**Render workers (2):**") and all(w.label in panel for w in workers)


def test_killing_an_actor_mid_job_interrupts_that_job_and_the_other_actor_finishes_the_rest(services):
    storage = services.storage
    scene_id = make_scene(services, "Killed actor", SHOTS)
    long_job = services.renders.enqueue(RenderRequest(scene_id, steps=200, seed=1))[0]
    services.worker.wake()
    wait_until(lambda: storage.renders.get(long_job.id).progress > 0, "the long job runs")
    victim = storage.workers.get(storage.renders.get(long_job.id).worker_id)
    rest = [j.id for j in services.renders.enqueue(RenderRequest(scene_id, steps=2, seed=10), takes=3)]
    services.worker.wake()

    killed_at = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    wait_until(lambda: storage.renders.get(long_job.id).status != "running", "the killed job is noticed")
    noticed_s = time.monotonic() - killed_at
    assert noticed_s < HEARTBEAT_TIMEOUT_S  # Ray's death notice, before the heartbeat would tell
    stranded = storage.renders.get(long_job.id)
    assert stranded.status == "interrupted" and "died mid-render" in stranded.error
    assert storage.workers.get(victim.id).ended_at is not None

    for render_id in rest:
        wait_until(lambda render_id=render_id: storage.renders.get(render_id).status == "done", "the rest is done")
        assert_done_once_with_intact_takes(services, render_id)
    assert storage.renders.get(long_job.id).status == "interrupted"  # never picked up again behind the user's back
    assert {storage.renders.get(i).worker_id for i in rest} <= {w.id for w in storage.workers.live()} | {victim.id}

    # Ray restarts the actor: a new process, a new worker row, claiming again.
    wait_until(lambda: len(storage.workers.live()) == 2, "the killed actor is back")
    assert victim.pid not in {w.pid for w in storage.workers.live()}
    retried = services.renders.retry(long_job.id)
    services.worker.wake()
    wait_until(lambda: storage.renders.get(retried.id).status not in ("queued", "running"), "the retry ends", 300)
    assert storage.renders.get(retried.id).seed == long_job.seed
    assert_done_once_with_intact_takes(services, retried.id)


def test_six_jobs_from_two_clients_each_run_exactly_once_on_both_actors(services):
    scene_id = make_scene(services, "Two clients", SHOTS)
    with launched(services) as url:  # the app's /render endpoint, as two directors' pages call it
        first, second = Client(url, verbose=False), Client(url, verbose=False)
        ids = []
        for seed in range(3):
            ids.append(first.predict(scene_id, 6, seed, api_name="/render")[0])
            ids.append(second.predict(scene_id, 6, 100 + seed, api_name="/render")[0])
        for render_id in ids:
            assert services.worker.wait_for(render_id, timeout_s=300)
        cards = {card["id"]: card for card in first.predict(api_name="/jobs")["jobs"]}
    rows = [services.storage.renders.get(i) for i in ids]
    for row in rows:
        assert_done_once_with_intact_takes(services, row.id)
    assert len({row.worker_id for row in rows}) == 2  # both actors served the queue
    for row in rows:
        assert cards[row.id]["where"] == f"on {services.storage.workers.get(row.worker_id).label}"
