"""Renders as jobs: queued rows run by the studio's worker, whatever the pages do.

Real pieces throughout: the tiny checkpoint on the CPU, the studio's worker thread, two
gradio_client clients of a launched app, Debian's Chromium, and a studio process killed with
SIGKILL mid-render and started again.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest
import torch
from browser import chromium, launched
from gradio_client import Client
from killed_studio import kill_at_first_line
from playwright.sync_api import expect
from queue_helpers import make_scene, wait_until
from safetensors.torch import load_file

from engine.weights import REPO_ROOT, TINY_WEIGHTS, WEIGHTS_ENV
from studio.renders import EditRequest, RenderRequest
from studio.services import StudioSettings, build_services


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    built = build_services(StudioSettings(data_dir=tmp_path_factory.mktemp("jobs-data"), device="cpu"))
    yield built
    built.close()






def finished(services, render_id: int) -> bool:
    return services.storage.renders.get(render_id).status not in ("queued", "running")


def test_jobs_from_two_clients_run_one_at_a_time_in_queue_order_and_cancel(services):
    scene_id = make_scene(services, "Queue")
    with launched(services) as url:
        first, second = Client(url, verbose=False), Client(url, verbose=False)
        ids = [
            first.predict(scene_id, 3, 1, api_name="/render")[0],
            second.predict(scene_id, 3, 2, api_name="/render")[0],
            first.predict(scene_id, 3, 3, api_name="/render")[0],
        ]
        doomed = second.predict(scene_id, 3, 4, api_name="/render")[0]
        assert second.predict(doomed, api_name="/cancel") is True  # queued: it never starts
        long_job = first.predict(scene_id, 200, 5, api_name="/render")[0]
        wait_until(lambda: services.storage.renders.get(long_job).progress > 0, "the long job runs")
        assert first.predict(long_job, api_name="/cancel") is True
        wait_until(lambda: finished(services, long_job), "the long job stops")
        states = list(second.submit(ids[-1], api_name="/follow"))
    assert states[-1]["status"] == "done"
    rows = [services.storage.renders.get(i) for i in ids]
    assert [r.status for r in rows] == ["done", "done", "done"]
    for earlier, later in zip(rows, rows[1:]):
        assert earlier.finished_at <= later.started_at  # one at a time, in the order they were queued
    cancelled = services.storage.renders.get(doomed)
    assert (cancelled.status, cancelled.started_at) == ("cancelled", None)
    stopped = services.storage.renders.get(long_job)
    assert stopped.status == "cancelled" and 0 < stopped.progress < 1  # between steps, long before its end
    assert stopped.message.startswith("Cancelled after step")
    assert not any(t.render_id == long_job for s in services.storage.scenes.get(scene_id).shots
                   for t in services.storage.takes.list_for_shot(s.id))  # fmt: skip


def test_a_batch_of_three_variations_makes_three_takes_with_consecutive_seeds(services):
    scene_id = make_scene(services, "Batch")
    for _ in services.renders.run(RenderRequest(scene_id, steps=2, seed=3)):
        pass
    shot = services.storage.scenes.get(scene_id).shots[1]
    selected = next(t for t in services.storage.takes.list_for_shot(shot.id) if t.selected)
    jobs = services.renders.enqueue(EditRequest(scene_id, "vary", shot.id, strength=0.5, steps=2, seed=10), takes=3)
    assert [job.seed for job in jobs] == [10, 11, 12]
    services.worker.start()
    for job in jobs:
        wait_until(lambda job=job: finished(services, job.id), f"job {job.id} ends")
    takes = services.storage.takes.list_for_shot(shot.id)
    new = [t for t in takes if t.render_id in {job.id for job in jobs}]
    assert len(new) == 3 and sorted(services.storage.renders.get(t.render_id).seed for t in new) == [10, 11, 12]
    assert next(t for t in takes if t.selected) == selected  # the director's choice stays
    for other in services.storage.scenes.get(scene_id).shots:
        if other.id != shot.id:
            assert len(services.storage.takes.list_for_shot(other.id)) == 1  # held shots get no takes


def test_a_page_that_starts_a_render_and_closes_still_gets_its_takes(services):
    scene_id = make_scene(services, "Closed tab")
    with launched(services) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1200})
        page.goto(url)
        page.locator("#project-picker input").click()
        page.get_by_role("option", name="Closed tab").click()
        expect(page.locator("#board .card[data-shot-id]")).to_have_count(3, timeout=20_000)
        page.locator("#render").click()
        wait_until(lambda: services.storage.renders.list_for_scene(scene_id), "the job is queued", 20)
        page.close()  # the director closes the laptop
        job = services.storage.renders.list_for_scene(scene_id)[0]
        wait_until(lambda: finished(services, job.id), "the job ends with no page open", 300)
    assert services.storage.renders.get(job.id).status == "done"
    for shot in services.storage.scenes.get(scene_id).shots:
        takes = services.storage.takes.list_for_shot(shot.id)
        assert [t.render_id for t in takes] == [job.id] and takes[0].selected


def test_a_page_opened_mid_render_follows_its_previews_and_clips_in_order(services):
    scene_id = make_scene(services, "Second page")
    with launched(services) as url, chromium() as browser:
        job = services.renders.enqueue(RenderRequest(scene_id, steps=200, seed=1))[0]  # long enough to join
        services.worker.wake()
        wait_until(lambda: services.storage.renders.get(job.id).progress > 0.05, "the render is under way")
        page = browser.new_page(viewport={"width": 1500, "height": 1200})
        page.goto(url)
        page.locator("#project-picker input").click()
        page.get_by_role("option", name="Second page").click()
        preview = page.locator("#board .card.rendering .picture img[src*='previews']")
        expect(preview).to_have_count(3, timeout=30_000)  # every shot's live x0 estimate, re-attached
        order: list[int] = []
        deadline = time.monotonic() + 300
        while len(order) < 3:
            assert time.monotonic() < deadline, f"only shots {order} arrived"
            badges = page.locator("#board .card .badge").all_inner_texts()
            order += [i + 1 for i, text in enumerate(badges) if text == "rendered" and i + 1 not in order]
            time.sleep(0.05)
        expect(page.locator("#board .card .badge", has_text="rendered")).to_have_count(3)
        page.close()
    assert order == [1, 2, 3]
    assert services.storage.renders.get(job.id).status == "done"


# A studio process that runs the worker and stops, still inside the job, once its first shot is filed.
CHILD = """
import sys, time
from pathlib import Path
from studio.renders import RenderRequest
from studio.services import StudioSettings, build_services

