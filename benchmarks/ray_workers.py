"""What Ray workers cost and give, measured side by side in one run on the tiny model.

1. Throughput: the same batch of short jobs through 1 Ray actor, then through 2 (jobs per
   minute, from the first enqueue to the last job done).
2. Overhead: one job's wall time (enqueue -> done) through a Ray actor against the studio's
   in-process worker thread, alternating, medians compared (goal: <= 1.10x).

On a CPU machine every actor (and the in-process worker) gets `--threads` torch threads, so
the figures compare the queue, not how torch splits cores; a GPU cluster scales by actors per
GPU (one each), not by threads.

    python benchmarks/ray_workers.py [--jobs 8] [--steps 4] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HOLOCINE_WEIGHTS", str(ROOT / "assets" / "tiny-holocine"))

import ray  # noqa: E402
import torch  # noqa: E402

from studio.renders import RenderRequest  # noqa: E402
from studio.services import Services, StudioSettings, build_services  # noqa: E402


def scene(services: Services) -> int:
    storage = services.storage
    made = storage.scenes.add(storage.projects.create("Ray benchmark").id, description="A harbour", fps=8, width=160, height=96)
    for action in ("Boats rock.", "A gull lands.", "Waves break."):
        storage.shots.add(made.id, action=action, duration_s=1.0)
    return made.id


def through(services: Services, scene_id: int, jobs: int, steps: int) -> float:
    """Seconds from queueing `jobs` jobs to the last one done."""
    started = time.perf_counter()
    queued = services.renders.enqueue(RenderRequest(scene_id, steps=steps, seed=1), takes=jobs)
    services.worker.wake()
    for job in queued:
        assert services.worker.wait_for(job.id, timeout_s=1200)
        assert services.storage.renders.get(job.id).status == "done"
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # the in-process worker gets what each actor gets
    data = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)

    def studio(workers: str, actors: int | None = None) -> Services:
        settings = StudioSettings(data, device="cpu", workers=workers, ray_workers=actors, worker_threads=args.threads)
        services = build_services(settings)
        services.start_workers()
        if workers == "ray":
            services.worker.wait_until_serving(timeout_s=300)
        return services

    local = studio("local")
    scene_id = scene(local)
    through(local, scene_id, 1, args.steps)  # warm-up: the first job pays one-off costs
    one_actor = studio("ray", 1)
    through(one_actor, scene_id, 1, args.steps)
    in_process, on_ray = [], []
    for _ in range(args.repeats):  # alternating, one job at a time, each runner idle but ready
        in_process.append(through(local, scene_id, 1, args.steps))
        on_ray.append(through(one_actor, scene_id, 1, args.steps))
    local.close()
    rate_one = args.jobs / through(one_actor, scene_id, args.jobs, args.steps) * 60
    one_actor.close()
    two_actors = studio("ray", 2)
    through(two_actors, scene_id, 2, args.steps)  # warm-up of the second actor
    rate_two = args.jobs / through(two_actors, scene_id, args.jobs, args.steps) * 60
    two_actors.close()
    ray.shutdown()

    local_s, ray_s = statistics.median(in_process), statistics.median(on_ray)
    print(f"machine: {os.cpu_count()} CPU cores, {args.threads} torch thread(s) per worker, tiny model, {args.steps} steps")
    print(f"throughput, {args.jobs} jobs: 1 actor {rate_one:.1f} jobs/min, 2 actors {rate_two:.1f} jobs/min"
          f" ({rate_two / rate_one:.2f}x)")  # fmt: skip
    print(f"one job: in-process worker {local_s:.2f} s, Ray actor {ray_s:.2f} s ({ray_s / local_s:.2f}x)")


if __name__ == "__main__":
    main()
