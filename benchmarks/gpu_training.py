"""The trainer (`engine.training`) on one GPU: seconds per step and peak memory.

    python benchmarks/gpu_training.py            # on a CUDA machine; about 5 minutes on an H200
    python benchmarks/gpu_training.py --smoke --frames 61 --toy-steps 3   # toy-size expert, any device (7 min on 2 CPU cores)

Two measurements, both through the trainer's own `Trainer.train_step` (the step
`python -m engine train` runs), one batch item per step:

- **LoRA on the real 14B expert.** One high-noise expert of the real configuration with
  random weights (built as `benchmarks/gpu.py` builds it: meta device, materialised on the
  GPU) in bf16, a rank-16 fp32 LoRA on its attention and FFN projections, bf16 autocast,
  480x832, 6 shots, random latents and prompt embeddings. With and without gradient
  checkpointing: without it a step must hold every layer's activations.
- **Full training of the shipped toy-world model** (`assets/toy-holocine`) on its own
  generated scenes, as `configs/toy_world_stage4.json` trains it (batch 8): bf16 autocast
  against fp32, side by side on the same card.

Prints a Markdown table and, with --out, writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpu import HEIGHT, REAL_DIT, SHOTS, SMOKE_DIT, WIDTH, benchmark_device, build_expert, synchronize  # noqa: E402

from engine.memory import GIB  # noqa: E402
from engine.pipeline import HoloCinePipeline  # noqa: E402
from engine.scene import ShotLayout, latent_frame_count  # noqa: E402
from engine.text import MAX_TEXT_TOKENS  # noqa: E402
from engine.training import TrainConfig, Trainer  # noqa: E402
from engine.training.config import DataConfig, LoraTraining  # noqa: E402
from engine.training.data import ClipBatches, EncodedClip, encode_clips, training_clips  # noqa: E402
from engine.training.trainer import ADAPTER  # noqa: E402
from engine.weights import TINY_WEIGHTS, TOY_WEIGHTS, load_text_and_vae  # noqa: E402

TOY_BATCH = 8


def random_clip(frames: int, text_dim: int, generator: torch.Generator) -> EncodedClip:
    """A clip as the trainer sees it, at the real latent size: 480x832 -> 60x104 latents."""
    layout = ShotLayout.resolve(SHOTS, frames)
    latents = torch.randn(16, latent_frame_count(frames), HEIGHT // 8, WIDTH // 8, generator=generator)
    tokens = 64 + 16 * SHOTS
    windows = torch.zeros(SHOTS, MAX_TEXT_TOKENS, dtype=torch.bool)
    windows[:, :64] = True
    for shot in range(SHOTS):
        windows[shot, 64 + 16 * shot : 80 + 16 * shot] = True
    return EncodedClip(latents, torch.randn(tokens, text_dim, generator=generator), windows, layout)


def timed_steps(trainer: Trainer, batches, steps: int, device: torch.device) -> tuple[float, list[float]]:
    """Median seconds per step after one warm-up step, and every step's loss."""
    losses, seconds = [], []
    for index in range(steps + 1):
        batch = batches()
        synchronize(device)
        started = time.perf_counter()
        losses.append(trainer.train_step(batch))
        synchronize(device)
        if index:
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), losses


def config(out: Path, weights: str, device: torch.device, **fields) -> TrainConfig:
    return TrainConfig(
        output_dir=str(out),
        weights=weights,
        device=str(device),
        data=DataConfig(generator="engine.toyworld:toy_scenes"),
        **fields,
    )