services = build_services(StudioSettings(data_dir=Path(sys.argv[1]), device="cpu"))
scene_id = int(sys.argv[2])
job = services.renders.enqueue(RenderRequest(scene_id=scene_id, steps=4, seed=21))[0]
record = services.storage.renders.claim(job.id)
for update in services.renders.execute(record):
    if update.clip is not None:
        print("CLIP", job.id, flush=True)
        time.sleep(600)  # killed here: shots 2 and 3, the scene video and the latents never come
"""


def test_kill_during_a_render_then_retry_reproduces_an_uninterrupted_render(tmp_path):
    data = tmp_path / "data"
    before = build_services(StudioSettings(data_dir=data, device="cpu"))
    scene_id = make_scene(before, "Killed")
    earlier = [u for u in before.renders.run(RenderRequest(scene_id, steps=2, seed=7))][-1].render.id
    chosen = {
        s.id: before.storage.takes.selected_for_scene(scene_id)[s.id] for s in before.storage.scenes.get(scene_id).shots
    }
    rows_before = {r.id: r for r in before.storage.renders.list_for_scene(scene_id)}
    before.close()

    line = kill_at_first_line(CHILD, str(data), str(scene_id))
    assert line.startswith("CLIP"), line
    killed = int(line.split()[1])

    after = build_services(StudioSettings(data_dir=data, device="cpu"))  # the next start
    try:
        storage = after.storage
        job = storage.renders.get(killed)
        assert job.status == "interrupted" and after.recovered == 1
        for render_id, row in rows_before.items():
            assert storage.renders.get(render_id) == row  # every earlier row intact
        assert storage.takes.selected_for_scene(scene_id) == chosen  # and the director's choices
        shots = storage.scenes.get(scene_id).shots
        kept = [t for s in shots for t in storage.takes.list_for_shot(s.id) if t.render_id == killed]
        assert [t.shot_id for t in kept] == [shots[0].id]  # the clip written before the kill is a take
        for shot in shots:
            for take in storage.takes.list_for_shot(shot.id):
                assert storage.media.path(take.video_path).is_file()  # no row points at a missing file
        with sqlite3.connect(data / "studio.db") as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)

        retried = after.renders.retry(killed)
        assert (retried.seed, retried.settings) == (job.seed, job.settings)
        for _ in after.renders.execute(storage.renders.claim(retried.id)):
            pass
        again = after.renders.enqueue(RenderRequest(scene_id, steps=4, seed=21))[0]  # the same job, never stopped
        for _ in after.renders.execute(storage.renders.claim(again.id)):
            pass
        latents = [
            load_file(str(storage.media.path(storage.renders.get(i).latents_path)))["latents"]
            for i in (retried.id, again.id)
        ]
        assert torch.equal(*latents)
        assert storage.renders.get(earlier).status == "done"
    finally:
        after.close()


def _studio_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        cwd=REPO_ROOT,
        env={**os.environ, WEIGHTS_ENV: str(TINY_WEIGHTS)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_cli_queues_jobs_and_renders_them_with_wait(tmp_path):
    data = tmp_path / "data"
    made = build_services(StudioSettings(data_dir=data, device="cpu"))
    scene_id = make_scene(made, "Shell")
    for _ in made.renders.run(RenderRequest(scene_id, steps=2)):
        pass
    made.close()
    queued = _studio_cli("render", "Shell", "--data-dir", str(data), "--steps", "2", "--device", "cpu")
    assert queued.returncode == 0, queued.stderr
    (line,) = queued.stdout.splitlines()
    assert line == "queued render 2 (seed 0)"
    waited = _studio_cli(
        "render", "Shell", "--shot", "2", "--vary", "0.5", "--takes", "2", "--seed", "4", "--steps", "2",
        "--wait", "--data-dir", str(data), "--device", "cpu",
    )  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    lines = waited.stdout.splitlines()
    assert lines[:2] == ["queued render 3 (seed 4)", "queued render 4 (seed 5)"]
    assert [line.split(":")[0] for line in lines[2:]] == ["render 3", "render 4"]
    assert all(": done: Done in" in line for line in lines[2:])
    check = build_services(StudioSettings(data_dir=data, device="cpu"))
    try:
        renders = {r.id: r for r in check.storage.renders.list_for_scene(scene_id)}
        assert renders[2].status == "queued"  # no studio is running: it waits for one
        assert [(renders[i].kind, renders[i].status, renders[i].seed) for i in (3, 4)] == [
            ("vary", "done", 4),
            ("vary", "done", 5),
        ]
        shot = check.storage.scenes.get(scene_id).shots[1]
        assert sorted(t.render_id for t in check.storage.takes.list_for_shot(shot.id)) == [1, 3, 4]
    finally:
        check.close()
    refused = _studio_cli("render", "Shell", "--shot", "9", "--data-dir", str(data), "--device", "cpu")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == "error: shot: the scene has 3 shot(s); --shot must be 1..3"
