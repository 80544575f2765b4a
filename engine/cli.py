"""`python -m engine render SCENE.json --out DIR`, `python -m engine info`, `python -m engine train CONFIG`.

Input a user can fix (a bad scene, missing weights, an unavailable backend) ends with exit
status 2 and one line on stderr naming the field; the output folder is then not created.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from .attention import available_sparse_backends
from .attention.context import ATTENTION_MODES
from .attention.sparse import SPARSE_BACKENDS
from .errors import HoloCineError, SceneValidationError
from .events import Cancelled, Progress, SceneFinished, ShotDecoded
from .lora import DRAFT_GUIDANCE, DRAFT_STEPS, LoraSpec, load_lora
from .memory import MEMORY_MODES
from .output import RenderFolder
from .parallel import PARALLEL_MODES, enable_ulysses, init_from_torchrun, launched_world_size, local_device
from .pipeline import RenderSettings
from .scene import SceneSpec
from .weights import VARIANTS, WEIGHTS_ENV, ModelCard, WeightsSpec, load_pipeline, pick_device

EXIT_USAGE = 2
LORA_NAME = "cli"


def _weights_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights",
        help=f"Wan2.2-T2V-A14B diffusers folder or hub id (default: ${WEIGHTS_ENV}, else the toy-world model)",
    )
    parser.add_argument(
        "--dit",
        default="auto",
        help="HoloCine_dit folder or hub id; 'auto' = <weights>/HoloCine_dit; 'none' = base experts",
    )
    parser.add_argument("--variant", choices=VARIANTS, help="HoloCine DiT pair to load (default: sparse if present)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="HoloCine multi-shot video engine")
    commands = parser.add_subparsers(dest="command", required=True)

    render = commands.add_parser("render", help="render a scene to a folder")
    render.add_argument("scene", type=Path, help="SCENE.json")
    render.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    _weights_arguments(render)
    render.add_argument(
        "--steps", type=int, help=f"denoising steps (default {RenderSettings.steps}; {DRAFT_STEPS} with --draft)"
    )
    render.add_argument("--seed", type=int, default=RenderSettings.seed)
    render.add_argument("--height", type=int)
    render.add_argument("--width", type=int)
    render.add_argument("--frames", type=int, help="total frames (snapped to 4t+1)")
    render.add_argument(
        "--cfg",
        type=float,
        help=f"guidance scale, both experts (default: the model card's, {RenderSettings.guidance_scale:g} for HoloCine; "
        f"{DRAFT_GUIDANCE:g} with --draft)",
    )
    render.add_argument(
        "--lora", help="a Wan2.2 A14B LoRA .safetensors for the high-noise expert (diffusers or original keys)"
    )
    render.add_argument("--lora-low", help="its pair for the low-noise expert (default: the same file)")
    render.add_argument("--step-cache", type=float, default=0.0, help="First Block Cache threshold (0 = off)")
    render.add_argument("--lora-strength", type=float, default=1.0)
    render.add_argument(
        "--draft",
        action="store_true",
        help=f"few-step draft with a step-distillation --lora: {DRAFT_STEPS} steps, CFG {DRAFT_GUIDANCE:g}",
    )
    render.add_argument(
        "--compile", action="store_true", help="torch.compile each transformer block (faster steps after warm-up)"
    )
    render.add_argument("--attention", choices=ATTENTION_MODES, help="default: the checkpoint variant's mode")
    render.add_argument("--backend", default="auto", choices=["auto", *SPARSE_BACKENDS], help="sparse attention kernel")
    render.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    render.add_argument(
        "--parallel",
        default="none",
        choices=PARALLEL_MODES,
        help="ulysses: spread one scene over the processes torchrun starts "
        "(torchrun --nproc-per-node N -m engine render ...); rank 0 writes the output",
    )
    render.add_argument(
        "--memory",
        default="auto",
        choices=MEMORY_MODES,
        help="high: all on the GPU; balanced: one model at a time; low: group offload + fp8 weights (24 GB cards)",
    )

    info = commands.add_parser("info", help="devices, attention backends and the weights that would load")
    _weights_arguments(info)

    train = commands.add_parser("train", help="fine-tune (LoRA or full) on multi-shot clips; resumes a run")
    train.add_argument("config", type=Path, help="CONFIG.json or CONFIG.toml (see engine/training/config.py)")
    return parser


def read_scene(path: Path) -> SceneSpec:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise SceneValidationError("scene", f"file {path} does not exist") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SceneValidationError("scene", f"{path} is not valid JSON ({error})") from error
    return SceneSpec.from_dict(data, base_dir=path.parent)  # picture paths are relative to the JSON file


def render(args: argparse.Namespace) -> int:
    scene = read_scene(args.scene)
    overrides = {k: v for k, v in (("height", args.height), ("width", args.width), ("num_frames", args.frames)) if v}
    scene = replace(scene, **overrides)
    if args.draft and not args.lora:
        raise SceneValidationError("draft", "a draft render needs a step-distillation LoRA: pass --lora")
    settings = RenderSettings(
        steps=args.steps or (DRAFT_STEPS if args.draft else RenderSettings.steps),
        seed=args.seed,
        guidance_scale=args.cfg
        if args.cfg is not None
        else (DRAFT_GUIDANCE if args.draft else RenderSettings.guidance_scale),
        attention=args.attention,
        loras=((LORA_NAME, args.lora_strength),) if args.lora else (),
        step_cache=args.step_cache,
    )
    settings.validate()
    device, parallel = args.device, None
    world_size = launched_world_size()
    if args.parallel == "ulysses" and world_size == 1:
        print(
            "note: --parallel ulysses in a single process (not launched by torchrun): rendering here", file=sys.stderr
        )
    elif args.parallel == "ulysses":
        device = local_device(args.device)
        parallel = init_from_torchrun(pick_device(device))
    elif world_size > 1:
        raise SceneValidationError(
            "parallel",
            f"torchrun started {world_size} processes but --parallel is none, so each would render the whole "
            "scene into the same folder: pass --parallel ulysses",
        )
    try:
        return _render(args, scene, settings, device, parallel)
    finally:
        if parallel is not None:
            torch.distributed.destroy_process_group()


def _render(args: argparse.Namespace, scene: SceneSpec, settings: RenderSettings, device: str, parallel) -> int:
    writes = parallel is None or parallel.rank == 0  # under torchrun only rank 0 writes anything
    pipe, info = load_pipeline(
        WeightsSpec.from_env(args.weights, args.dit, args.variant),
        device=device,
        memory=args.memory,
        compile_blocks=args.compile,
        attention=args.attention,
        sparse_backend=args.backend,
    )
    if args.cfg is None and not args.draft:
        settings = replace(settings, guidance_scale=pipe.defaults.guidance_scale)
    if args.lora:
        load_lora(pipe, LoraSpec(LORA_NAME, args.lora, args.lora_low))
    if parallel is not None:
        enable_ulysses(pipe, parallel)
    if writes:
        print(info.describe(), file=sys.stderr)
    scene, layout = pipe.resolve_scene(scene, settings)  # every input check, before any output exists

    folder, problem = None, None
    if writes:
        try:
            folder = RenderFolder(args.out, scene, settings, info)
        except HoloCineError as error:
            problem = error
    if parallel is not None and not parallel.all_ok(problem is None, pipe._execution_device):
        raise problem or HoloCineError("rank 0 could not create the output folder (its message says why)")
    if problem is not None:
        raise problem
    cancel = threading.Event()
    finished = False
    try:
        with tqdm(total=settings.steps, unit="step", desc="denoise", disable=not writes) as bar:
            for event in pipe.generate(scene, settings, cancel=cancel):
                if isinstance(event, Progress):
                    bar.set_postfix(expert=event.expert, eta=f"{event.eta_s:.0f}s")
                    bar.update(1)
                elif isinstance(event, ShotDecoded) and folder is not None:
                    folder.add_shot(event)
                    tqdm.write(f"shot {event.shot_index + 1}/{layout.num_shots} decoded: frames {event.frame_range}")
                elif isinstance(event, SceneFinished):
                    if folder is not None:
                        folder.finish(event)
                    finished = True
                elif isinstance(event, Cancelled):
                    break
    except KeyboardInterrupt:
        print("cancelled: nothing was written", file=sys.stderr)
        return 130
    finally:
        if not finished and folder is not None:
            folder.discard()
    if writes:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def info(args: argparse.Namespace) -> int:
    print(f"torch {torch.__version__}")
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    print(f"devices: {', '.join(devices)}")
    for device in ("cpu", *(["cuda"] if torch.cuda.is_available() else [])):
        print(f"sparse attention backends on {device}: {', '.join(available_sparse_backends(device))}")
    spec = WeightsSpec.from_env(args.weights, args.dit, args.variant)
    print(f"weights: {spec.base}")
    print(f"HoloCine DiT: {spec.dit} (variant {spec.variant or 'sparse if present'})")
    base = Path(spec.base)
    if base.is_dir():
        card = ModelCard.read(base)
        print(
            f"model: {card.name}; defaults {card.defaults.height}x{card.defaults.width}, "
            f"{card.defaults.num_frames} frames at {card.defaults.fps:g} fps, CFG {card.defaults.guidance_scale:g}"
        )
        if card.notice:
            print(f"NOTE: {card.notice}")
    else:
        print("(not a local folder: it would be downloaded from the Hugging Face Hub)")
    return 0


def train(args: argparse.Namespace) -> int:
    from .training.trainer import train as run_training  # peft and the data tools load only to train

    exported = run_training(args.config)
    print(f"wrote {exported}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        commands = {"render": render, "info": info, "train": train}
        return commands[args.command](args)
    except HoloCineError as error:
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun every rank fails alike: say it once
            print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
