"""Evaluate a toy-world model on held-out scenes: caption adherence, cut accuracy, hidden-detail consistency.

    python scripts/evaluate_toy_world.py --weights assets/toy-holocine --scenes 60 --out runs/toy-eval.json

Scenes come from a seed the training data never used. Each is rendered through the engine
(the studio's path) and read back by `engine.toyworld.metrics`, whose heuristics score
1.0 on ground truth, so every shortfall is the model's. Printed as one Markdown table row.
`--videos FILE.npz` keeps the rendered videos; `--rescore` scores them again without rendering.
`--round-trip` scores the same scenes' ground truth passed through the weights' VAE instead:
the ceiling any DiT on that VAE can reach, scene for scene.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # only when run as `python scripts/...`: find `engine`
    sys.path.insert(0, str(REPO_ROOT))

from engine import RenderSettings, WeightsSpec, load_pipeline  # noqa: E402
from engine.toyworld import ToyScene, score_scene, toy_scenes  # noqa: E402
from engine.toyworld.metrics import ASPECTS  # noqa: E402
from engine.training.data import pixels_to_unit  # noqa: E402
from engine.video import frames_to_uint8  # noqa: E402

HELD_OUT_SEED = 20261127  # training draws from seed 0


def held_out_scenes(count: int, first: int = 0) -> list[ToyScene]:
    return list(itertools.islice(toy_scenes(HELD_OUT_SEED), first, first + count))


def render(
    weights: str,
    scenes: list[ToyScene],
    settings: RenderSettings,
    attention: str | None,
    summaries: bool = True,
    guidance_scale: float | None = None,
    device: str = "cpu",
) -> tuple[list[np.ndarray], dict]:
    """Each scene's video (uint8) through the engine, and what rendered them; CFG defaults to the card's."""
    pipe, info = load_pipeline(WeightsSpec(weights), device=device, attention=attention)
    settings = replace(
        settings, guidance_scale=pipe.defaults.guidance_scale if guidance_scale is None else guidance_scale
    )
    if not summaries:  # probe: the same trained weights with inter-shot summaries cut at inference
        pipe.shot_attention.summaries = False
    started = time.perf_counter()
    videos = [
        frames_to_uint8(pipe(scene.spec(), replace(settings, seed=settings.seed + index)).video)
        for index, scene in enumerate(scenes)
    ]
    return videos, {
        "weights": weights,
        "model": info.model_name,
        "attention": info.attention_mode
        + ("" if pipe.shot_attention.summaries else " (no summaries)")
        + ("" if pipe.shot_attention.windows else " (no window cross-attention)"),
        "settings": {k: settings.to_dict()[k] for k in ("steps", "guidance_scale", "shift", "seed", "step_cache")},
        "device": device,
        "seconds_per_scene": round((time.perf_counter() - started) / len(scenes), 2),
    }


@torch.no_grad()
def round_trip(weights: str, scenes: list[ToyScene], device: str = "cpu") -> tuple[list[np.ndarray], dict]:
    """Each scene's ground truth encoded and decoded by the weights' VAE, and what made them."""
    pipe, info = load_pipeline(WeightsSpec(weights), device=device)
    vae = pipe.vae
    videos = [
        frames_to_uint8(vae.decode(vae.encode(pixels_to_unit(scene.render()).to(device)).latent_dist.mode()).sample)
        for scene in scenes
    ]
    return videos, {"weights": weights, "model": f"VAE round trip of ground truth ({info.model_name})"}


def score(scenes: list[ToyScene], videos: list[np.ndarray]) -> dict:
    """Mean adherence per aspect, SCA and stripe consistency over the scenes."""
    scores = [score_scene(scene, video) for scene, video in zip(scenes, videos, strict=True)]
    return {
        "scenes": len(scenes),
        "adherence": {aspect: round(float(np.mean([s.adherence[aspect] for s in scores])), 4) for aspect in ASPECTS},
        "sca": round(float(np.mean([s.sca for s in scores])), 4),
        "stripe_consistency": round(float(np.mean([s.stripe_consistent for s in scores])), 4),
    }


def table_row(name: str, result: dict) -> str:
    a = result["adherence"]
    cells = [a["colour"], a["background"], a["shape"], a["framing"], a["position"], result["sca"]]
    return f"| {name} | " + " | ".join(f"{v:.2f}" for v in cells) + f" | {result['stripe_consistency']:.2f} |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=str(REPO_ROOT / "assets" / "toy-holocine"))
    parser.add_argument("--scenes", type=int, default=60)
    parser.add_argument(
        "--first-scene", type=int, default=0, help="start later in the held-out stream (chunks of one long run)"
    )
    parser.add_argument("--steps", type=int, default=RenderSettings.steps)
    parser.add_argument("--cfg", type=float, help="guidance scale (default: the model card's)")
    parser.add_argument("--shift", type=float, default=RenderSettings.shift)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step-cache", type=float, default=0.0, help="First Block Cache threshold (0 = off)")
    parser.add_argument("--attention", choices=["sparse", "full"], help="default: the model card's")
    parser.add_argument(
        "--no-summaries", action="store_true", help="cut inter-shot attention at inference (an inference-time probe)"
    )
    parser.add_argument("--device", default="cpu", help="where to render (cuda: the same scores within noise, faster)")
    parser.add_argument("--name", default="shipped model")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--videos", type=Path, help="an .npz to keep the rendered videos in, to score them again later")
    parser.add_argument(
        "--rescore", action="store_true", help="score the --videos already rendered, with today's metrics; no render"
    )
    parser.add_argument(
        "--round-trip",
        action="store_true",
        help="score the scenes' ground truth through the weights' VAE (the ceiling)",
    )
    args = parser.parse_args(argv)
    if args.rescore and not args.videos:
        parser.error("--rescore needs --videos")
    torch.manual_seed(0)
    settings = RenderSettings(
        steps=args.steps,
        seed=args.seed + args.first_scene,  # scene i renders with seed + i, however the run is chunked
        shift=args.shift,
        step_cache=args.step_cache,
        preview_every=0,
    )
    if args.rescore:
        stored = np.load(args.videos)
        videos = list(stored["videos"])
        rendered = json.loads(str(stored["rendered"]))
        scenes = held_out_scenes(len(videos), rendered.get("first_scene", 0))
    else:
        scenes = held_out_scenes(args.scenes, args.first_scene)
        videos, rendered = (
            round_trip(args.weights, scenes, args.device)
            if args.round_trip
            else render(
                args.weights,
                scenes,
                settings,
                args.attention,
                summaries=not args.no_summaries,
                guidance_scale=args.cfg,
                device=args.device,
            )
        )
        rendered["first_scene"] = args.first_scene
        if args.videos:
            np.savez_compressed(args.videos, videos=np.stack(videos), rendered=json.dumps(rendered))
    result = {**rendered, **score(scenes, videos)}
    print(json.dumps(result, indent=2))
    print("| model | colour | background | shape | framing | position | SCA | stripe consistency |")
    print("|---|---|---|---|---|---|---|---|")
    print(table_row(args.name, result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