def lora_rows(dit: dict, device: torch.device, frames_list: list[int], repeats: int, out: Path) -> list[dict]:
    tokenizer, text_encoder, vae = load_text_and_vae(
        TINY_WEIGHTS, torch.bfloat16 if device.type == "cuda" else torch.float32
    )
    expert = build_expert(dit, device, torch.bfloat16 if device.type == "cuda" else torch.float32, seed=1)
    pipe = HoloCinePipeline(tokenizer, text_encoder, vae, expert, None, attention_mode="sparse").to(device)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for checkpointing in (False, True):  # this order: enabling checkpointing is never undone
        trainer = Trainer(
            config(
                out / f"lora-{checkpointing}",
                "(random real-size expert)",
                device,
                experts=("high_noise",),
                lora=LoraTraining(rank=16, alpha=16.0),
                gradient_checkpointing=checkpointing,
                caption_dropout=0.0,  # the text encoder is the tiny one: no empty prompt of the real width
                precision="bf16",
                learning_rate=1e-5,
            ),
            pipe=pipe,
        )
        trainable = sum(p.numel() for p in trainer.parameters)
        for frames in frames_list:
            clip = random_clip(frames, dit["text_dim"], generator)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            try:
                seconds, losses = timed_steps(trainer, lambda clip=clip: [clip], repeats, device)
                peak = torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None
                result = {"s_per_step": round(seconds, 2), "peak_gib": None if peak is None else round(peak, 1)}
                if not all(torch.isfinite(torch.tensor(losses))):
                    raise RuntimeError(f"a training step's loss is not finite: {losses}")
            except torch.OutOfMemoryError:
                result = {"s_per_step": None, "peak_gib": "OOM"}
            trainer.optimizer.zero_grad(set_to_none=True)
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            rows.append(
                {
                    "what": "LoRA r16, one 14B expert" if dit is REAL_DIT else "LoRA r16, toy-size expert",
                    "frames": frames,
                    "gradient_checkpointing": checkpointing,
                    "trainable_params": trainable,
                    **result,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        for model in trainer.experts.values():  # the next trainer adds its own adapter to the same expert
            model.delete_adapters(ADAPTER)
        del trainer
    return rows


def toy_rows(device: torch.device, steps: int, clips: int, out: Path) -> list[dict]:
    rows = []
    for precision in ("bf16", "fp32"):
        trainer = Trainer(
            config(
                out / f"toy-{precision}",
                str(TOY_WEIGHTS),
                device,
                mode="full",
                experts=("high_noise",),
                batch_size=TOY_BATCH,
                learning_rate=1e-4,
                precision=precision,
            )
        )
        data = ClipBatches(
            encode_clips(
                trainer.pipe,
                training_clips(DataConfig(generator="engine.toyworld:toy_scenes", num_clips=clips, seed=9)),
            ),
            TOY_BATCH,
            0,
        )
        seconds, losses = timed_steps(trainer, data.next_batch, steps, device)
        rows.append(
            {
                "what": f"toy-world model, full training, batch {TOY_BATCH}",
                "precision": precision,
                "s_per_step": round(seconds, 4),
                "loss_first_10": round(statistics.mean(losses[:10]), 4),
                "loss_last_10": round(statistics.mean(losses[-10:]), 4),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        del trainer
    return rows


def markdown(rows: list[dict], card: str) -> str:
    lines = [
        f"Trainer on {card}",
        "",
        "| what | frames / precision | gradient checkpointing | s / step | peak GiB |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        setting = row.get("frames", row.get("precision"))
        checkpointing = {True: "yes", False: "no"}.get(row.get("gradient_checkpointing"), "")
        lines.append(
            f"| {row['what']} | {setting} | {checkpointing} | {row['s_per_step']} | {row.get('peak_gib', '')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="toy-size expert and few steps: check the script anywhere")
    parser.add_argument("--frames", type=int, nargs="+", default=[81, 241])
    parser.add_argument("--repeats", type=int, default=2, help="timed LoRA steps per row (after one warm-up)")
    parser.add_argument("--toy-steps", type=int, default=200, help="timed toy-model steps per precision")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device, card = benchmark_device(parser, args.smoke)
    with tempfile.TemporaryDirectory() as scratch:
        rows = lora_rows(SMOKE_DIT if args.smoke else REAL_DIT, device, args.frames, args.repeats, Path(scratch))
        rows += toy_rows(device, args.toy_steps, 4 * TOY_BATCH if args.smoke else 32 * TOY_BATCH, Path(scratch))
    print(markdown(rows, card))
    if args.out:
        args.out.write_text(json.dumps({"card": card, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
