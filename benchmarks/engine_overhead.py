"""The engine's denoising step vs stock diffusers `WanPipeline` on the same components (full attention).

Both pipelines get the tiny checkpoint's base experts, the same prompt, seed, sigmas and
size; each step is timed inside its own loop (our `Progress` events, stock's step
callback), runs alternate so machine drift hits both, and the median step is compared.
With one shot the engine does exactly stock's math plus its per-step preview; with
three shots it adds window cross-attention.

    python benchmarks/engine_overhead.py [--height 256 --width 448 --steps 10 --repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from diffusers import WanPipeline

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Progress, RenderSettings, SceneSpec, Shot, WeightsSpec, load_pipeline  # noqa: E402
from engine.reference import stock_latents, stock_wan_pipeline  # noqa: E402
from engine.weights import TINY_WEIGHTS  # noqa: E402

SCENES = {
    "1 shot": SceneSpec("A lighthouse on a cliff at dusk.", (Shot("Slow push-in on the lighthouse."),)),
    "3 shots": SceneSpec(
        "A lighthouse on a cliff at dusk.",
        (Shot("Wide shot of the cliff."), Shot("Close-up of the lamp turning."), Shot("Waves below.")),
    ),
}


def engine_steps(pipe, scene: SceneSpec, settings: RenderSettings) -> list[float]:
    marks = [time.perf_counter()]
    for event in pipe.generate(scene, settings):
        if isinstance(event, Progress):
            marks.append(time.perf_counter())
    return [b - a for a, b in zip(marks[1:], marks[2:])]  # skip step 1 (includes prompt encoding)


def stock_steps(stock: WanPipeline, scene: SceneSpec, settings: RenderSettings, frames: int) -> list[float]:
    marks: list[float] = []

    def on_step(_pipe, _i, _t, kwargs):
        marks.append(time.perf_counter())
        return kwargs

    stock_latents(stock, scene, frames, settings, callback_on_step_end=on_step)
    return [b - a for a, b in zip(marks, marks[1:])]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=448)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    pipe, info = load_pipeline(WeightsSpec(str(TINY_WEIGHTS), dit="none"), device="cpu", attention="full")
    stock = stock_wan_pipeline(pipe, TINY_WEIGHTS)
    settings = RenderSettings(steps=args.steps, seed=0)
    print(f"{info.model_name}, full attention, {args.height}x{args.width}, 33 frames, {args.steps} steps, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    for name, scene in SCENES.items():
        scene = SceneSpec(scene.global_caption, scene.shots, height=args.height, width=args.width)
        resolved, layout = pipe.resolve_scene(scene, settings)
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours += engine_steps(pipe, resolved, settings)
            theirs += stock_steps(stock, resolved, settings, layout.num_frames)
        ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
        print(f"{name}: engine {ours_s * 1e3:.1f} ms/step, stock WanPipeline {theirs_s * 1e3:.1f} ms/step, "
              f"ratio {ours_s / theirs_s:.3f} (goal <= 1.05)")  # fmt: skip


if __name__ == "__main__":
    main()
