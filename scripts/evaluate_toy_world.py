"""Evaluate a toy-world model on held-out scenes: caption adherence, cut accuracy, hidden-detail consistency.

    python scripts/evaluate_toy_world.py --weights assets/toy-holocine --scenes 60 --out runs/toy-eval.json

Scenes come from a seed the training data never used. Each is rendered through the engine
(the studio's path) and read back by `engine.toyworld.metrics`, whose heuristics score
1.0 on ground truth, so every shortfall is the model's. Printed as one Markdown table row.
`--videos FILE.npz` keeps the rendered videos; `--rescore` scores them again without rendering.
`--round-trip` scores the same scenes' ground truth passed through the weights' VAE instead:
the ceiling any DiT on that VAE can reach, scene for scene.
`--pictures` measures pictures in (keyframes and reference images), side by side with the
same scenes and seeds rendered without them; see `picture_trials`.
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

from engine import RenderSettings, SceneSpec, WeightsSpec, load_pipeline  # noqa: E402
from engine.toyworld import SceneScore, ToyScene, ToyShot, read_shot, score_scene, toy_scenes  # noqa: E402
from engine.toyworld.metrics import ASPECTS  # noqa: E402
from engine.toyworld.pictures import PictureScene, keyed_scene, referenced_scene  # noqa: E402
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


def keyframe_trial(scenes: list[ToyScene], index: int) -> PictureScene:
    """Held-out scene `index` with shot `index % shots` keyed to the next scene of another colour's character."""
    scene = scenes[index]
    donor = next(d for d in scenes[index + 1 :] + scenes[:index] if d.character.colour != scene.character.colour)
    shot_index = index % len(scene.shots)
    own = scene.shots[shot_index].position
    position = next((s.position for s in donor.shots if s.position != own), "left" if own != "left" else "right")
    return keyed_scene(scene, shot_index, donor.character, position)


def picture_trials(weights: str, scenes: list[ToyScene], settings: RenderSettings, device: str = "cpu") -> dict:
    """Keyframe adherence and reference transfer, each beside the same scenes and seeds without pictures.

    keyframe (`keyframe_trial`): the keyed shot's colour, shape and position read against its
    keyframe, and every other shot's adherence to its caption against the plain render's.
    reference: captions with no colour or shape, rendered with and without a reference picture
    of the character (a close-up in the centre, `REFERENCE_SHOT`); see `engine.toyworld.pictures`.
    """
    pipe, info = load_pipeline(WeightsSpec(weights), device=device)
    settings = replace(settings, guidance_scale=pipe.defaults.guidance_scale)
    started = time.perf_counter()

    def video(spec: SceneSpec, index: int) -> np.ndarray:
        return frames_to_uint8(pipe(spec, replace(settings, seed=settings.seed + index)).video)

    keyed_hits = {"colour": 0, "shape": 0, "position": 0}
    others_plain: list[dict] = []
    others_keyed: list[dict] = []
    sca_plain, sca_keyed = [], []
    colourless: dict[bool, list] = {False: [], True: []}
    for index, scene in enumerate(scenes):
        trial = keyframe_trial(scenes, index)
        assert trial.keyed is not None
        keyed_index = trial.keyed.index
        plain_video, keyed_video = video(scene.spec(), index), video(trial.spec(), index)
        start, end = scene.frame_ranges[keyed_index]
        reading = read_shot(keyed_video[start:end])
        keyed_hits["colour"] += reading.colour == trial.keyed.character.colour
        keyed_hits["shape"] += reading.shape == trial.keyed.character.shape
        keyed_hits["position"] += reading.position == trial.keyed.shot.position
        for videos, others, cuts in ((plain_video, others_plain, sca_plain), (keyed_video, others_keyed, sca_keyed)):
            scored = score_scene(scene, videos)
            cuts.append(scored.sca)
            others += [
                {aspect: _wanted(scene, shot, aspect) == getattr(r, aspect) for aspect in ASPECTS}
                for i, (shot, r) in enumerate(zip(scene.shots, scored.readings))
                if i != keyed_index
            ]
        referenced = referenced_scene(scene).spec()
        for with_reference in (False, True):
            spec = referenced if with_reference else replace(referenced, references=())
            colourless[with_reference].append(score_scene(scene, video(spec, index)))
    n = len(scenes)

    def mean_others(rows: list[dict]) -> dict:
        return {aspect: round(float(np.mean([r[aspect] for r in rows])), 4) for aspect in ASPECTS}

    return {
        "weights": weights,
        "model": info.model_name,
        "scenes": n,
        "settings": {k: settings.to_dict()[k] for k in ("steps", "guidance_scale", "shift", "seed")},
        "keyframe": {
            "keyed_shot": {k: round(v / n, 4) for k, v in keyed_hits.items()},
            "other_shots_plain": mean_others(others_plain),
            "other_shots_keyed": mean_others(others_keyed),
            "sca_plain": round(float(np.mean(sca_plain)), 4),
            "sca_keyed": round(float(np.mean(sca_keyed)), 4),
        },
        "reference": {
            "without": reference_reading(scenes, colourless[False]),
            "with": reference_reading(scenes, colourless[True]),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def reference_reading(scenes: list[ToyScene], scores: list[SceneScore]) -> dict:
    """What a reference trial's renders show of their character, whose captions name no colour or shape.

    `one_shape_scenes` counts scenes whose shots all read one shape, right or wrong: whether a
    shape is carried across the scene at all, the summaries' job, with or without a reference.
    """
    return {
        "colour": round(float(np.mean([s.adherence["colour"] for s in scores])), 4),
        "shape": round(float(np.mean([s.adherence["shape"] for s in scores])), 4),
        "stripe_scenes": sum(
            all(r.stripe == scene.character.stripe for r in s.readings) for scene, s in zip(scenes, scores)
        ),
        "one_shape_scenes": sum(len({r.shape for r in s.readings}) == 1 for s in scores),
        "sca": round(float(np.mean([s.sca for s in scores])), 4),
    }


def _wanted(scene: ToyScene, shot: ToyShot, aspect: str) -> str:
    return {
        "background": scene.background,
        "colour": scene.character.colour,
        "shape": scene.character.shape,
        "framing": shot.framing,
        "position": shot.position,
    }[aspect]


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
    parser.add_argument(
        "--pictures", action="store_true", help="measure keyframes and reference images (see picture_trials)"
    )
    args = parser.parse_args(argv)
    if args.rescore and not args.videos:
        parser.error("--rescore needs --videos")
    if args.pictures:
        settings = RenderSettings(steps=args.steps, seed=args.seed + args.first_scene, shift=args.shift, preview_every=0)
        result = picture_trials(args.weights, held_out_scenes(args.scenes, args.first_scene), settings, args.device)
        print(json.dumps(result, indent=2))
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        return
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
