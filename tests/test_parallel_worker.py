"""A studio render worker spanning 2 ranks (Ulysses, gloo on the CPU): exact latents, cancel, failures.

One worker group (a parent here, two spawned rank processes on the tiny checkpoint) serves the
whole module; the tests queue jobs as the studio does and read rows and files. The group is
started with a rank setup the test installs in each rank process: it counts every transformer
pass to a file per rank, and on rank 1 raises a real exception inside the engine call once a
trigger file exists (that rank's own forward hook; nothing of torch.distributed is replaced).
"""

from __future__ import annotations

import os
import signal
import threading
from functools import partial
from pathlib import Path

import pytest
from queue_helpers import make_scene, wait_until
from safetensors.torch import load_file

from app import main as app_main
from engine import SceneFinished
from engine.errors import BackendUnavailableError
from studio.jobs import JobSpec
from studio.parallel_worker import ParallelRenderWorker
from studio.renders import EditRequest, RenderRequest
from studio.services import StudioSettings, build_services

TOLERANCE = 1e-5  # fp32
SHOTS = ("Boats rock.", "A rope is tied.")
INJECTED = "CUDA out of memory (injected by the test on rank 1)"


def rank_setup(folder: str, rank: int, pipe) -> None:
    """Runs in each rank once its pipeline is ready: count passes; rank 1 fails once when asked."""
    passes, trigger = Path(folder) / f"rank{rank}.passes", Path(folder) / "fail-rank-1"

    def before_pass(_module, _args):
        if rank == 1 and trigger.exists():
            trigger.unlink()  # once: the restarted group renders the next job
            raise RuntimeError(INJECTED)
        with passes.open("a") as file:
            file.write(".")

    for model in (m for m in (pipe.transformer, pipe.transformer_2) if m is not None):
        model.register_forward_pre_hook(before_pass)


