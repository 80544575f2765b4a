"""What the render queue costs, measured side by side in one run on the tiny model.

1. A job's wall time through the studio's worker (enqueue -> claimed by the worker thread ->
   run -> row done) against the same job's work called directly in this thread: the
   pipeline's `generate` alone, and the studio's `run` (the same filing of takes and files,
   without the queue). Runs alternate; medians are compared.
2. The latency of a storyboard save (one shot field, through the API the page uses) while a
   render runs against idle: p50 and p95 of each.

    python benchmarks/render_queue.py [--repeats 5] [--steps 10] [--saves 200]
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

from studio.jobs import JobSpec  # noqa: E402
from studio.renders import RenderRequest  # noqa: E402
from studio.services import StudioSettings, build_services  # noqa: E402
from studio.ui.api import StudioAPI  # noqa: E402


def scene(services) -> int:
    storage = services.storage
    project = storage.projects.create("Queue benchmark")
    made = storage.scenes.add(project.id, description="A harbour at dusk", fps=8, width=160, height=96)
    for action in ("Boats rock.", "A gull lands.", "Waves break."):
        storage.shots.add(made.id, action=action, duration_s=1.0)
    return made.id


def through_worker(services, request: RenderRequest) -> float:
    started = time.perf_counter()
    job = services.renders.enqueue(request)[0]
    services.worker.wake()
    assert services.worker.wait_for(job.id, timeout_s=600)  # woken by the worker, no polling
    return time.perf_counter() - started


def direct_pipeline(services, request: RenderRequest) -> float:
    spec = services.renders.plan(request)[1]
    started = time.perf_counter()
    for _ in services.engine.pipeline.generate(spec.scene, spec.settings):
        pass
    return time.perf_counter() - started


def direct_run(services, request: RenderRequest) -> float:
    started = time.perf_counter()
    for _ in services.renders.run(request):
        pass
    return time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def save_latencies(api: StudioAPI, services, scene_id: int, count: int, while_rendering: bool) -> list[float]:
    """`count` saves of one shot's notes, each against the version the last one returned."""
    storage = services.storage
    shot = storage.scenes.get(scene_id).shots[0]
    version = shot.version
    if while_rendering:
        job = services.renders.enqueue(RenderRequest(scene_id, steps=200, seed=9))[0]
        services.worker.wake()
        while storage.renders.get(job.id).progress == 0:
            time.sleep(0.01)
    times = []
    for n in range(count):
        started = time.perf_counter()
        version = api.save_shot(shot.id, version, {"notes": f"take note {n}"})
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(0.01)
    if while_rendering:
        services.renders.cancel(job.id)
        while storage.renders.get(job.id).status == "running":
            time.sleep(0.05)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--saves", type=int, default=200)
    args = parser.parse_args()
    services = build_services(StudioSettings(data_dir=Path(tempfile.mkdtemp()), device="cpu"))
    services.worker.start()
    scene_id = scene(services)
    request = RenderRequest(scene_id, steps=args.steps, seed=1)
    direct_run(services, request)  # warm-up: first-call costs (allocations, codecs) stay out of the figures
    times: dict[str, list[float]] = {"worker": [], "pipeline": [], "run": []}
    for _ in range(args.repeats):
        times["worker"].append(through_worker(services, request))
        times["pipeline"].append(direct_pipeline(services, request))
        times["run"].append(direct_run(services, request))
    median = {name: statistics.median(values) for name, values in times.items()}
    spec = JobSpec.of(services.storage.renders.list_for_scene(scene_id)[0])
    print(
        f"tiny model, {spec.layout.num_shots} shots, {spec.layout.num_frames} frames at "
        f"{spec.scene.width}x{spec.scene.height}, {args.steps} steps, {args.repeats} runs each, "
        f"{os.cpu_count()} CPUs, torch threads {__import__('torch').get_num_threads()}"
    )
    print(f"  job through the worker       {median['worker']:.3f} s")
    print(
        f"  pipeline.generate directly   {median['pipeline']:.3f} s   worker / direct = "
        f"{median['worker'] / median['pipeline']:.3f} (goal <= 1.10)"
    )
    print(
        f"  renders.run in this thread   {median['run']:.3f} s   worker / run = "
        f"{median['worker'] / median['run']:.3f} (the queue alone)"
    )
    api = StudioAPI(services)
    idle = save_latencies(api, services, scene_id, args.saves, while_rendering=False)
    busy = save_latencies(api, services, scene_id, args.saves, while_rendering=True)
    print(f"  storyboard save, idle        p50 {percentile(idle, 0.5):6.2f} ms  p95 {percentile(idle, 0.95):6.2f} ms")
    print(
        f"  storyboard save, rendering   p50 {percentile(busy, 0.5):6.2f} ms  p95 {percentile(busy, 0.95):6.2f} ms"
        f"   p95 ratio {percentile(busy, 0.95) / percentile(idle, 0.95):.2f} (goal < 2)"
    )
    services.close()


if __name__ == "__main__":
    main()