@pytest.fixture(scope="module")
def hooks(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rank-hooks")


@pytest.fixture(scope="module")
def services(tmp_path_factory, hooks):
    settings = StudioSettings(
        data_dir=tmp_path_factory.mktemp("ulysses-data"), device="cpu", parallel_gpus=2, worker_threads=1
    )
    built = build_services(settings)
    assert isinstance(built.worker, ParallelRenderWorker)  # what app.py would start
    built.worker = ParallelRenderWorker(
        settings, built.storage, built.engine, built.supervisor, setup=partial(rank_setup, str(hooks)), poll_s=0.2
    )
    built.start_workers()
    yield built
    built.close()




def queue(services, request) -> int:
    render_id = services.renders.enqueue(request)[0].id
    services.worker.wake()
    return render_id




def ended(services, render_id: int):
    wait_until(lambda: services.storage.renders.get(render_id).status not in ("queued", "running"), f"{render_id} ends")
    return services.storage.renders.get(render_id)


def one_process_latents(services, render_id: int):
    """The same JobSpec's engine call on this process's own pipeline (what a 1-process worker runs)."""
    record = services.storage.renders.get(render_id)
    read = services.renders.picture_reader(services.storage.scenes.get(record.scene_id).scene.project_id)
    call = services.renders.engine_call(JobSpec.of(record), read)
    events = call.events(services.engine.pipeline, threading.Event())
    return next(e for e in events if isinstance(e, SceneFinished)).latents


def takes_of(services, render_id: int) -> list:
    storage = services.storage
    scene_id = storage.renders.get(render_id).scene_id
    return [
        t
        for s in storage.scenes.get(scene_id).shots
        for t in storage.takes.list_for_shot(s.id)
        if t.render_id == render_id
    ]


def test_two_ranks_give_the_one_process_latents_and_file_each_take_once(services):
    scene_id = make_scene(services, "Exact", SHOTS)
    render_id = queue(services, RenderRequest(scene_id, steps=2, seed=3))
    assert ended(services, render_id).status == "done"
    shot = services.storage.scenes.get(scene_id).shots[1]
    vary_id = queue(services, EditRequest(scene_id, "vary", shot.id, strength=0.5, steps=2, seed=5))
    for job, made in ((render_id, len(SHOTS)), (vary_id, 1)):
        record = ended(services, job)
        assert record.status == "done", record.error
        written = load_file(str(services.storage.media.path(record.latents_path)))["latents"]
        diff = (written - one_process_latents(services, job)).abs().max().item()
        print(f"{record.kind}: max abs diff {diff:.3g}")
        assert diff <= TOLERANCE
        takes = takes_of(services, job)
        assert len(takes) == made and len({t.shot_id for t in takes}) == made  # filed once, by rank 0 alone


def test_a_scene_whose_tokens_do_not_split_fails_naming_num_frames_and_the_group_serves_on(services):
    identity = services.worker.identity
    render_id = queue(services, RenderRequest(make_scene(services, "Odd", SHOTS, width=144, height=48), steps=2))
    record = ended(services, render_id)
    assert record.status == "failed"
    assert record.error.startswith("SceneValidationError: num_frames: Ulysses parallelism over 2 processes")
    assert services.worker.identity == identity  # refused before any rank started: no restart


def test_a_cancel_stops_every_rank_at_the_same_step(services, hooks):
    for passes in hooks.glob("*.passes"):
        passes.unlink()
    render_id = queue(services, RenderRequest(make_scene(services, "Cancel", SHOTS), steps=200, guidance_scale=1.0))
    wait_until(lambda: services.storage.renders.get(render_id).progress > 0, "the job runs")
    assert services.renders.cancel(render_id)
    record = ended(services, render_id)
    assert record.status == "cancelled" and record.message.startswith("Cancelled after step")
    step = int(record.message.split()[3].rstrip(";"))
    # One transformer pass per step (CFG 1) on each rank: both ran exactly the steps before the cancel.
    counts = [len((hooks / f"rank{rank}.passes").read_text()) for rank in (0, 1)]
    assert counts == [step, step] and 0 < step < 200
    after = queue(services, RenderRequest(make_scene(services, "After cancel", SHOTS), steps=2))
    assert ended(services, after).status == "done"  # the ranks are still in step


def test_an_exception_on_rank_1_fails_the_job_with_its_message_and_the_next_job_renders(services, hooks):
    old = services.worker.identity
    (hooks / "fail-rank-1").touch()
    scene_id = make_scene(services, "Failure", SHOTS)
    doomed, nxt = queue(services, RenderRequest(scene_id, steps=2)), queue(services, RenderRequest(scene_id, steps=2))
    record = ended(services, doomed)
    assert record.status == "failed"
    assert record.error == f"rank 1: RuntimeError: {INJECTED}"
    assert ended(services, nxt).status == "done"
    assert services.storage.workers.get(old.id).ended_at is not None  # the restarted group is a new worker
    assert services.worker.identity.id != old.id


def test_killing_rank_1_interrupts_its_job_and_the_group_serves_the_next(services):
    scene_id = make_scene(services, "Killed", SHOTS)
    long_job = queue(services, RenderRequest(scene_id, steps=200, guidance_scale=1.0))
    nxt = queue(services, RenderRequest(scene_id, steps=2))
    wait_until(lambda: services.storage.renders.get(long_job).progress > 0, "the long job runs")
    pid = services.worker.rank_pids[1]
    os.kill(pid, signal.SIGKILL)
    record = ended(services, long_job)
    assert record.status == "interrupted"
    assert f"rank 1 (pid {pid}) was killed by signal 9" in record.error
    assert ended(services, nxt).status == "done"


def test_heads_that_do_not_divide_are_refused_at_start_up_naming_the_option(tmp_path):
    with pytest.raises(BackendUnavailableError, match=r"--parallel-gpus 3: .* 2 heads do not divide by 3"):
        build_services(StudioSettings(data_dir=tmp_path, device="cpu", parallel_gpus=3))


def test_more_gpus_than_the_node_has_is_one_line_naming_the_option(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        app_main(["--parallel-gpus", "4", "--device", "auto", "--data-dir", str(tmp_path)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --parallel-gpus 4: this node has 0 GPU(s)") and err.count("\n") == 1
